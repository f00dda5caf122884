"""Per-layer profiles, layer × configuration heatmaps and overlap matrices (chapters 1–4 and the scorecard).

Inputs are the xarray results of :mod:`subspacelens.analysis` (``profile`` Datasets with ``value`` and,
when bootstrapped, ``low``/``high`` over ``(layer, step, branch)``; ``overlap_matrix`` DataArrays).
Colours come from :mod:`subspacelens.viz.style`, so coarse/fine and cond/uncond look the same in every
chapter; the curve, band and depth-axis primitives are shared with :mod:`subspacelens.viz.controls`.
Every per-layer figure shows the block index and the relative depth ``layer / (num_layers_total - 1)``,
so a 12-block organism and 28-block PixArt-α can be compared by shape.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
import seaborn as sns

from .controls import band, depth_axis, step_colors
from .style import PALETTE, color

__all__ = [
    "config_label",
    "plot_config_curves",
    "plot_layer_heatmap",
    "plot_overlap_matrices",
    "plot_overlap_matrix",
    "plot_profile_pair",
    "plot_steps",
]


def _color(label, fallback=None):
    return color(label) if label in PALETTE else fallback


def _shade_spans(ax, spans, label="blog (PixArt-α)"):
    for i, (lo, hi) in enumerate(spans or ()):
        ax.axvspan(lo, hi, color=color("reference"), alpha=0.15, lw=0, label=label if i == 0 else None)


def plot_profile_pair(curves, *, ylabel, title="", blog_spans=None, blog_points=None, hlines=None):
    """One metric per block, two views: against the block index (CI bands, relative depth on top) and,
    normalised by each curve's maximum, against relative depth — the view that compares shapes across
    models of different depth.

    ``curves`` maps a label (``"coarse"``, ``"fine"``, ``"cond"``, …; palette colours) to a Dataset over
    ``layer`` with ``value`` (+ ``low``/``high``) and the ``relative_depth`` coord. ``blog_spans`` is a list of
    (start, end) relative depths to shade (e.g. the blog's dip at blocks 15–18 of 27); ``blog_points`` a
    dict label → (depths, values) drawn normalised on the right panel; ``hlines`` a dict label → y drawn
    on the left panel (finite-sample bounds, chance levels).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.8), constrained_layout=True)
    first = None
    for label, curve in curves.items():
        first = curve if first is None else first
        c = _color(label)
        band(left, curve["value"], low=curve.get("low"), high=curve.get("high"), label=label, color_=c)
        peak = float(curve["value"].max())
        depth = curve["relative_depth"].values
        (line,) = right.plot(depth, curve["value"].values / peak, marker="o", ms=3, color=c, label=label)
        if "low" in curve:
            right.fill_between(depth, curve["low"].values / peak, curve["high"].values / peak,
                               color=line.get_color(), alpha=0.2, lw=0)
    for i, (label, y) in enumerate((hlines or {}).items()):
        left.axhline(y, color=color("reference"), ls=("--", ":", "-.")[i % 3], lw=1.2, label=label)
    for label, (depths, values) in (blog_points or {}).items():
        values = np.asarray(values, dtype=float)
        right.plot(depths, values / values.max(), ls="none", marker="*", ms=10, color=color("reference"),
                   markeredgecolor="k", mew=0.5, label=f"blog, {label}")
    _shade_spans(right, blog_spans)
    depth_axis(left, first["layer"].values, first["relative_depth"].values)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set(xlabel="block", ylabel=ylabel)
    right.set(xlabel="relative depth (block / last block)", ylabel=f"{ylabel.split(' (')[0]} / max", xlim=(-0.03, 1.03))
    left.legend(fontsize="small")
    right.legend(fontsize="small")
    fig.suptitle(title)
    return fig


def plot_steps(profiles, *, branch="cond", ylabel, title="", hlines=None, styles=None):
    """Small multiples, one panel per denoising step: each labelled profile with its CI band.

    ``profiles`` maps a label to an ``analysis.profile`` Dataset (dims layer, step, branch). ``hlines`` maps
    a label to a y value or to a DataArray over (layer, step[, branch]) drawn dashed (e.g. chance level).
    ``styles`` maps a label to line keywords (``{"color_": ..., "ls": "--"}``); by default a label named in
    the palette takes its colour.
    """
    styles = styles or {}
    labels = list(profiles)
    steps = profiles[labels[0]]["step"].values
    fig, axes = plt.subplots(1, len(steps), figsize=(3.2 * len(steps), 3.4), squeeze=False, sharey=True,
                             constrained_layout=True)
    for c, step in enumerate(steps):
        ax = axes[0, c]
        for label in labels:
            sl = profiles[label].sel(step=step, branch=branch)
            style = {"color_": _color(label), **styles.get(label, {})}
            band(ax, sl["value"], low=sl.get("low"), high=sl.get("high"), label=label, **style)
        for i, (name, ref) in enumerate((hlines or {}).items()):
            ls = ("--", ":", "-.")[i % 3]
            if np.ndim(ref) == 0:
                ax.axhline(float(ref), color=color("reference"), ls=ls, lw=1.2, label=name)
            else:
                ref = ref.sel(step=step)
                ref = ref.sel(branch=branch) if "branch" in ref.dims else ref
                ax.plot(ref["layer"].values, ref.values, color=color("null"), ls=ls, lw=1.2, label=name)
        timestep = profiles[labels[0]]["timestep"].sel(step=step).item() if "timestep" in profiles[labels[0]].coords else None
        ax.set_title(f"step {int(step)}" + (f" (t = {timestep:g})" if timestep is not None else ""), fontsize="medium")
        ax.set_xlabel("block")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        depth_axis(ax, profiles[labels[0]]["layer"].values, profiles[labels[0]]["relative_depth"].values)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize="small")
    fig.suptitle(f"{title} ({branch} branch)" if title else f"{branch} branch")
    return fig


