"""Figures of the later chapters: CFG branches, sparsity and isotropy references, and the controls.

Every function takes the xarray results of :mod:`subspacelens.analysis` / :mod:`subspacelens.controls`
and returns a ``matplotlib`` Figure; colours come from :mod:`subspacelens.viz.style` (coarse/fine,
cond/uncond, trained/random-init, null, reference). Per-layer axes show the block index below and the
relative depth ``layer / (num_layers_total - 1)`` above, so curves line up with the blog's 28 blocks.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from matplotlib import cm

from .style import (
    SUPTITLE_HEIGHT,
    color,
    figure_size,
    legend_below,
    legend_height,
    lowest_panels,
    panel_grid,
    panels,
    suptitle,
    wrap_text,
)

REFERENCE_STYLES = ("--", ":", "-.", (0, (5, 1)), (0, (1, 1)))


def step_colors(steps):
    """One colour per denoising step, light (early, noisy) to dark (late, clean)."""
    steps = list(steps)
    return {s: cm.viridis(0.15 + 0.7 * i / max(len(steps) - 1, 1)) for i, s in enumerate(steps)}


def depth_axis(ax, layers, relative_depth):
    """A secondary x axis on top showing the relative depth of the block index below."""
    layers = np.asarray(layers, dtype=float)
    depth = np.asarray(relative_depth, dtype=float)
    if layers.size < 2:
        return None
    slope = (depth[-1] - depth[0]) / (layers[-1] - layers[0])
    offset = depth[0] - slope * layers[0]
    top = ax.secondary_xaxis("top", functions=(lambda x: offset + slope * x, lambda y: (y - offset) / slope))
    top.set_xlabel("relative depth", fontsize="small")
    top.tick_params(labelsize="small")
    return top


def band(ax, da, *, low=None, high=None, label=None, color_=None, **kw):
    """A per-layer curve with an optional shaded interval; ``da`` is a DataArray on ``layer``."""
    x = da["layer"].values
    (line,) = ax.plot(x, da.values, marker="o", ms=3, label=label, color=color_, **kw)
    if low is not None and high is not None:
        ax.fill_between(x, np.asarray(low), np.asarray(high), color=line.get_color(), alpha=0.2, lw=0)
    return line


def _grid(nrows, ncols, *, panel_aspect=0.7, extra_height=0.0, sharey="row"):
    """An ``nrows`` × ``ncols`` grid of per-layer panels in the book's size grammar (text-column wide)."""
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=sharey, constrained_layout=True,
                             figsize=figure_size(ncols, nrows, panel_aspect=panel_aspect, extra_height=extra_height))
    return fig, axes


def _row(n, *, panel_aspect=0.7, extra_height=0.0, sharey=False):
    """``n`` per-layer panels side by side (wrapped into rows past :data:`~.style.MAX_COLUMNS`)."""
    return panels(n, panel_aspect=panel_aspect, extra_height=extra_height, sharex=True, sharey=sharey)


def _finish_layer_axes(axes, da):
    """Relative depth above the top row of panels, "block" under the lowest panel of each column.

    ``axes``: a 2-D grid, or a list of panels in reading order laid out by :func:`~.style.panel_grid`.
    """
    if isinstance(axes, np.ndarray) and axes.ndim == 2:
        ncols = axes.shape[1]
    else:
        ncols = panel_grid(len(axes))[1]
    axes = list(np.ravel(axes))
    for ax in axes[:ncols]:
        depth_axis(ax, da["layer"].values, da["relative_depth"].values)
    for ax in lowest_panels(axes, ncols):
        ax.set_xlabel("block")
    for ax in axes:
        ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))


def _legend_below(fig, ax, **kwargs):
    """The legend of ``ax`` (shared by every panel) under the whole figure."""
    return legend_below(fig, *ax.get_legend_handles_labels(), **kwargs)


def _extra(title, labels=(), **legend):
    """Height for a suptitle (when there is one) and a legend of ``labels`` under the panels."""
    return (SUPTITLE_HEIGHT if title else 0.0) + legend_height(list(labels), **legend)


