"""The book's figure size grammar: nothing wider than the text column, panel titles no smaller than axis labels."""

from __future__ import annotations

import io

import matplotlib as mpl
import matplotlib.image as mimage
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.font_manager import FontProperties
from subspacelens.viz import controls, curves, images
from subspacelens.viz.style import (
    MAX_COLUMNS,
    MIN_PANEL_HEIGHT,
    TEXT_WIDTH,
    figure_size,
    panel_grid,
    use_book_style,
    wrap_text,
)

COLUMN_PX = 762  # the text column at a 1400 px window


def points(size) -> float:
    return FontProperties(size=size).get_size_in_points()


@pytest.fixture
def book_style():
    """The book's style for one test, on the Agg backend; rcParams restored afterwards."""
    backend = mpl.get_backend()
    plt.switch_backend("Agg")
    with mpl.rc_context():
        use_book_style()
        yield
    plt.close("all")
    plt.switch_backend(backend)


def png_width(fig) -> int:
    """Width in pixels of ``fig`` as a notebook shows it (figure dpi, tight bounding box)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    buffer.seek(0)
    return mimage.imread(buffer).shape[1]


def test_text_width_is_the_column_at_the_figure_dpi(book_style):
    assert 6.5 <= TEXT_WIDTH <= 7.0
    assert (TEXT_WIDTH + 0.2) * mpl.rcParams["figure.dpi"] <= COLUMN_PX


@pytest.mark.parametrize("ncols", range(1, 7))
@pytest.mark.parametrize("nrows", [1, 2])
def test_figure_size_never_wider_than_the_column(ncols, nrows):
    width, height = figure_size(ncols, nrows)
    assert width <= TEXT_WIDTH
    if ncols > 1:
        assert width == TEXT_WIDTH
    assert height >= nrows * MIN_PANEL_HEIGHT
    assert figure_size(ncols, nrows, width=20.0)[0] == TEXT_WIDTH


def test_figure_size_single_panel_and_extras():
    width, height = figure_size()
    assert width < TEXT_WIDTH
    assert figure_size(panel_aspect=1.0)[1] > height
    assert figure_size(extra_height=0.5)[1] == pytest.approx(height + 0.5)


def test_panel_grid_wraps_past_max_columns():
    for n in range(1, MAX_COLUMNS + 1):
        assert panel_grid(n) == (1, n)
    assert panel_grid(6) == (2, 3)
    assert panel_grid(5) == (2, 3)
    assert all(nrows * ncols >= n and ncols <= MAX_COLUMNS for n in range(1, 13) for nrows, ncols in [panel_grid(n)])


def test_titles_at_least_axis_labels(book_style):
    label = points(mpl.rcParams["axes.labelsize"])
    title = points(mpl.rcParams["axes.titlesize"])
    assert title >= label
    assert points(mpl.rcParams["figure.titlesize"]) > title


def test_wrap_text_keeps_the_words(book_style):
    text = "scale-aware ΔR (ε relative to the RMS norm), with the permutation null"
    wrapped = wrap_text(text, 3)
    assert "\n" in wrapped
    assert wrapped.replace("\n", " ") == text
    assert wrap_text("short", 3) == "short"


def _profile(steps, layers=8, branches=("cond", "uncond")):
    rng = np.random.default_rng(0)
    shape = (layers, len(steps), len(branches))
    value = rng.random(shape)
    return xr.Dataset(
        {"value": (("layer", "step", "branch"), value), "low": (("layer", "step", "branch"), value - 0.1),
         "high": (("layer", "step", "branch"), value + 0.1)},
        coords={"layer": np.arange(layers), "step": list(steps), "branch": list(branches),
                "relative_depth": ("layer", np.arange(layers) / (layers - 1))},
    )


def _check(fig, n_axes=None):
    assert fig.get_size_inches()[0] <= TEXT_WIDTH + 1e-9
    assert png_width(fig) <= COLUMN_PX
    if n_axes is not None:
        assert len([ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]) >= n_axes
    for ax in fig.axes:
        title = ax.title
        if title.get_text():
            assert title.get_fontsize() >= points(mpl.rcParams["axes.labelsize"]) - 1e-9


def test_real_figures_fit_the_column(book_style):
    steps = [0, 6, 13, 19]
    profiles = {"coarse": _profile(steps), "fine": _profile(steps)}
    _check(curves.plot_steps(profiles, ylabel="ΔR (nats)", title="ΔR per step"), n_axes=4)
    _check(controls.plot_branches(profiles, title="ΔR of the two branches"), n_axes=8)
    pair = {k: p.sel(step=6, branch="cond", drop=True) for k, p in profiles.items()}
    _check(curves.plot_profile_pair(pair, ylabel="ΔR (nats)", title="ΔR per block"), n_axes=2)
    rng = np.random.default_rng(0)
    grid = images.image_grid(rng.uniform(-1, 1, (30, 3, 8, 8)), 15, row_labels=["animals", "food"])
    _check(grid)


@pytest.mark.parametrize("ncols", [4, 8])
def test_image_grid_column_labels_stay_above_their_own_column(book_style, ncols):
    """Labels wider than the default cell widen it, or wrap at their spaces when the text column is full."""
    labels = ["no edit", "category out", "subject out", "random out"] * (ncols // 4)
    grid = images.image_grid(np.zeros((2 * ncols, 3, 8, 8)), ncols, row_labels=["lion", "mountain range"],
                             col_labels=labels)
    _check(grid)
    renderer = grid.canvas.get_renderer()
    top_row = grid.axes[:ncols]
    boxes = [ax.xaxis.label.get_window_extent(renderer) for ax in top_row]
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 < right.x0, "two column labels overlap"
    for ax, box in zip(top_row, boxes):
        assert box.y0 >= ax.get_window_extent(renderer).y1 - 1, "a column label runs into its images"
        assert box.y1 <= grid.bbox.y1, "a column label is cut off at the top"
    assert any("\n" in ax.get_xlabel() for ax in top_row) == (ncols == 8)


def test_many_panels_wrap_into_rows(book_style):
    fig = curves.plot_steps({"coarse": _profile(range(6))}, ylabel="ΔR (nats)")
    _check(fig)  # draws it, so the constrained layout has placed the panels
    panels = [ax for ax in fig.axes if ax.get_title().startswith("step")]
    assert len(panels) == 6
    assert len({round(ax.get_position().y0, 2) for ax in panels}) == 2  # two rows of three, not one of six


def test_wide_heatmap_is_capped(book_style):
    table = pd.DataFrame(np.random.default_rng(0).random((6, 28)) * 100, index=[f"config {i}" for i in range(6)])
    _check(curves.plot_layer_heatmap(table, cbar_label="ΔR (nats)", title="28 blocks"))
