"""Figures of the three-lenses chapter: score heatmaps (lens units × known factors) and preimage galleries."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .images import image_grid


def plot_factor_scores(tables: dict[str, pd.DataFrame], *, cbar_label: str, title: str = "", vmax: float = 1.0) -> Figure:
    """One heatmap per table (rows: subspaces or latents, columns: factors), side by side, one colour scale."""
    fig, axes = plt.subplots(1, len(tables), figsize=(3.2 * len(tables) + 0.8, 0.32 * max(len(t) for t in tables.values()) + 1.8),
                             squeeze=False, constrained_layout=True)
    for ax, (name, table) in zip(axes[0], tables.items()):
        sns.heatmap(table.astype(float), vmin=0, vmax=vmax, cmap="rocket_r", annot=True, fmt=".2f",
                    annot_kws={"fontsize": 6.5}, cbar=ax is axes[0, -1], cbar_kws={"label": cbar_label}, ax=ax)
        ax.set(title=name, xlabel="factor", ylabel="")
    if title:
        fig.suptitle(title)
    return fig


def preimage_gallery(images: np.ndarray, row_labels: list[str], per_row: int, *, title: str | None = None) -> Figure:
    """Rows of preimages: row ``r`` shows ``per_row`` images, its query first (``images`` row-major)."""
    return image_grid(images, per_row, row_labels=row_labels, col_labels=["query"] + [f"nn {i}" for i in range(1, per_row)],
                      title=title)
