"""One palette, one style and one size grammar for every figure in the book.

The same quantity has the same colour in every chapter: coarse (5 categories) vs fine
(25 subjects) labels, conditional vs unconditional CFG branch, trained model vs its
random-initialised twin, observed vs permutation null.

Sizes follow one grammar (:func:`figure_size`): a figure of several panels is exactly the text column
wide (:data:`TEXT_WIDTH`), so the page shows it at its own size and its text at the size set here; a
single panel is a little narrower; panels are never so short that they are squashed, and a row of more
than :data:`MAX_COLUMNS` panels wraps (:func:`panel_grid`) rather than shrinking them.
"""

from __future__ import annotations

import math

import matplotlib as mpl
import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

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

FIGURE_DPI = 110
"""``figure.dpi``: the resolution at which a notebook's inline figures are rendered into the page."""

TEXT_WIDTH = 6.7
"""Width of the book's text column in inches at :data:`FIGURE_DPI`: the column is 762 px at a 1400 px window
(714 px at 800 px). Inline figures are saved with ``bbox_inches="tight"``, which adds 0.1 in on each side,
so a figure 6.7 in wide becomes a PNG of at most (6.7 + 0.2) × 110 = 759 px: shown at its own size at
1400 px, at 94 % at 800 px. No figure is wider: a wider PNG is shrunk to the column, and its text with it."""

SINGLE_WIDTH = round(0.8 * TEXT_WIDTH, 2)
"""Default width of a figure with one panel (a single panel at full width has too little to show)."""

MAX_COLUMNS = 4
"""Most panels side by side at :data:`TEXT_WIDTH`; more wrap into further rows (:func:`panel_grid`)."""

MIN_PANEL_HEIGHT = 2.4
"""Least height of one row of panels (inches): room for a title, tick labels and an axis label."""

SUPTITLE_HEIGHT = 0.35
"""Height a figure's suptitle takes (inches): add it through ``extra_height``."""

LEGEND_ROW_HEIGHT = 0.3
"""Height of one row of a legend under the panels (:func:`legend_below`), in inches."""


def figure_size(ncols=1, nrows=1, *, panel_aspect=0.7, width=None, extra_height=0.0):
    """``(width, height)`` in inches of a figure of ``nrows`` × ``ncols`` panels; the book's size grammar.

    * Width: a figure of several columns is :data:`TEXT_WIDTH` wide (the text column, so it is shown
      unscaled); one column defaults to :data:`SINGLE_WIDTH`. ``width`` asks for another width, which is
      capped at :data:`TEXT_WIDTH`: no figure is wider than the column.
    * Height: each row of panels is ``panel_aspect`` (height / width) times the width of one panel, and at
      least :data:`MIN_PANEL_HEIGHT`, so that many narrow panels are not squashed flat; ``extra_height``
      adds room for what spans the whole figure (a suptitle, :data:`SUPTITLE_HEIGHT`; a legend under the
      panels, :data:`LEGEND_ROW_HEIGHT` per row).
    * Text: font sizes are the ones :func:`use_book_style` sets, the same in every figure, because no
      figure is shrunk; panel titles are at least the size of axis labels, a suptitle larger still.
    * More than :data:`MAX_COLUMNS` panels in a row do not fit legibly: lay them out with :func:`panel_grid`
      (or :func:`panels`), which wraps them into rows.
    """
    ncols, nrows = max(int(ncols), 1), max(int(nrows), 1)
    if width is None:
        width = TEXT_WIDTH if ncols > 1 else SINGLE_WIDTH
    width = min(float(width), TEXT_WIDTH)
    row_height = max(width / ncols * panel_aspect, MIN_PANEL_HEIGHT)
    return width, round(nrows * row_height + extra_height, 2)


def panel_grid(n, *, max_cols=MAX_COLUMNS):
    """``(nrows, ncols)`` for ``n`` panels: one row of ``n`` up to ``max_cols``, else balanced rows."""
    n = max(int(n), 1)
    nrows = math.ceil(n / max_cols)
    return nrows, math.ceil(n / nrows)


def panels(n, *, panel_aspect=0.7, extra_height=0.0, width=None, max_cols=MAX_COLUMNS, **subplots_kw):
    """A figure of ``n`` panels in the size grammar (:func:`figure_size`, wrapped by :func:`panel_grid` into
    rows of at most ``max_cols``), with constrained layout; returns ``(fig, axes)``, ``axes`` a list of the
    ``n`` panels in reading order.

    The cells of the last row left over by wrapping are removed; a panel above one of them keeps its x
    tick labels when x is shared.
    """
    nrows, ncols = panel_grid(n, max_cols=max_cols)
    subplots_kw.setdefault("constrained_layout", True)
    fig, grid = plt.subplots(nrows, ncols, squeeze=False, **subplots_kw,
                             figsize=figure_size(ncols, nrows, panel_aspect=panel_aspect, width=width,
                                                 extra_height=extra_height))
    flat = list(grid.flat)
    for ax in flat[n:]:
        ax.remove()
    for i, ax in enumerate(flat[:n]):
        if i + ncols >= n and i < (nrows - 1) * ncols:
            ax.xaxis.set_tick_params(labelbottom=True)
    return fig, flat[:n]


