"""The registry of measures and the findings file that names them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import yaml

from ..paths import resolve
from .criteria import criterion_names

FINDINGS_PATH = resolve("data/reference/blog_findings.yaml")
KINDS = ("finding", "tautology", "control")


@dataclass(frozen=True)
class Measure:
    function: object
    roles: tuple


MEASURES: dict[str, Measure] = {}
"""Registered measurement functions: name → (function(session, **options) -> Measurement, roles needed)."""


def measure(name, roles=("main",)):
    """Register ``function(session, **options) -> Measurement`` as measure ``name`` needing cache ``roles``."""

    def register(function):
        MEASURES[name] = Measure(function, tuple(roles))
        return function

    return register


def load_findings(path=None):
    """The findings of ``blog_findings.yaml`` as a list of dicts, validated (fields, measure, criteria, kind)."""
    from . import measures  # noqa: F401  (registers every measure)

    with open(path or FINDINGS_PATH, encoding="utf-8") as handle:
        findings = yaml.safe_load(handle)["findings"]
    required = {"id", "chapter", "finding", "claim", "blog_value", "measure"}
    for finding in findings:
        missing = required - set(finding)
        if missing:
            raise ValueError(f"findings: {finding.get('id', finding)!r} lacks {sorted(missing)}")
        if finding["measure"] not in MEASURES:
            raise ValueError(f"findings: {finding['id']!r} names unknown measure {finding['measure']!r}")
        kind = finding.setdefault("kind", "finding")
        if kind not in KINDS:
            raise ValueError(f"findings: {finding['id']!r} has kind {kind!r}; expected one of {list(KINDS)}")
        if "criterion" not in finding and "controlled" not in finding:
            raise ValueError(f"findings: {finding['id']!r} needs a criterion or a controlled criterion")
        for criterion in (finding.get("criterion"), (finding.get("controlled") or {}).get("criterion")):
            if criterion is not None:
                criterion_names(criterion)
    return findings


def blog_reference(path=None):
    """The blog's protocol and landmark blocks (``blog:`` in the findings file), with ``depth(block)``."""
    with open(path or FINDINGS_PATH, encoding="utf-8") as handle:
        ref = dict(yaml.safe_load(handle)["blog"])
    last = ref["num_layers"] - 1
    ref["depth"] = lambda block: np.asarray(block, dtype=float) / last
    return ref
