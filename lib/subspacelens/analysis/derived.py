r"""Intervals for the quantities the book turns into verdicts: ratios, depth trends, landmark locations.

Each takes a profile made with ``keep_samples=True`` (paired bootstrap replicates: one resample serves
every block) and applies the quantity to the estimate and to every replicate; the interval is the
percentile interval over replicates (:mod:`subspacelens.stats.intervals`). Results are ``xr.Dataset``\ s
over the profile's remaining dims (step, branch, …).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..stats import argextremum_interval, percentile_interval, spearman_with_depth


def _require_samples(prof):
    if "samples" not in prof:
        raise ValueError("prof: needs bootstrap replicates; compute it with profile(..., n_boot=..., keep_samples=True)")


def _over_rest(prof, fn, names):
    """Apply ``fn(value_curve (layer,), samples (layer, boot)) -> tuple`` to every (step, branch, …) curve."""
    _require_samples(prof)
    value = prof["value"].transpose("layer", ...)
    samples = prof["samples"].transpose("layer", ..., "boot")
    rest = value.dims[1:]
    shape = value.shape[1:]
    out = {name: np.empty(shape, dtype=object if name == "flat" else np.float64) for name in names}
    for index in np.ndindex(*shape):
        results = fn(value.values[(slice(None),) + index], samples.values[(slice(None),) + index])
        for name, result in zip(names, results):
            out[name][index] = result
    coords = {d: value[d] for d in rest}
    data = {name: (rest, array.astype(bool) if name == "flat" else array) for name, array in out.items()}
    return xr.Dataset(data, coords=coords, attrs=dict(prof.attrs))


def block_ratio(prof, numerator=-1, denominator=0, level=0.95):
    """``value[numerator] / value[denominator]`` (block positions; default last / first) with its interval."""

    def ratio(curve, samples):
        low, high = percentile_interval(samples[numerator] / samples[denominator], level)
        return curve[numerator] / curve[denominator], low, high

    return _over_rest(prof, ratio, ("estimate", "low", "high"))


def depth_trend(prof, level=0.95):
    """Spearman's ρ of the profile with block index, with its interval (is the curve monotone in depth?)."""

    def trend(curve, samples):
        low, high = percentile_interval(spearman_with_depth(samples.T), level)
        return float(spearman_with_depth(curve)), low, high

    return _over_rest(prof, trend, ("estimate", "low", "high"))


def landmark(prof, kind="min", level=0.95):
    """The block of the profile's minimum (maximum), its interval, and ``flat`` (no landmark at all).

    ``flat`` is True when the curve's range fits inside its own widest pointwise interval: then whichever
    block the argmin hits is not a finding (:func:`subspacelens.stats.argextremum_interval`).
    """
    layers = prof["layer"].values

    def locate(curve, samples):
        found = argextremum_interval(curve, samples, kind=kind, level=level, positions=layers)
        return found["estimate"], found["low"], found["high"], found["flat"]

    return _over_rest(prof, locate, ("estimate", "low", "high", "flat"))