def _scheme_by_step(results, draw, *, branch=None, title=""):
    """A grid of per-layer panels, rows: label schemes (keys of ``results``), columns: denoising steps.

    ``draw(ax, sl, scheme)`` fills one panel from ``sl``, the scheme's Dataset at that step (and ``branch``,
    if given); the first data var sets the layer axes.
    """
    schemes = list(results)
    first = results[schemes[0]]
    steps = first["step"].values
    fig, axes = _grid(len(schemes), len(steps))
    for r, scheme in enumerate(schemes):
        for c, step in enumerate(steps):
            sl = results[scheme].sel(step=step)
            if branch is not None:
                sl = sl.sel(branch=branch)
            draw(axes[r, c], sl, scheme)
            if r == 0:
                axes[r, c].set_title(f"step {int(step)}")
            if c == 0:
                axes[r, c].set_ylabel(f"ΔR, {scheme} (nats)")
    _legend_below(fig, axes[0, -1])
    fig.set_figheight(fig.get_figheight() + _extra(title, axes[0, -1].get_legend_handles_labels()[1]))
    _finish_layer_axes(axes, first[list(first.data_vars)[0]])
    suptitle(fig, title)
    return fig


def plot_branches(profiles, *, title=""):
    """ΔR of the cond and uncond branch per block; rows: label schemes, columns: steps, bands: CIs.

    ``profiles`` maps a scheme to an ``analysis.profile`` Dataset with ``value``/``low``/``high`` over
    (layer, step, branch).
    """

    def draw(ax, sl, scheme):
        for branch in sl["branch"].values:
            b = sl.sel(branch=branch)
            band(ax, b["value"], low=b.get("low"), high=b.get("high"), label=str(branch), color_=color(str(branch)))

    return _scheme_by_step(profiles, draw, title=title)


def plot_gap(gaps, *, title=""):
    """ΔR(uncond) − ΔR(cond) per block, one line per step with its paired CI, one panel per label scheme."""
    schemes = list(gaps)
    steps = gaps[schemes[0]]["step"].values
    fig, axes = _row(len(schemes), extra_height=_extra(title, [f"step {int(s)}" for s in steps]))
    for c, scheme in enumerate(schemes):
        gap, ax = gaps[scheme], axes[c]
        colors = step_colors(gap["step"].values)
        for step in gap["step"].values:
            g = gap.sel(step=step)
            band(ax, g["gap"], low=g["gap_low"], high=g["gap_high"], label=f"step {int(step)}",
                 color_=colors[step])
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"{scheme} labels", color=color(scheme))
        ax.set_ylabel("uncond − cond (nats)")
    _legend_below(fig, axes[-1])
    _finish_layer_axes(axes, gaps[schemes[0]]["gap"])
    suptitle(fig, title)
    return fig


def plot_seed_check(spread, by_labels):
    """Left: within-seed variance share per block (every step × branch). Right: ΔR of the uncond branch
    under subject (fine) and seed labels, per step."""
    n_lines = 2 * spread.sizes["step"]
    fig, axes = _grid(1, 2, sharey=False, extra_height=legend_height(["step 19, uncond"] * n_lines, ncol=2))
    colors = step_colors(spread["step"].values)
    ax = axes[0, 0]
    for step in spread["step"].values:
        for branch, ls in (("cond", "-"), ("uncond", "--")):
            band(ax, spread["within_fraction"].sel(step=step, branch=branch), color_=colors[step], ls=ls,
                 label=f"step {int(step)}, {branch}")
    ax.set_ylabel("variance not fixed by the seed")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(wrap_text("share of variance across subjects", 2))
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower left", fontsize="x-small", ncol=2)
    ax = axes[0, 1]
    for step in by_labels["step"].values:
        for labels, ls in (("fine", "-"), ("seed", ":")):
            band(ax, by_labels.sel(labels=labels, step=step, branch="uncond"), color_=colors[step], ls=ls,
                 label=f"step {int(step)}, {labels} labels")
    ax.set_ylabel("ΔR, uncond branch (nats)")
    ax.set_title("subject vs seed labels")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower right", fontsize="x-small", ncol=2)
    _finish_layer_axes(axes, spread["within_fraction"])
    return fig


