"""One palette and one style for every figure in the book.

The same quantity has the same colour in every chapter: coarse (5 categories) vs fine
(25 subjects) labels, conditional vs unconditional CFG branch, trained model vs its
random-initialised twin, observed vs permutation null.
"""

from __future__ import annotations

import matplotlib as mpl
import seaborn as sns

PALETTE: dict[str, str] = {
    "coarse": "#1b6ca8",  # 5-class category labels
    "fine": "#d1495b",  # 25-class subject labels
    "cond": "#2e8b57",  # text-conditioned CFG branch
    "uncond": "#8e6c8a",  # null-text CFG branch
    "trained": "#222222",
    "random-init": "#b0b0b0",
    "null": "#9a9a9a",  # permuted-labels baseline
    "reference": "#e09f3e",  # analytic or isotropic-Gaussian reference
}

UNITS = {"rate": "nats"}


def use_book_style() -> None:
    """Seaborn's paper context with a white grid; PNG figures at a resolution fit for the web book."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.15)
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "figure.figsize": (6.4, 3.8),
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )


def color(name: str) -> str:
    """Colour of a named series; raises ``KeyError`` listing the known names."""
    try:
        return PALETTE[name]
    except KeyError:
        raise KeyError(f"no colour for {name!r}; known: {sorted(PALETTE)}") from None
