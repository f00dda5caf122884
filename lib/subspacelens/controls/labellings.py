r"""ΔR under other labellings: global and class centring, any sample coordinate, the share fixed by the noise seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .. import metrics
from ..metrics.transforms import prepare
from ._slices import _labels, _per_slice


def centering_profile(ds, scheme, *, eps=0.5, steps=None, branches=None):
    r"""ΔR three ways, dims (layer, step, branch).

    ``raw``: as the blog computed it; ``centred``: after subtracting the global mean column;
    ``class_centred``: after subtracting each class's own mean (only within-class geometry and the
    differences between class *covariances* are left); ``mean_share = 1 − class_centred / raw``: the part of
    the raw ΔR that the class means account for.
    """
    labels = _labels(ds, scheme)

    def fn(Z):
        return {
            "raw": metrics.rate_reduction(Z, labels, eps).delta_R,
            "centred": metrics.rate_reduction(Z, labels, eps, center=True).delta_R,
            "class_centred": metrics.rate_reduction(Z, labels, eps, center="class").delta_R,
        }

    result = _per_slice(ds, fn, steps, branches)
    result["mean_share"] = 1.0 - result.class_centred / result.raw
    return result.assign_attrs(scheme=str(scheme), eps=float(eps))


def labels_profile(ds, schemes=("coarse", "fine", "seed"), *, eps=0.5, center=False, steps=None, branches=None):
    """ΔR under several labellings (scheme names or sample coordinates), dims (labels, layer, step, branch)."""
    parts = []
    for scheme in schemes:
        labels = _labels(ds, scheme)
        part = _per_slice(
            ds,
            lambda Z: {"delta_R": metrics.rate_reduction(Z, labels, eps, center=center).delta_R},
            steps,
            branches,
        )
        parts.append(part.delta_R)
    return xr.concat(parts, dim=pd.Index([str(s) for s in schemes], name="labels")).rename("delta_R")


def seed_spread(ds, *, group="seed", steps=None, branches=None):
    r"""How much of the activations is *not* fixed by the shared initial noise: dims (layer, step, branch).

    ``within_fraction`` = :math:`\sum_i \|z_i - \bar z_{g(i)}\|^2 / \sum_i \|z_i - \bar z\|^2`, with
    :math:`g(i)` the ``group`` (default: the seed) of sample i. It is 0 when every sample of a seed has the
    same activation whatever its subject, 1 when the seed explains nothing. ``max_abs_diff``: the largest
    absolute difference between a sample and its group mean.
    """
    codes = np.unique(_labels(ds, group), return_inverse=True)[1]

    def fn(Z):
        within = prepare(Z, codes, center="class")
        total = Z - Z.mean(axis=-1, keepdims=True)
        return {
            "within_fraction": (within**2).sum(axis=(-2, -1)) / (total**2).sum(axis=(-2, -1)),
            "max_abs_diff": np.abs(within).max(axis=(-2, -1)),
        }

    return _per_slice(ds, fn, steps, branches).assign_attrs(group=group)