def plot_with_references(prof, references, *, ylabel, title="", blog_range=None, branches=("cond", "uncond"),
                         percent=False):
    """A metric per block (one panel per step, both branches, CI bands) with horizontal reference levels.

    ``references`` maps a label to a float (a horizontal line) or to a DataArray over (layer[, step]) (a
    dashed curve); ``blog_range`` = (low, high) shades the range the blog reported on PixArt-α.
    """
    scale = 100.0 if percent else 1.0
    steps = prof["step"].values
    n_labels = len(references) + len([b for b in branches if b in prof["branch"].values]) + (blog_range is not None)
    fig, axes = _row(len(steps), panel_aspect=1.0, sharey=True,
                     extra_height=_extra(title, ["blog's range (PixArt-α)"] * n_labels))
    for c, step in enumerate(steps):
        ax = axes[c]
        if blog_range is not None:
            ax.axhspan(scale * blog_range[0], scale * blog_range[1], color=color("reference"), alpha=0.12,
                       label="blog's range (PixArt-α)")
        for branch in branches:
            if branch not in prof["branch"].values:
                continue
            sl = prof.sel(step=step, branch=branch)
            low = None if "low" not in sl else scale * sl["low"]
            high = None if "high" not in sl else scale * sl["high"]
            band(ax, scale * sl["value"], low=low, high=high, label=branch, color_=color(branch))
        for i, (name, ref) in enumerate(references.items()):
            ls = REFERENCE_STYLES[i % len(REFERENCE_STYLES)]
            if np.ndim(ref) == 0:
                ax.axhline(scale * float(ref), color=color("reference"), ls=ls, lw=1.2, label=name)
            else:
                curve = ref.sel(step=step) if "step" in getattr(ref, "dims", ()) else ref
                ax.plot(curve["layer"].values, scale * curve.values, color=color("null"), ls=ls, lw=1.2,
                        label=name)
        ax.set_title(f"step {int(step)}")
        if c % panel_grid(len(steps))[1] == 0:
            ax.set_ylabel(ylabel)
    _legend_below(fig, axes[0])
    _finish_layer_axes(axes, prof["value"])
    suptitle(fig, title)
    return fig


def plot_permutation(perms, *, branch="cond", title=""):
    """Observed ΔR per block against the 95% band of the permuted-label null; rows: schemes, cols: steps."""

    def draw(ax, sl, scheme):
        band(ax, sl["observed"], label="observed", color_=color(scheme))
        band(ax, sl["null_mean"], low=sl["null_low"], high=sl["null_high"], label="permuted labels",
             color_=color("null"), ls="--")

    return _scheme_by_step(perms, draw, branch=branch, title=title)


CENTRING_STYLES = {"raw": ("raw (blog)", "-", 1.0), "centred": ("centred", "--", 0.75),
                   "class_centred": ("class means removed", ":", 0.5)}


def plot_centering(centring, *, branch="cond", title=""):
    """Raw, globally centred and class-mean-removed ΔR per block; rows: schemes, cols: steps."""

    def draw(ax, sl, scheme):
        for var, (name, ls, alpha) in CENTRING_STYLES.items():
            band(ax, sl[var], label=name, color_=color(scheme), ls=ls, alpha=alpha)

    return _scheme_by_step(centring, draw, branch=branch, title=title)


def plot_models(profiles, *, branch="cond", title=""):
    """ΔR per relative depth for each model (``model`` dim), CI bands; one panel per label scheme.

    ``profiles`` maps a panel name (a scheme, optionally followed by ``", <variant>"``) to
    ``controls.stack_models`` output; steps are averaged.
    """
    schemes = list(profiles)
    models = [str(m) for m in profiles[schemes[0]]["model"].values]
    # two panels to a row: each has its own y axis and labels, which four narrow panels would not hold
    fig, axes = panels(len(schemes), max_cols=2, extra_height=_extra(title, models))
    ncols = panel_grid(len(schemes), max_cols=2)[1]
    for c, scheme in enumerate(schemes):
        prof, ax = profiles[scheme], axes[c]
        for model in prof["model"].values:
            sl = prof.sel(model=model, branch=branch)
            if "step" in sl.dims:
                sl = sl.mean("step")
            x = sl["relative_depth"].values
            (line,) = ax.plot(x, sl["value"].values, marker="o", ms=3, label=str(model), color=color(str(model)))
            if "low" in sl:
                ax.fill_between(x, sl["low"].values, sl["high"].values, color=line.get_color(), alpha=0.2, lw=0)
        ax.set_ylabel(f"ΔR, {scheme.split(',')[0]} (nats)")
        ax.set_title(wrap_text(f"{scheme} labels", ncols), color=color(scheme.split(",")[0]))
    for ax in lowest_panels(axes, ncols):
        ax.set_xlabel("relative depth (block / last block)")
    _legend_below(fig, axes[-1])
    suptitle(fig, title)
    return fig


