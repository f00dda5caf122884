"""Figures of the "Validating the lens" chapter: each metric against the answer planted in synthetic data.

Every helper takes a tidy :class:`pandas.DataFrame` (one row per measurement, column names documented on
the function), draws one figure in the book style (:func:`subspacelens.viz.style.use_book_style`) and
returns the :class:`matplotlib.figure.Figure`. Nothing here computes a metric.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .style import (
    LEGEND_ROW_HEIGHT,
    TEXT_WIDTH,
    color,
    figure_size,
    legend_below,
    legend_height,
    panel_grid,
    panels,
    wrap_text,
)

__all__ = [
    "plot_delta_r_vs_angle",
    "plot_eps_curves",
    "plot_finite_sample",
    "plot_hoyer",
    "plot_isotropy",
    "plot_overlap_matrix",
    "plot_overlap_recovery",
    "plot_rank_recovery",
]

ANGLE_PALETTE = "crest"
"""Sequential palette for the planted angle θ: light = identical subspaces, dark = orthogonal."""

VARIANT_COLORS = {"raw": color("coarse"), "centred": color("fine")}
"""Raw (uncentred, the blog's setting) vs centred features."""

PAIR = [color("coarse"), color("fine")]
"""Two series that are neither a reference nor a null (e.g. two estimators of one quantity)."""


def _identity_line(ax, lo: float, hi: float, label: str = "planted = measured") -> None:
    ax.plot([lo, hi], [lo, hi], ls="--", lw=1, color=color("reference"), label=label, zorder=0)


def plot_delta_r_vs_angle(table: pd.DataFrame) -> Figure:
    """ΔR against the planted principal angle, with the permuted-labels null.

    Columns: ``angle`` (degrees), ``R``, ``Rc``, ``delta_R`` (observed, nats), ``null_mean``, ``null_low``,
    ``null_high`` (the permutation null's mean and central interval). Left panel: R and R_c; right: ΔR
    against its null band.
    """
    legend = legend_height(["permuted labels (95% band)"] * 5)
    fig, (left, right) = plt.subplots(1, 2, sharex=True, constrained_layout=True,
                                      figsize=figure_size(2, extra_height=legend))
    left.plot(table["angle"], table["R"], "o-", color=color("trained"), label=r"$R$ (all samples)")
    left.plot(table["angle"], table["Rc"], "s--", color=color("fine"), label=r"$R_c$ (class average)")
    left.set(xlabel="planted principal angle θ (degrees)", ylabel="coding rate (nats)", title="Rates")
    right.fill_between(
        table["angle"], table["null_low"], table["null_high"], color=color("null"), alpha=0.3, lw=0,
        label="permuted labels (95% band)",
    )
    right.plot(table["angle"], table["null_mean"], ":", color=color("null"), label="permuted labels (mean)")
    right.plot(table["angle"], table["delta_R"], "o-", color=color("coarse"), label=r"$\Delta R$ (true labels)")
    right.set(xlabel="planted principal angle θ (degrees)", ylabel=r"$\Delta R$ (nats)", title="Rate reduction")
    right.set_xticks(table["angle"])
    handles, labels = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    legend_below(fig, handles + more[0], labels + more[1])
    return fig


def plot_overlap_recovery(table: pd.DataFrame) -> Figure:
    """Measured mean off-diagonal overlap against the planted mean cos² of the principal angles.

    Columns: ``planted_cos2``, ``overlap`` (measured), ``basis`` (how the class bases were sized, the hue),
    ``chance`` (the metric's chance level for random subspaces of those sizes).
    """
    fig, ax = plt.subplots(figsize=figure_size(panel_aspect=0.85))
    _identity_line(ax, 0.0, 1.0)
    sns.lineplot(data=table, x="planted_cos2", y="overlap", hue="basis", style="basis", markers=True,
                 palette=PAIR[: table["basis"].nunique()], ax=ax)
    ax.axhline(table["chance"].mean(), color=color("null"), lw=1, ls=":", label="chance (random subspaces)")
    ax.set(xlabel=r"planted mean $\cos^2$ of principal angles", ylabel="measured mean off-diagonal overlap")
    ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), aspect="equal", title="Overlap recovers the angles")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def plot_overlap_matrix(matrix: np.ndarray, classes, *, title: str = "Subspace overlap") -> Figure:
    """Heatmap of one K×K overlap matrix, annotated, on a fixed [0, 1] colour scale."""
    fig, ax = plt.subplots(figsize=figure_size(width=0.6 * TEXT_WIDTH, panel_aspect=0.85))
    labels = [str(c) for c in classes]
    sns.heatmap(
        np.asarray(matrix), vmin=0, vmax=1, cmap="mako_r", annot=True, fmt=".2f", square=True,
        xticklabels=labels, yticklabels=labels, cbar_kws={"label": "overlap"}, ax=ax,
    )
    ax.set(xlabel="class", ylabel="class", title=title)
    fig.tight_layout()
    return fig