def lowest_panels(axes, ncols):
    """The panels of ``axes`` (reading order, ``ncols`` to a row) with no panel below: those get x labels."""
    return [ax for i, ax in enumerate(axes) if i + ncols >= len(axes)]


def _legend_columns(labels, fontsize):
    """Most columns (at most one per label) a legend of ``labels`` may have and stay within
    :data:`TEXT_WIDTH`, measured with matplotlib's legend spacings."""
    if not labels:
        return 1
    inches = FontProperties(size=fontsize).get_size_in_points() / 72
    rc = mpl.rcParams
    label = max(text_width(str(label), fontsize=fontsize) for label in labels)
    column = label + (rc["legend.handlelength"] + rc["legend.handletextpad"]) * inches
    spacing = rc["legend.columnspacing"] * inches
    room = 0.97 * TEXT_WIDTH - 2 * (rc["legend.borderpad"] + rc["legend.borderaxespad"]) * inches
    return max(1, min(len(labels), int((room + spacing) // (column + spacing))))


def legend_below(fig, handles, labels, *, ncol=None, **kwargs):
    """One legend for the whole figure, centred under its panels (constrained layout makes room).

    ``ncol`` defaults to as many columns as fit in :data:`TEXT_WIDTH` at the legend's font size.
    """
    kwargs.setdefault("fontsize", "small")
    ncol = _legend_columns(labels, kwargs["fontsize"]) if ncol is None else ncol
    return fig.legend(handles, labels, loc="outside lower center", ncol=ncol, **kwargs)


def merged_legend_below(fig, axes, **kwargs):
    """One legend under the figure with every distinct label of ``axes``, in order of appearance (the first
    handle of each label): for panels that share their series, a legend shown once."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    return legend_below(fig, list(entries.values()), list(entries), **kwargs)


def legend_height(labels, *, ncol=None, fontsize="small"):
    """Height (inches) :func:`legend_below` takes for ``labels``: what to add to ``extra_height``."""
    ncol = _legend_columns(labels, fontsize) if ncol is None else ncol
    return LEGEND_ROW_HEIGHT * math.ceil(len(labels) / ncol) if labels else 0.0


def text_width(text, *, fontsize=None, weight="normal"):
    """Width in inches of one line of ``text`` at ``fontsize`` (default ``font.size``) and ``weight``."""
    prop = FontProperties(size=fontsize or mpl.rcParams["font.size"], weight=weight)
    return text_to_path.get_text_width_height_descent(str(text), prop, ismath=False)[0] / 72


def wrap_text(text, ncols=1, *, fontsize=None, weight=None, width=None):
    """``text`` broken at spaces into lines that fit one panel of a row of ``ncols`` panels in a figure
    ``width`` inches wide (:data:`TEXT_WIDTH`); by default measured as a panel title (``axes.titlesize``,
    ``axes.titleweight``). Text with mathtext (``$``) is returned as it is."""
    text = str(text)
    if "$" in text:
        return text
    fontsize = fontsize or mpl.rcParams["axes.titlesize"]
    weight = weight or mpl.rcParams["axes.titleweight"]
    limit = 0.85 * min(width or TEXT_WIDTH, TEXT_WIDTH) / max(int(ncols), 1)
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and text_width(candidate, fontsize=fontsize, weight=weight) > limit:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return "\n".join(lines)


def suptitle(fig, title, **kwargs):
    """``fig.suptitle(title)``, broken into lines that fit :data:`TEXT_WIDTH` at ``figure.titlesize``."""
    size = kwargs.get("fontsize", mpl.rcParams["figure.titlesize"])
    weight = kwargs.get("fontweight", mpl.rcParams["figure.titleweight"])
    return fig.suptitle(wrap_text(title, 1, fontsize=size, weight=weight) if title else title, **kwargs)


def note_figure(text: str):
    """A one-line figure that says why a page's figure has nothing to show on this run (a section a cache
    cannot feed, a chapter left out by a parameter): the page's numbered figure and its caption stay in
    place, so a page builds the same on every cache."""
    fig = plt.figure(figsize=(TEXT_WIDTH * 0.8, 0.8))
    fig.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def use_book_style() -> None:
    """Seaborn's paper context with a white grid; PNG figures at a resolution fit for the web book.

    Text sizes: tick labels and legends a step below the axis labels; panel titles (``axes.titlesize``) at
    least the size of the axis labels; a figure's suptitle (``figure.titlesize``) larger than panel titles.
    Figure sizes: :func:`figure_size`.
    """
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.15)
    label = FontProperties(size=mpl.rcParams["axes.labelsize"]).get_size_in_points()
    title = max(FontProperties(size=mpl.rcParams["axes.titlesize"]).get_size_in_points(), label)
    mpl.rcParams.update(
        {
            "figure.dpi": FIGURE_DPI,
            "savefig.dpi": 150,
            "figure.figsize": figure_size(),
            "axes.titlesize": title,
            "figure.titlesize": round(1.2 * title, 2),
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
