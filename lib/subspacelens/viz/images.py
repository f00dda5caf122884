"""Grids of images: rows are labels (subjects), columns are seeds.

Images come in the library's convention, ``(N, 3, H, W)`` floats in [-1, 1] (the VAE's range, what
:mod:`subspacelens.organism.images` renders and :func:`subspacelens.organism.evaluate.generate` returns),
or as display-ready ``(N, H, W, 3)`` in [0, 1]; :func:`to_display` converts the former to the latter.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .style import TEXT_WIDTH, text_width, wrap_text


def to_display(images: np.ndarray) -> np.ndarray:
    """``(N, 3, H, W)`` in [-1, 1] -> ``(N, H, W, 3)`` in [0, 1]; display-ready input is returned clipped."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D, got shape {images.shape}")
    if images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = (images.transpose(0, 2, 3, 1) + 1) / 2
    return np.clip(images, 0, 1)


def image_grid(
    images: np.ndarray,
    ncols: int,
    *,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    title: str | None = None,
    cell: float = 0.55,
) -> Figure:
    """Images laid out row-major in ``ncols`` columns, rows labelled on the left, columns on top (both as
    axis labels, in the same small type).

    Pixels are shown with nearest-neighbour interpolation: the organism's images are 32 px, and smoothing
    would hide exactly the pixel-level detail one wants to judge.

    Each image is ``cell`` inches square, more when a column label is wider (so that labels never run into
    each other), less when the row would be wider than the text column
    (:data:`~subspacelens.viz.style.TEXT_WIDTH`): the grid is scaled down to fit it, never shown shrunk,
    and the column labels wrap at their spaces.
    """
    shown = to_display(images)
    nrows = int(np.ceil(len(shown) / ncols))
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {nrows} rows")
    label_width = 0.0
    if row_labels is not None:  # room for the longest row label
        label_width = max((text_width(label, fontsize="small") for label in row_labels), default=0.0) + 0.15
    if col_labels:  # a column label fits above its own column on one line (with wrap_text's 15 % spare) ...
        cell = max(cell, max(text_width(label, fontsize="small") for label in col_labels) / 0.85)
    cell = min(cell, (TEXT_WIDTH - label_width) / ncols)  # ... or, where the row would be too wide, wraps
    col_labels = [wrap_text(label, fontsize="small", weight="normal", width=cell) for label in col_labels or []]
    label_lines = max((label.count("\n") + 1 for label in col_labels), default=0)
    # room above the images: the lines of column labels, and the title above them (not on top of them)
    head = max((0.12 + 0.18 * label_lines if col_labels else 0.0) + (0.35 if title else 0.0), 0.05)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(label_width + cell * ncols, head + cell * nrows), squeeze=False,
        gridspec_kw={"wspace": 0.04, "hspace": 0.04},
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    for ax, image in zip(axes.flat, shown):
        ax.imshow(image, interpolation="nearest")
    for r, label in enumerate(row_labels or []):
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize="small")
    for c, label in enumerate(col_labels):  # axis labels on top, like the row labels on the left
        axes[0, c].xaxis.set_label_position("top")
        axes[0, c].set_xlabel(label, fontsize="small")
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=label_width / (label_width + cell * ncols) if row_labels is not None else 0.01,
                        right=0.99, bottom=0.01, top=1 - head / (head + cell * nrows))
    return fig


def subject_grid(images: np.ndarray, subjects: list[str], per_subject: int, **kwargs) -> Figure:
    """``per_subject`` consecutive images per subject, one subject per row (the prompt sets' sample order)."""
    if len(images) != len(subjects) * per_subject:
        raise ValueError(f"{len(images)} images for {len(subjects)} subjects x {per_subject}")
    return image_grid(images, per_subject, row_labels=list(subjects), **kwargs)