def plot_rank_recovery(table: pd.DataFrame, style: str = "noise") -> Figure:
    """Measured dimensionality against the planted rank k of a Gaussian on a k-dimensional subspace.

    Columns: ``planted_rank``, ``value``, ``measure`` (hue: e.g. effective rank, participation ratio) and
    the column named by ``style`` (line style: e.g. the noise level). Log-log axes; dashed: measured = planted.
    """
    fig, ax = plt.subplots(figsize=figure_size(width=TEXT_WIDTH, panel_aspect=0.65))
    _identity_line(ax, table["planted_rank"].min(), table["planted_rank"].max())
    sns.lineplot(data=table, x="planted_rank", y="value", hue="measure", style=style, markers=True,
                 palette=PAIR[: table["measure"].nunique()], ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="planted subspace dimension k", ylabel="measured dimension")
    ax.set_title("Effective rank against the planted dimension")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def plot_hoyer(table: pd.DataFrame) -> Figure:
    """Per-sample Hoyer sparsity of each kind of synthetic code.

    Columns: ``data`` (the code, one row of the plot), ``hoyer`` (one value per sample/column), ``kind``
    (``sparse`` or ``dense``: the colour).
    """
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 0.55 * table["data"].nunique() + 1.2))  # a row per data set
    palette = {"sparse": color("fine"), "dense": color("coarse")}
    sns.boxplot(data=table, x="hoyer", y="data", hue="kind", palette=palette, fliersize=0, width=0.6,
                dodge=False, ax=ax)
    sns.stripplot(data=table, x="hoyer", y="data", color=color("trained"), size=1.2, alpha=0.2, ax=ax)
    ax.set(xlim=(0, 1), xlabel="Hoyer sparsity (0 = all entries equal, 1 = one non-zero)", ylabel="")
    ax.set_title("Hoyer sparsity per sample")
    ax.legend(title="planted code", loc="lower right")
    fig.tight_layout()
    return fig


