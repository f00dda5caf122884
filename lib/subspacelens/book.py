"""What every chapter's first cell needs: one call instead of a copy of the same preamble per page.

``setup()`` applies the book's figure style and pandas display options, quiets the progress-bar widget
warning and registers the ``%%only_if`` cell magic; ``say(text)`` shows a sentence computed from the run as
rendered Markdown (the closing texts); ``figure(fig, name)`` hands a figure to the page under a name, for a
numbered, captioned ``{glue:figure}`` with alt text.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import yaml
from IPython.display import Markdown, display

from .paths import resolve
from .viz.style import use_book_style

PANDAS_OPTIONS = {"display.width": 120, "display.precision": 3, "display.max_colwidth": 200, "display.max_rows": 100}


def setup() -> None:
    """Book style for figures, pandas display options, no tqdm ``IProgress`` warning in executed pages, and
    the ``%%only_if`` magic (when running under IPython)."""
    use_book_style()
    for option, value in PANDAS_OPTIONS.items():
        pd.set_option(option, value)
    warnings.filterwarnings("ignore", message="IProgress not found")
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.register_magic_function(only_if, magic_kind="cell")


def only_if(line: str, cell: str) -> None:
    """``%%only_if <expression>``: run the cell when the expression is true in the notebook, else say why not.

    A chapter whose comparison needs something a cache may lack (the unconditional branch of a
    guidance-distilled model) runs to its end on such a cache, each skipped cell saying so, instead of
    stopping at the first cell that cannot be computed.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if not line.strip():
        raise ValueError("%%only_if needs an expression, e.g. `%%only_if has_uncond`")
    if shell.ev(line):
        shell.run_cell(cell, store_history=False)
    else:
        say(f"*Not computed: `{line.strip()}` is false for this cache.*")


CODE_WIDTH = 84
"""Most characters in a line of a chapter's code: what its code box shows unwrapped at an 800 px window
(84 characters of the book's 13 px monospace are 657 px; the box has 682 px, measured in the built book);
``make format`` keeps the sources to it and the browser test checks that no line wraps."""

FIGURE_PREFIX = "fig-"


def figure(fig, name: str) -> None:
    """Hand the matplotlib figure ``fig`` to the page as the glued output ``name``, and close it.

    The chapter's Markdown places it where the reader needs it, numbered, with its caption and alt text::

        ```{glue:figure} fig-rate-reduction-per-block
        :name: fig-rate-reduction-per-block
        :alt: ΔR against block for coarse and fine labels, one line per step.

        **ΔR per block.** One line per denoising step …
        ```

    and prose refers to it as ``{numref}`fig-rate-reduction-per-block```. Closing the figure keeps the
    cell from showing it a second time. Names start with ``fig-`` and are unique within a page.
    """
    import matplotlib.pyplot as plt
    from myst_nb import glue

    if not isinstance(name, str) or not name.startswith(FIGURE_PREFIX) or not name[len(FIGURE_PREFIX):]:
        raise ValueError(f"name: a figure's name starts with {FIGURE_PREFIX!r}, got {name!r}")
    if not hasattr(fig, "savefig"):
        raise ValueError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    glue(name, fig, display=False)
    plt.close(fig)


def say(text: str) -> None:
    """Show a sentence computed from this run as rendered Markdown."""
    display(Markdown(text))


def toc_pages(toc: str | Path = "_toc.yml") -> list[str]:
    """Every page of the book's table of contents in reading order, as paths without suffix (``book/intro``)."""
    contents = yaml.safe_load(resolve(toc).read_text())
    pages = [contents["root"]]
    for part in contents["parts"]:
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


def recorded_seconds(notebook: str | Path) -> float:
    """How long the run that executed ``notebook`` (an ``.ipynb`` written by papermill) spent in its cells."""
    cells = json.loads(resolve(notebook).read_text())["cells"]
    return float(sum(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0 for cell in cells))
