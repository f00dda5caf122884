"""Figures of the three-lenses chapter: score heatmaps (lens units × known factors) and preimage galleries."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .images import image_grid
from .style import TEXT_WIDTH, wrap_text


BLANK_BELOW = 0.05
"""Scores under this (a negative probe R² among them: no linear information) are left unannotated."""


def plot_factor_scores_by_block(blocks: dict[str, dict[str, pd.DataFrame]], *, cbar_label: str,
                                vmax: float = 1.0) -> Figure:
    """Probe scores of every lens at several blocks: a row of heatmaps per block (rows of a heatmap: the
    lens's subspaces or latents; columns: the factors), the same lenses in the same columns, one colour
    scale from 0 to ``vmax`` and one colour bar; the figure fills the text column. The lenses name the
    columns and the blocks the rows (a title per heatmap would not fit its width), and the scores are
    annotated to one decimal, which is what seven factors side by side leave room for; scores below
    :data:`BLANK_BELOW` are coloured but not annotated."""
    if not blocks or not all(blocks.values()):
        raise ValueError("blocks: expected {block name: {lens name: table}} with at least one table each")
    lenses = list(next(iter(blocks.values())))
    heights = [0.32 * max(len(t) for t in tables.values()) + 1.2 for tables in blocks.values()]
    fig, grid = plt.subplots(len(blocks), len(lenses), figsize=(TEXT_WIDTH, sum(heights)), squeeze=False,
                             constrained_layout=True, gridspec_kw={"height_ratios": heights})
    for row, (block, tables) in enumerate(blocks.items()):
        for col, lens in enumerate(lenses):
            ax = grid[row, col]
            last = row == len(blocks) - 1 and col == len(lenses) - 1
            scores = tables[lens].astype(float)
            # cells that carry (next to) nothing, negative scores included, stay blank: clutter otherwise
            labels = scores.map(lambda v: f"{v:.1f}" if v >= BLANK_BELOW else "")
            sns.heatmap(scores, vmin=0, vmax=vmax, cmap="rocket_r", annot=labels, fmt="", xticklabels=True,
                        yticklabels=True, annot_kws={"fontsize": 6.5}, cbar=last, cbar_kws={"label": cbar_label},
                        ax=ax)
            ax.set(title=wrap_text(lens, len(lenses)) if row == 0 else "",
                   xlabel="factor" if row == len(blocks) - 1 else "", ylabel="")
            ax.tick_params(axis="y", rotation=0)
        grid[row, 0].set_ylabel(wrap_text(block, len(blocks), weight="bold"), fontweight="bold")
    return fig


def preimage_gallery(images: np.ndarray, row_labels: list[str], per_row: int, *, title: str | None = None) -> Figure:
    """Rows of preimages: row ``r`` shows ``per_row`` images, its query first (``images`` row-major)."""
    return image_grid(images, per_row, row_labels=row_labels, col_labels=["query"] + [f"nn {i}" for i in range(1, per_row)],
                      title=title)
