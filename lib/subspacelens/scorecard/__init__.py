r"""The blog's findings, each re-measured on this run's caches and judged raw and under the controls.

Modules: :mod:`.criteria` (the criterion language), :mod:`.registry` (measures and the findings file),
:mod:`.session` (a memoised :class:`Session` over the caches, shared with the chapters),
:mod:`.measurement` (what a measure returns), :mod:`.measures` (one module per chapter), :mod:`.table`,
:mod:`.display` (the styled table a reader reads).
"""

from . import measures  # noqa: F401  (registers every measure)
from .criteria import criterion_names, evaluate_criterion
from .display import styled
from .measurement import Measurement, at_most, fmt
from .registry import FINDINGS_PATH, MEASURES, blog_reference, load_findings, measure
from .session import MissingCache, Session
from .table import BY_CONSTRUCTION, COLUMNS, FAILS, FLAT, HOLDS, NOT_APPLICABLE, NOT_RUN, chapter_sentence, summary, table

__all__ = [
    "BY_CONSTRUCTION", "COLUMNS", "FAILS", "FINDINGS_PATH", "FLAT", "HOLDS", "MEASURES", "Measurement",
    "MissingCache", "NOT_APPLICABLE", "NOT_RUN", "Session", "blog_reference", "chapter_sentence", "criterion_names",
    "at_most", "evaluate_criterion", "fmt", "load_findings", "measure", "styled", "summary", "table",
]