def plot_eps_sensitivity(curves, *, branch="cond", title=""):
    """ΔR(block) / ΔR(first block) for every ε (one line each, log-spaced colours); one panel per scheme.

    ``curves`` maps a scheme to ``controls.eps_profile`` output; steps are averaged.
    """
    schemes = list(curves)
    eps_labels = [f"ε = {eps:g}" for eps in curves[schemes[0]]["eps"].values]
    fig, axes = _row(len(schemes), panel_aspect=0.9, extra_height=_extra(title, eps_labels, fontsize="x-small"))
    for c, scheme in enumerate(schemes):
        dr = curves[scheme]["delta_R"].sel(branch=branch).mean("step")
        eps_values = dr["eps"].values
        ax = axes[c]
        for i, eps in enumerate(eps_values):
            curve = dr.sel(eps=eps)
            band(ax, curve / curve.isel(layer=0), label=f"ε = {eps:g}",
                 color_=cm.magma(0.1 + 0.75 * i / max(len(eps_values) - 1, 1)))
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(mticker.FormatStrFormatter("%g"))
        ax.set_ylabel("ΔR / ΔR(block 0)")
        ax.set_title(f"{scheme} labels", color=color(scheme))
    _legend_below(fig, axes[-1], fontsize="x-small")
    _finish_layer_axes(axes, curves[schemes[0]]["delta_R"])
    suptitle(fig, title)
    return fig


def plot_under_controls(result, *, ylabel, controlled_label, title=""):
    """A finding under its controls (:func:`subspacelens.controls.under_controls`), three panels over blocks.

    Left: the raw statistic as the blog measured it, trained model and twin. Middle: the controlled
    statistic (``controlled_label``), trained and twin, with the null band when there is one. Right: the RMS
    activation norm per block, raw and centred — the scale a raw profile carries. Bands: 95 % intervals.
    """
    twin = "twin_raw" in result
    fig, axes = _grid(1, 3, sharey=False, extra_height=(SUPTITLE_HEIGHT if title else 0.0) + legend_height(
        ["random-init twin"] * (1 + twin + ("null_high" in result)), ncol=1))
    left, middle, right = axes[0]
    twin_label = f"random-init twin ({result.attrs.get('twin')})"
    for ax, name in ((left, "raw"), (middle, "controlled")):
        band(ax, result[name], low=result[f"{name}_low"], high=result[f"{name}_high"], label="trained",
             color_=color("trained"))
        if twin:
            band(ax, result[f"twin_{name}"], low=result[f"twin_{name}_low"], high=result[f"twin_{name}_high"],
                 label=twin_label, color_=color("random-init"))
    if "null_high" in result:
        x = result["layer"].values
        middle.fill_between(x, result["null_low"], result["null_high"], color=color("null"), alpha=0.3, lw=0,
                            label="null (95 %)")
    left.set(title=wrap_text("raw (as the blog)", 3), ylabel=ylabel)
    middle.set(title=wrap_text(controlled_label, 3))
    band(right, result["norm"], label="trained, raw", color_=color("trained"))
    band(right, result["norm_centred"], label="trained, centred", color_=color("trained"), ls="--")
    if twin:
        band(right, result["twin_norm"], label="twin, raw", color_=color("random-init"))
        band(right, result["twin_norm_centred"], label="twin, centred", color_=color("random-init"), ls="--")
    right.set(title=wrap_text("RMS activation norm", 3), yscale="log")
    fig.legend(*middle.get_legend_handles_labels(), loc="outside lower left", fontsize="small")
    fig.legend(*right.get_legend_handles_labels(), loc="outside lower right", fontsize="small",
               ncol=2 if twin else 1)
    _finish_layer_axes(axes, result)
    if title:
        suptitle(fig, title)
    return fig