def config_label(guidance_scale, step, timestep=None):
    """``"CFG 4.5 · step 6"`` (with the scheduler timestep when known)."""
    text = f"CFG {float(guidance_scale):g} · step {int(step)}"
    return text + (f" (t={float(timestep):g})" if timestep is not None else "")


def plot_config_curves(sweep, *, branch="cond", ylabel, title="", normalise=False):
    """One curve per (CFG scale × step) configuration against relative depth, with CI bands when present.

    ``sweep`` is ``analysis.sweep_profile`` output (dims guidance_scale, layer, step, branch). Colour: step
    (light = early, noisy); line style: CFG scale. ``normalise`` divides each curve by its last block.
    """
    colors = step_colors(sweep["step"].values)
    styles = dict(zip(sweep["guidance_scale"].values, ("-", "--", ":", "-.")))
    fig, ax = plt.subplots(figsize=(8.4, 4.2), constrained_layout=True)
    depth = sweep["relative_depth"].values
    for g in sweep["guidance_scale"].values:
        for step in sweep["step"].values:
            sl = sweep.sel(guidance_scale=g, step=step, branch=branch)
            scale = float(sl["value"].isel(layer=-1)) if normalise else 1.0
            ax.plot(depth, sl["value"].values / scale, color=colors[step], ls=styles[g], marker="o", ms=2.5,
                    label=config_label(g, step))
            if "low" in sl:
                ax.fill_between(depth, sl["low"].values / scale, sl["high"].values / scale, color=colors[step],
                                alpha=0.12, lw=0)
    ax.set(xlabel="relative depth (block / last block)", ylabel=ylabel + (" / last block" if normalise else ""))
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{title} ({branch} branch)" if title else f"{branch} branch")
    return fig


def plot_layer_heatmap(table, *, cbar_label, title="", fmt=".0f", annot=True):
    """Heatmap of a (configuration × layer) table, e.g. ΔR for every timestep × CFG configuration.

    ``table`` is a DataArray with dims (``config``, ``layer``) — ``sweep["value"].stack(config=(...))``
    works, labels via :func:`config_label` — or a ``pandas.DataFrame`` (rows: configurations, cols: blocks).
    """
    if hasattr(table, "dims"):
        labels = [config_label(*c) if isinstance(c, tuple) else str(c) for c in table["config"].values]
        frame = table.transpose("config", "layer").to_pandas()
        frame.index = labels
    else:
        frame = table
    fig, ax = plt.subplots(figsize=(0.55 * frame.shape[1] + 3.5, 0.35 * frame.shape[0] + 1.6),
                           constrained_layout=True)
    sns.heatmap(frame, cmap="rocket_r", annot=annot, fmt=fmt, annot_kws={"fontsize": 6.5},
                cbar_kws={"label": cbar_label}, ax=ax)
    ax.set(xlabel="block", ylabel="configuration", title=title)
    return fig


def _category_breaks(om):
    """Positions between consecutive classes of different categories (for the 25 × 25 subject matrix)."""
    if "category_i" not in om.coords:
        return []
    cats = list(om["category_i"].values)
    return [i for i in range(1, len(cats)) if cats[i] != cats[i - 1]]


def plot_overlap_matrix(om, *, ax=None, title=None, annot=None, cbar=True):
    """Heatmap of one class-subspace overlap matrix (``analysis.overlap_matrix``) on a fixed [0, 1] scale.

    Subject matrices come ordered by category with the category blocks outlined, so nesting shows as a
    block-diagonal; small (≤ 6 classes) matrices are annotated.
    """
    if ax is None:
        size = 3.6 if om.shape[0] <= 6 else 7.5
        fig, ax = plt.subplots(figsize=(size + 0.8, size), constrained_layout=True)
    else:
        fig = ax.figure
    annot = om.shape[0] <= 6 if annot is None else annot
    labels = [str(c) for c in om["class_i"].values]
    sns.heatmap(om.values, vmin=0, vmax=1, cmap="mako_r", annot=annot, fmt=".2f", square=True,
                xticklabels=labels, yticklabels=labels, cbar=cbar, cbar_kws={"label": "overlap", "shrink": 0.8},
                ax=ax, annot_kws={"fontsize": 7})
    for b in _category_breaks(om):
        ax.axhline(b, color="w", lw=1.5)
        ax.axvline(b, color="w", lw=1.5)
    ax.tick_params(labelsize=6 if om.shape[0] > 6 else 8)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=90)
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    if title is None:
        title = (f"block {om.attrs.get('layer')} · mean off-diag {om.attrs.get('mean_offdiagonal', np.nan):.2f} "
                 f"(chance {om.attrs.get('chance', np.nan):.2f})")
    ax.set_title(title, fontsize="medium")
    return fig


def plot_overlap_matrices(matrices, *, title=""):
    """A row of overlap matrices (e.g. the 5 × 5 category matrix at four blocks), one colour scale."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices) + 0.8, 3.8), squeeze=False,
                             constrained_layout=True)
    for k, (ax, om) in enumerate(zip(axes[0], matrices)):
        plot_overlap_matrix(om, ax=ax, cbar=k == len(matrices) - 1,
                            title=f"block {om.attrs['layer']} · mean {om.attrs['mean_offdiagonal']:.2f}")
        if k:
            ax.set_yticklabels([])
    fig.suptitle(title)
    return fig
