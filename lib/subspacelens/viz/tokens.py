"""Figures of the per-token chapter: token-level ΔR against its image-level null, and within-image rank.

Inputs are the xarray results of :mod:`subspacelens.tokens` with dims ``(token_layer, token_step)``; one
colour per denoising step (:func:`~subspacelens.viz.controls.step_colors`), the null as a grey band.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .controls import step_colors
from .style import (
    SUPTITLE_HEIGHT,
    color,
    figure_size,
    legend_below,
    legend_height,
    panel_grid,
    panels,
    suptitle,
    wrap_text,
)


def plot_token_nulls(results, *, title="", ylabel="ΔR (nats)"):
    """One panel per labelling (``results``: name → Dataset with ``observed``, ``null_low``, ``null_high``)."""
    ncols = panel_grid(len(results))[1]
    steps = next(iter(results.values()))["token_step"].values
    fig, axes = panels(len(results), extra_height=(SUPTITLE_HEIGHT if title else 0.0)
                       + legend_height([f"step {s}" for s in steps] + ["image-level null"]))
    for ax, (name, result) in zip(axes, results.items()):
        colors = step_colors(result["token_step"].values)
        layers = result["token_layer"].values
        for step in result["token_step"].values:
            one = result.sel(token_step=step)
            ax.plot(layers, one["observed"], marker="o", ms=3, color=colors[step], label=f"step {step}")
            ax.fill_between(layers, one["null_low"], one["null_high"], color=color("null"), alpha=0.3, lw=0)
        ax.set_title(wrap_text(name, ncols))
        ax.set_xlabel("block")
    for ax in axes[::ncols]:
        ax.set_ylabel(ylabel)
    axes[-1].plot([], [], color=color("null"), lw=6, alpha=0.3, label="image-level null")
    legend_below(fig, *axes[-1].get_legend_handles_labels())
    suptitle(fig, title)
    return fig


def plot_within_image_rank(ranks, *, across=None, title=""):
    """Median and interquartile range over images of the within-image effective rank, per block and step;
    ``across`` (dims ``token_layer, token_step``): the rank of the mean-pooled vectors, for comparison."""
    fig, ax = plt.subplots(figsize=figure_size(), constrained_layout=True)
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
