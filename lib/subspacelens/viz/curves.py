"""Per-layer profiles, layer × configuration heatmaps and overlap matrices (chapters 1–4 and the scorecard).

Inputs are the xarray results of :mod:`subspacelens.analysis` (``profile`` Datasets with ``value`` and,
when bootstrapped, ``low``/``high`` over ``(layer, step, branch)``; ``overlap_matrix`` DataArrays).
Colours come from :mod:`subspacelens.viz.style`, so coarse/fine and cond/uncond look the same in every
chapter; the curve, band and depth-axis primitives are shared with :mod:`subspacelens.viz.controls`.
Every per-layer figure shows the block index and the relative depth ``layer / (num_layers_total - 1)``,
so a 12-block organism and 28-block PixArt-α can be compared by shape.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from .controls import band, depth_axis, step_colors
from .style import (
    PALETTE,
    SUPTITLE_HEIGHT,
    TEXT_WIDTH,
    color,
    figure_size,
    legend_below,
    legend_height,
    merged_legend_below,
    panel_grid,
    panels,
    suptitle,
    text_width,
    wrap_text,
)

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
    n_labels = len(curves) + len(hlines or {}) + len(blog_points or {}) + bool(blog_spans)
    fig, (left, right) = plt.subplots(1, 2, constrained_layout=True, figsize=figure_size(
        2, extra_height=(SUPTITLE_HEIGHT if title else 0.0) + legend_height(["blog (PixArt-α)"] * n_labels)))
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
    merged_legend_below(fig, (left, right))
    suptitle(fig, title)
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
    ncols = panel_grid(len(steps))[1]
    n_labels = len(labels) + len(hlines or {})
    fig, axes = panels(len(steps), panel_aspect=1.0, sharey=True,
                       extra_height=SUPTITLE_HEIGHT + legend_height(["finite-sample bound"] * n_labels))
    for c, step in enumerate(steps):
        ax = axes[c]
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
        name = f"step {int(step)}" + (f" (t = {timestep:g})" if timestep is not None else "")
        ax.set_title(wrap_text(name, ncols))
        if c + ncols >= len(steps):
            ax.set_xlabel("block")
        if c % ncols == 0:
            ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        depth_axis(ax, profiles[labels[0]]["layer"].values, profiles[labels[0]]["relative_depth"].values)
    legend_below(fig, *axes[-1].get_legend_handles_labels())
    suptitle(fig, f"{title} ({branch} branch)" if title else f"{branch} branch")
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
    # the whole column: the legend of every configuration sits right of the panel
    fig, ax = plt.subplots(figsize=figure_size(width=TEXT_WIDTH, panel_aspect=0.55), constrained_layout=True)
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
    ax.set_title(wrap_text(f"{title} ({branch} branch)" if title else f"{branch} branch", width=0.75 * TEXT_WIDTH))
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
    # one column per block, one row per configuration; never wider than the text column: past that the
    # cells narrow, and the annotations shrink to fit them (6.5 pt at most, 4.5 pt at least)
    width = min(0.55 * frame.shape[1] + 3.5, TEXT_WIDTH)
    fig, ax = plt.subplots(figsize=(width, 0.35 * frame.shape[0] + 1.6), constrained_layout=True)
    size = 6.5
    if annot and frame.size:
        widest = max(text_width(format(v, fmt), fontsize=size) for v in np.ravel(frame.to_numpy(dtype=float)))
        # what the blocks leave: less the row labels, the y label, the colour bar and its label
        cell = (width - 1.2 - max(text_width(str(i)) for i in frame.index)) / frame.shape[1]
        size = float(np.clip(size * 0.9 * cell / max(widest, 1e-6), 4.5, 6.5))
    sns.heatmap(frame, cmap="rocket_r", annot=annot, fmt=fmt, annot_kws={"fontsize": size},
                cbar_kws={"label": cbar_label}, ax=ax)
    ax.set(xlabel="block", ylabel="configuration", title=title)
    ticks = ax.get_xticklabels()
    if ticks:  # a label on every block only when they fit side by side
        widest = max(text_width(t.get_text(), fontsize=mpl.rcParams["xtick.labelsize"]) for t in ticks) + 0.04
        every = int(np.ceil(widest * len(ticks) / (width - 1.2 - max(text_width(str(i)) for i in frame.index))))
        for k, tick in enumerate(ticks):
            tick.set_visible(k % max(every, 1) == 0)
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
        size = 3.6 if om.shape[0] <= 6 else TEXT_WIDTH - 0.8  # square, plus the colour bar
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
    ax.set_title(title)
    return fig


def plot_overlap_matrices(matrices, *, title=""):
    """A row of overlap matrices (e.g. the 5 × 5 category matrix at four blocks), one colour scale."""
    ncols = panel_grid(len(matrices))[1]
    fig, axes = panels(len(matrices), panel_aspect=1.0, extra_height=SUPTITLE_HEIGHT if title else 0.0)
    for k, (ax, om) in enumerate(zip(axes, matrices)):
        plot_overlap_matrix(om, ax=ax, cbar=k == len(matrices) - 1,
                            title=wrap_text(f"block {om.attrs['layer']} · mean {om.attrs['mean_offdiagonal']:.2f}",
                                            ncols))
        if k % ncols:
            ax.set_yticklabels([])
    suptitle(fig, title)
    return fig
