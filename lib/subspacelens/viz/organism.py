"""Figures of the 'Training the organism' chapter (the image grids live in :mod:`subspacelens.viz.images`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from subspacelens.viz.style import (
    color,
    figure_size,
    legend_below,
    legend_height,
    wrap_text,
)


def _smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average; DDPM losses are dominated by which timesteps a batch happened to draw."""
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_training_curves(log: dict, *, window: int = 50) -> Figure:
    """VAE and transformer loss per step (raw and moving average), from the saved training log."""
    stages = [("VAE (reconstruction + KL)", "vae_losses", "vae"), ("transformer (Min-SNR-weighted ε-MSE)", "losses", "transformer")]
    fig, axes = plt.subplots(1, 2, figsize=figure_size(2, extra_height=legend_height(["mean of 50"] * 2)),
                             constrained_layout=True)
    for ax, (title, key, stage) in zip(axes, stages):
        y = np.asarray(log[key], dtype=float)
        ax.plot(np.arange(len(y)), y, color=color("random-init"), lw=0.6, label="per step")
        s = _smoothed(y, window)
        ax.plot(np.arange(len(s)) + len(y) - len(s), s, color=color("trained"), lw=1.5, label=f"mean of {window}")
        ax.set_yscale("log")
        ax.set_xlabel("optimisation step")
        seconds = log.get("wall_seconds", {}).get(stage)
        ax.set_title(wrap_text(title + (f", {seconds / 60:.1f} min" if seconds else ""), 2))
    axes[0].set_ylabel("loss")
    legend_below(fig, *axes[1].get_legend_handles_labels())
    return fig