def plot_isotropy(table: pd.DataFrame, alpha: float) -> Figure:
    """Jarque–Bera rejection rate on random projections, per data set, against the level α.

    Columns: ``data`` (one row of the plot), ``rejection_rate`` (one value per draw: several draws give
    a spread), ``structured`` (bool: the colour). The x axis is linear below α and logarithmic above.
    """
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 0.5 * table["data"].nunique() + 1.2))  # a row per data set
    palette = {False: color("reference"), True: color("coarse")}
    sns.stripplot(data=table, x="rejection_rate", y="data", hue="structured", palette=palette, size=6,
                  jitter=0.15, ax=ax)
    ax.axvline(alpha, color=color("null"), ls="--", lw=1.2, label=f"α = {alpha:g}")
    ax.set_xscale("symlog", linthresh=alpha)
    ax.set_xlim(0, 1.05)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set(xlabel="fraction of projections rejecting normality", ylabel="", title="Isotropy test")
    handles, labels = ax.get_legend_handles_labels()
    names = {"True": "structured", "False": "isotropic"}
    ax.legend(handles, [names.get(label, label) for label in labels], loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    return fig


def plot_finite_sample(table: pd.DataFrame, d: int) -> Figure:
    """Metrics against the number of samples N, raw vs centred, with N = d marked.

    Columns: ``n_samples``, ``metric`` (one panel each), ``value``, ``variant`` (``raw``/``centred``: colour),
    ``data`` (line style, e.g. structured vs isotropic).
    """
    nrows, ncols = panel_grid(table["metric"].nunique(), max_cols=2)
    width, height = figure_size(ncols, nrows)
    grid = sns.relplot(
        data=table, x="n_samples", y="value", col="metric", hue="variant", style="data", kind="line",
        markers=True, palette=VARIANT_COLORS, facet_kws={"sharey": False}, height=height / nrows,
        aspect=width / ncols / (height / nrows), col_wrap=2,
    )
    for ax in grid.axes.flat:
        ax.axvline(d, color=color("null"), ls="--", lw=1)
        ax.set_xscale("log")
        ax.text(d, 1.0, " N = d", transform=ax.get_xaxis_transform(), va="top", fontsize="small",
                color=color("null"))
    grid.set_titles("{col_name}")
    grid.set_axis_labels("number of samples N", "")
    # the legend under the panels, and the figure back to the text column's width (the legend seaborn
    # puts on the right widens it)
    n_entries = len(grid.legend.get_texts())
    sns.move_legend(grid, "lower center", bbox_to_anchor=(0.5, 0), ncol=n_entries, frameon=False, title=None)
    grid.figure.set_size_inches(width, height + LEGEND_ROW_HEIGHT + 0.1)
    grid.figure.tight_layout(rect=(0, (LEGEND_ROW_HEIGHT + 0.1) / (height + LEGEND_ROW_HEIGHT + 0.1), 1, 1))
    return grid.figure


def plot_eps_curves(table: pd.DataFrame, eps: float) -> Figure:
    """ΔR as a function of the precision ε, one curve per planted angle.

    Columns: ``eps``, ``delta_R`` (nats), ``angle`` (degrees, the hue). Left: ΔR(ε); right: the same
    minus the curve of the smallest angle, i.e. what the rotation of the subspaces adds at each ε.
    The default ε is marked on both.
    """
    wide = table.pivot_table(index="eps", columns="angle", values="delta_R")
    excess = (wide.sub(wide.iloc[:, 0], axis=0)).reset_index().melt(id_vars="eps", value_name="excess")
    fig, (left, right) = plt.subplots(1, 2, sharex=True, constrained_layout=True,  # room: legend and its title
                                      figsize=figure_size(2, extra_height=2 * LEGEND_ROW_HEIGHT))
    sns.lineplot(data=table, x="eps", y="delta_R", hue="angle", palette=ANGLE_PALETTE, ax=left, legend=False)
    sns.lineplot(data=excess, x="eps", y="excess", hue="angle", palette=ANGLE_PALETTE, ax=right, legend="full")
    left.set(ylabel=r"$\Delta R$ (nats)", title=r"$\Delta R(\varepsilon)$")
    right.set(ylabel=rf"$\Delta R - \Delta R_{{\theta={wide.columns[0]:g}°}}$ (nats)",
              title="What the angle adds")
    for ax in (left, right):
        ax.axvline(eps, color=color("null"), ls="--", lw=1)
        ax.text(eps, 1.0, f" ε = {eps:g}", transform=ax.get_xaxis_transform(), va="top", color=color("null"))
        ax.set(xscale="log", xlabel="coding precision ε")
    handles, labels = right.get_legend_handles_labels()
    right.get_legend().remove()
    legend_below(fig, handles, labels, title="θ (degrees)", ncol=len(labels))
    return fig


def plot_scale_confound(table: pd.DataFrame, predicted_slope: float) -> Figure:
    """ΔR against the factor c that multiplies Z, raw (absolute ε) and scale-aware (ε relative to RMS norm).

    Columns: ``c``, ``statistic`` (hue), ``delta_R``. The dashed line is the predicted asymptote
    ``ΔR(1) + predicted_slope · log c`` of the raw statistic.
    """
    fig, ax = plt.subplots(figsize=figure_size(width=TEXT_WIDTH, panel_aspect=0.56))
    sns.lineplot(data=table, x="c", y="delta_R", hue="statistic", marker="o", ax=ax,
                 palette={"raw (absolute ε)": color("fine"), "scale-aware (ε × RMS norm)": color("coarse")})
    raw = table[table.statistic == "raw (absolute ε)"].set_index("c").delta_R
    c = np.asarray(raw.index)
    ax.plot(c, raw.loc[1.0] + predicted_slope * np.log(c), ls="--", color=color("reference"),
            label=f"predicted slope {predicted_slope:.0f} · log c")
    ax.set(xscale="log", xlabel="activations multiplied by c", ylabel=r"$\Delta R$ (nats)",
           title="Raw ΔR measures the activation scale")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_sample_size(curves: pd.DataFrame) -> Figure:
    """Metric mean and 95 % spread over seed subsets against images per class, one panel per (metric, d).

    Columns: ``per_class``, ``mean``, ``low``, ``high``, ``panel``.
    """
    names = list(dict.fromkeys(curves.panel))
    ncols = panel_grid(len(names))[1]
    fig, axes = panels(len(names), panel_aspect=1.2)  # tall enough for the y label
    for ax, panel in zip(axes, names):
        part = curves[curves.panel == panel]
        ax.plot(part.per_class, part["mean"], marker="o", color=color("fine"))
        ax.fill_between(part.per_class, part.low, part.high, color=color("fine"), alpha=0.25)
        ax.set(title=wrap_text(panel, ncols), xlabel="images per class")
    for ax in axes[::ncols]:
        ax.set_ylabel("value (mean, 95 % of subsets)")
    return fig
