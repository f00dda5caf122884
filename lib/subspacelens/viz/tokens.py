"""Figures of the per-token chapter: token-level ΔR against its image-level null, and within-image rank.

Inputs are the xarray results of :mod:`subspacelens.tokens` with dims ``(token_layer, token_step)``; one
colour per denoising step (:func:`~subspacelens.viz.controls.step_colors`), the null as a grey band.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .controls import step_colors
from .style import color


def plot_token_nulls(results, *, title="", ylabel="ΔR (nats)"):
    """One panel per labelling (``results``: name → Dataset with ``observed``, ``null_low``, ``null_high``)."""
    fig, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.0), squeeze=False, constrained_layout=True)
    for ax, (name, result) in zip(axes[0], results.items()):
        colors = step_colors(result["token_step"].values)
        layers = result["token_layer"].values
        for step in result["token_step"].values:
            one = result.sel(token_step=step)
            ax.plot(layers, one["observed"], marker="o", ms=3, color=colors[step], label=f"step {step}")
            ax.fill_between(layers, one["null_low"], one["null_high"], color=color("null"), alpha=0.3, lw=0)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("block")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].plot([], [], color=color("null"), lw=6, alpha=0.3, label="image-level null")
    axes[0][-1].legend(fontsize="small")
    fig.suptitle(title)
    return fig


def plot_within_image_rank(ranks, *, across=None, title=""):
    """Median and interquartile range over images of the within-image effective rank, per block and step;
    ``across`` (dims ``token_layer, token_step``): the rank of the mean-pooled vectors, for comparison."""
    fig, ax = plt.subplots(figsize=(5.6, 3.4), constrained_layout=True)
    colors = step_colors(ranks["token_step"].values)
    layers = ranks["token_layer"].values
    quartiles = ranks.quantile([0.25, 0.5, 0.75], dim="sample")
    for step in ranks["token_step"].values:
        q = quartiles.sel(token_step=step)
        ax.plot(layers, q.sel(quantile=0.5), marker="o", ms=3, color=colors[step], label=f"one image, step {step}")
        ax.fill_between(layers, q.sel(quantile=0.25), q.sel(quantile=0.75), color=colors[step], alpha=0.2, lw=0)
        if across is not None:
            ax.plot(layers, across.sel(token_step=step), ls="--", color=colors[step], label=f"pooled images, step {step}")
    ax.set_xlabel("block")
    ax.set_ylabel("effective rank")
    ax.legend(fontsize="small")
    ax.set_title(title)
    return fig
