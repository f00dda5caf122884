"""Figures of the chapter "Steering through subspaces": ablation, patching and steering curves.

Inputs are the summaries of :func:`subspacelens.intervene.experiments.summarise` (``mean``, ``low``,
``high`` over a condition and a block or strength axis) and, for the lens' side, step-averaged profiles of
:mod:`subspacelens.analysis`. Intervals are shaded; the colours of the conditions are fixed here.
"""

from __future__ import annotations

import numpy as np

from .controls import depth_axis
from .style import (
    SUPTITLE_HEIGHT,
    color,
    legend_height,
    merged_legend_below,
    panel_grid,
    panels,
    suptitle,
    wrap_text,
)

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


def _height(title, labels, **legend):
    """Room for the suptitle (if any) and a legend of ``labels`` under the panels."""
    return (SUPTITLE_HEIGHT if title else 0.0) + legend_height(list(dict.fromkeys(labels)), **legend)


def _labels(*summaries, dim):
    return [CONDITION_STYLES[str(c)]["label"] for s in summaries for c in s[dim].values]


def plot_ablation_profile(accuracy, lens, *, relative_depth, title=""):
    """Left: accuracy per block under each ablation (``accuracy``: {panel title: summary over (condition,
    layer)}). Right: the lens' profiles (``lens``: {label: (DataArray over layer, colour name)})."""
    n = len(accuracy) + 1
    ncols = panel_grid(n)[1]
    fig, axes = panels(n, extra_height=_height(title, _labels(*accuracy.values(), dim="condition") + list(lens)))
    for ax, (name, summary) in zip(axes, accuracy.items()):
        _conditions(ax, summary, "layer", "condition")
        ax.set_title(wrap_text(name, ncols))
        ax.set_xlabel("ablated block")
        ax.set_ylim(-0.03, 1.03)
        depth_axis(ax, summary["layer"].values, relative_depth(summary["layer"].values))
    axes[0].set_ylabel("fraction of images")
    ax = axes[-1]
    for label, (curve, colour) in lens.items():
        values = curve.values / np.nanmax(np.abs(curve.values))
        ax.plot(curve["layer"].values, values, marker="o", ms=3, color=color(colour), label=label)
    ax.set_title(wrap_text("the lens (scaled to max 1)", ncols))
    ax.set_xlabel("block")
    merged_legend_below(fig, axes)
    if title:
        suptitle(fig, title)
    return fig


def plot_patching(switched, off_manifold, *, kinds, title=""):
    """Switch rate per block and condition for each kind of pair (``switched``: {kind: summary}), and the
    off-manifold score of the patched activations (``off_manifold``: summary over (condition, layer))."""
    n = len(kinds) + 1
    ncols = panel_grid(n)[1]
    labels = _labels(*(switched[kind] for kind in kinds), off_manifold, dim="condition")
    fig, axes = panels(n, extra_height=_height(title, labels))
    for ax, kind in zip(axes, kinds):
        _conditions(ax, switched[kind], "layer", "condition")
        ax.set_title(wrap_text(f"{kind}-category pairs", ncols))
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("patched block")
    axes[0].set_ylabel("switched to the source subject")
    _conditions(axes[-1], off_manifold, "layer", "condition")
    axes[-1].set_title(wrap_text("off-manifold score", ncols))
    axes[-1].set_xlabel("patched block")
    axes[-1].set_ylim(-0.03, 1.03)
    merged_legend_below(fig, axes)
    if title:
        suptitle(fig, title)
    return fig


def plot_steering(switched, off_manifold, *, natural_rate, title=""):
    """Switch rate and off-manifold score against steering strength, per direction (summaries over
    (direction, strength)); ``natural_rate`` marks the score of natural activations (1 − quantile)."""
    labels = _labels(switched, off_manifold, dim="direction") + ["natural activations"]
    fig, axes = panels(2, extra_height=_height(title, labels))
    for ax, summary, ylabel in ((axes[0], switched, "switched to the source subject"),
                                (axes[1], off_manifold, "off-manifold score")):
        _conditions(ax, summary, "strength", "direction")
        ax.set_xlabel("strength α")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.03, 1.03)
    axes[1].axhline(natural_rate, color=color("reference"), lw=1, ls=":", label="natural activations")
    merged_legend_below(fig, axes)
    if title:
        suptitle(fig, title)
    return fig
