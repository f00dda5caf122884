"""Figures of the chapter "Steering through subspaces": ablation, patching and steering curves.

Inputs are the summaries of :func:`subspacelens.intervene.experiments.summarise` (``mean``, ``low``,
``high`` over a condition and a block or strength axis) and, for the lens' side, step-averaged profiles of
:mod:`subspacelens.analysis`. Intervals are shaded; the colours of the conditions are fixed here.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .controls import depth_axis
from .style import color

CONDITION_STYLES = {
    "none": {"color": color("trained"), "ls": ":", "label": "no edit"},
    "coarse": {"color": color("coarse"), "label": "category subspace"},
    "fine": {"color": color("fine"), "label": "subject subspace"},
    "random": {"color": color("null"), "ls": "--", "label": "random (control: same rank or norm)"},
    "subspace": {"color": color("fine"), "label": "subject subspace"},
    "in_span": {"color": color("reference"), "label": "subject subspace ∩ natural span"},
    "full": {"color": color("trained"), "ls": ":", "label": "whole activation (upper bound)"},
    "mean_difference": {"color": color("fine"), "label": "class-mean difference"},
}


def _curve(ax, summary, x, **style):
    ax.plot(summary[x].values, summary["mean"].values, marker="o", ms=3, **style)
    ax.fill_between(summary[x].values, summary["low"].values, summary["high"].values, color=style.get("color"),
                    alpha=0.18, lw=0)


def _conditions(ax, summary, x, dim):
    for condition in summary[dim].values:
        _curve(ax, summary.sel({dim: condition}), x, **CONDITION_STYLES[str(condition)])


def plot_ablation_profile(accuracy, lens, *, relative_depth, title=""):
    """Left: accuracy per block under each ablation (``accuracy``: {panel title: summary over (condition,
    layer)}). Right: the lens' profiles (``lens``: {label: (DataArray over layer, colour name)})."""
    fig, axes = plt.subplots(1, len(accuracy) + 1, figsize=(3.9 * (len(accuracy) + 1), 3.3), constrained_layout=True)
    for ax, (name, summary) in zip(axes, accuracy.items()):
        _conditions(ax, summary, "layer", "condition")
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("ablated block")
        ax.set_ylim(-0.03, 1.03)
        depth_axis(ax, summary["layer"].values, relative_depth(summary["layer"].values))
    axes[0].set_ylabel("fraction of images")
    axes[0].legend(fontsize="x-small", loc="lower left")
    ax = axes[-1]
    for label, (curve, colour) in lens.items():
        values = curve.values / np.nanmax(np.abs(curve.values))
        ax.plot(curve["layer"].values, values, marker="o", ms=3, color=color(colour), label=label)
    ax.set_title("the lens (scaled to max 1)", fontsize="medium")
    ax.set_xlabel("block")
    ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    return fig


def plot_patching(switched, off_manifold, *, kinds, title=""):
    """Switch rate per block and condition for each kind of pair (``switched``: {kind: summary}), and the
    off-manifold score of the patched activations (``off_manifold``: summary over (condition, layer))."""
    fig, axes = plt.subplots(1, len(kinds) + 1, figsize=(3.9 * (len(kinds) + 1), 3.3), constrained_layout=True)
    for ax, kind in zip(axes, kinds):
        _conditions(ax, switched[kind], "layer", "condition")
        ax.set_title(f"{kind}-category pairs", fontsize="medium")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("patched block")
    axes[0].set_ylabel("switched to the source subject")
    axes[0].legend(fontsize="x-small", loc="upper left")
    _conditions(axes[-1], off_manifold, "layer", "condition")
    axes[-1].set_title("off-manifold score", fontsize="medium")
    axes[-1].set_xlabel("patched block")
    axes[-1].set_ylim(-0.03, 1.03)
    if title:
        fig.suptitle(title)
    return fig


def plot_steering(switched, off_manifold, *, natural_rate, title=""):
    """Switch rate and off-manifold score against steering strength, per direction (summaries over
    (direction, strength)); ``natural_rate`` marks the score of natural activations (1 − quantile)."""
    fig, axes = plt.subplots(1, 2, figsize=(7.8, 3.3), constrained_layout=True)
    for ax, summary, ylabel in ((axes[0], switched, "switched to the source subject"),
                                (axes[1], off_manifold, "off-manifold score")):
        _conditions(ax, summary, "strength", "direction")
        ax.set_xlabel("strength α")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.03, 1.03)
    axes[1].axhline(natural_rate, color=color("reference"), lw=1, ls=":", label="natural activations")
    axes[0].legend(fontsize="x-small", loc="upper left")
    axes[1].legend(fontsize="x-small", loc="upper left")
    if title:
        fig.suptitle(title)
    return fig
