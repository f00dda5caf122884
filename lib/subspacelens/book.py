"""What every chapter's first cell needs: one call instead of a copy of the same preamble per page.

``setup()`` applies the book's figure style and pandas display options and quiets the progress-bar widget
warning; ``say(text)`` shows a sentence computed from the run as rendered Markdown (the closing texts).
"""

from __future__ import annotations

import warnings

import pandas as pd
from IPython.display import Markdown, display

from .viz.style import use_book_style

PANDAS_OPTIONS = {"display.width": 120, "display.precision": 3, "display.max_colwidth": 200, "display.max_rows": 100}


def setup() -> None:
    """Book style for figures, pandas display options, and no tqdm ``IProgress`` warning in executed pages."""
    use_book_style()
    for option, value in PANDAS_OPTIONS.items():
        pd.set_option(option, value)
    warnings.filterwarnings("ignore", message="IProgress not found")


def say(text: str) -> None:
    """Show a sentence computed from this run as rendered Markdown."""
    display(Markdown(text))
