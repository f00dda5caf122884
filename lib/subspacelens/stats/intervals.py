r"""Intervals and p-values: the one home of the percentile code.

Replicates always sit on the **last** axis. Intervals of functions of several blocks (a ratio of the last
block to the first, Spearman's ρ of a profile with depth, the block of an argmin) are the percentile
intervals of that function applied to each paired replicate (the same resample at every block).
"""

import numpy as np
from scipy import stats as scipy_stats

from .._validate import check_level

P_VALUE_METHODS = ("bh", "by", "holm")


def percentile_interval(samples, level=0.95):
    """``(low, high)``: the ``level`` percentile interval over the last axis of ``samples``."""
    level = check_level(level)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(samples, dtype=np.float64), [tail, 1.0 - tail], axis=-1)
    return low, high


def centred_interval(samples, estimate, level=0.95):
    r"""``(low, high, bias)``: the percentile interval of the replicates re-centred on ``estimate``.

    ``bias`` = mean(replicates) − estimate. Resampling with replacement duplicates columns and lowers ranks,
    which shifts rate statistics; re-centring keeps the bootstrap's spread and drops that shift.
    """
    samples = np.asarray(samples, dtype=np.float64)
    bias = samples.mean(axis=-1) - estimate
    low, high = percentile_interval(samples - bias[..., None], level)
    return low, high, bias


def null_p_value(observed, null):
    r"""One-sided permutation p-value :math:`(1 + \#\{\text{null} \ge \text{observed}\}) / (1 + n)`."""
    null = np.asarray(null)
    exceed = (null >= np.asarray(observed)[..., None]).sum(axis=-1)
    return (1.0 + exceed) / (1.0 + null.shape[-1])


def adjust_p_values(p_values, method="bh"):
    """p-values corrected for multiplicity over **all** their entries (e.g. blocks × steps).

    ``"bh"`` (Benjamini–Hochberg false discovery rate) and ``"by"`` (Benjamini–Yekutieli) via
    ``scipy.stats.false_discovery_control``; ``"holm"`` (family-wise, step-down Bonferroni).
    """
    if method not in P_VALUE_METHODS:
        raise ValueError(f"method: expected one of {list(P_VALUE_METHODS)}, got {method!r}")
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.reshape(-1)
    if method in ("bh", "by"):
        return scipy_stats.false_discovery_control(flat, method=method).reshape(p.shape)
    order = np.argsort(flat)
    m = flat.size
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * flat[order]))
    adjusted = np.empty_like(flat)
    adjusted[order] = stepped
    return adjusted.reshape(p.shape)


def spearman_with_depth(curves):
    r"""Spearman's ρ between each curve (last axis = blocks) and its block index, batched over leading axes."""
    curves = np.asarray(curves, dtype=np.float64)
    ranks = scipy_stats.rankdata(curves, axis=-1)
    depth = np.arange(curves.shape[-1], dtype=np.float64)
    ranks = ranks - ranks.mean(axis=-1, keepdims=True)
    depth = depth - depth.mean()
    return (ranks * depth).sum(axis=-1) / np.sqrt((ranks**2).sum(axis=-1) * (depth**2).sum())


def argextremum_interval(estimate_curve, replicate_curves, *, kind="min", level=0.95, positions=None):
    r"""Where a curve peaks, with an interval: ``{"estimate", "low", "high", "flat"}``.

    ``estimate_curve`` (blocks,) and ``replicate_curves`` (blocks, n_boot) are paired bootstrap replicates.
    The location interval is the percentile interval of the replicate argmins (argmaxs). ``flat`` is True
    when the curve's whole range lies inside the widest of its own pointwise intervals — then the extremum
    is no landmark, whatever block the argmin happens to hit.
    """
    if kind not in ("min", "max"):
        raise ValueError(f"kind: expected 'min' or 'max', got {kind!r}")
    estimate_curve = np.asarray(estimate_curve, dtype=np.float64)
    replicate_curves = np.asarray(replicate_curves, dtype=np.float64)
    positions = np.arange(estimate_curve.size) if positions is None else np.asarray(positions)
    pick = np.argmin if kind == "min" else np.argmax
    located = positions[pick(replicate_curves, axis=0)]
    low, high = percentile_interval(located.astype(np.float64), level)
    point_low, point_high = percentile_interval(replicate_curves, level)
    curve_range = estimate_curve.max() - estimate_curve.min()
    return {
        "estimate": positions[pick(estimate_curve)].item(),
        "low": float(low),
        "high": float(high),
        "flat": bool(curve_range <= (point_high - point_low).max()),
    }
