r"""Nulls over a whole cache: permuted-label ΔR, restricted permutations, overlap nulls, the mean/geometry split.

Each function lifts one metric-level null (:func:`subspacelens.metrics.permutation_null`,
:func:`~subspacelens.metrics.overlap_null`, :func:`~subspacelens.metrics.rate_reduction_split`) over every
slice of the cache (:func:`.profiles.lift`), with the same shuffles for every slice. p-values are corrected
for multiplicity over every slice the profile holds (blocks × steps × branches), and the method is
recorded in the attrs (``p_adjust``) so a page can name it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import metrics
from ..stats import adjust_p_values, percentile_interval
from .access import labels_of, open_dataset, relative_depth, select
from .profiles import lift

NULL_FIELDS = ("observed", "null_mean", "null_low", "null_high", "excess", "z_score", "p_value")


def _groups(ds, within):
    """``within``: None, a sample coordinate name (``"category"``, ``"seed"``, …), several names (their
    combinations are the groups, e.g. ``("category", "seed")``) or an array of group labels.

    In the crossed v2 design every subject is rendered at the same noise seeds, so a free shuffle breaks the
    one-sample-per-seed balance of every class; permuting ``within="seed"`` keeps it, and is the null the
    book uses for that design.
    """
    if within is None:
        return None, ""
    if isinstance(within, str):
        return labels_of(ds, within), within
    if isinstance(within, (tuple, list)) and all(isinstance(w, str) for w in within):
        parts = [labels_of(ds, w).astype(str) for w in within]
        return np.array(["|".join(row) for row in zip(*parts)]), " × ".join(within)
    return np.asarray(within), "custom"


def _as_dataset(ds, stacked, names, attrs, correction):
    out = xr.Dataset({name: stacked.isel(field=k, drop=True) for k, name in enumerate(names)})
    p_name = "p_value" if "p_value" in names else "p_lower"
    out["p_adjusted"] = (out[p_name].dims, adjust_p_values(out[p_name].values, correction))
    out = out.assign_coords(relative_depth=relative_depth(ds))
    out.attrs = dict(attrs, p_adjust=correction, guidance_scale=float(ds.attrs.get("guidance_scale", np.nan)),
                     model=str(ds.attrs.get("model", "")))
    return out


def permutation_profile(ds, scheme, *, n_permutations=1000, eps=0.5, seed=0, center=False, scale=None, within=None,
                        correction="bh", steps=None, branches=None, layers=None):
    """ΔR of every slice against its permuted-label null (free, or restricted ``within`` groups).

    Returns ``observed``, ``null_mean``, ``null_low``/``null_high`` (2.5 / 97.5 percentiles of the null),
    ``excess`` (observed − null mean), ``z_score`` (excess / null sd), ``p_value`` and ``p_adjusted``
    (``correction``: ``"bh"`` Benjamini–Hochberg, ``"by"``, or ``"holm"``, over all slices).
    ``center="class"``: the null of class-centred ΔR (class means recomputed under every shuffle).
    """
    ds = select(open_dataset(ds), steps=steps, branches=branches, layers=layers)
    labels = labels_of(ds, scheme)
    groups, within_name = _groups(ds, within)

    def kernel(Z):
        result = metrics.permutation_null(Z, labels, eps, n_permutations, seed, within=groups, center=center,
                                          scale=scale)
        low, high = percentile_interval(result.null, 0.95)
        return np.stack([result.observed, result.null.mean(axis=-1), low, high, result.excess, result.z_score,
                         result.p_value], axis=-1)

    attrs = {"metric": "delta_R", "scheme": scheme, "eps": float(eps), "n_permutations": int(n_permutations),
             "within": within_name, "center": str(center), "scale": scale or "none", "seed": int(seed)}
    return _as_dataset(ds, lift(ds, kernel, {"field": len(NULL_FIELDS)}), NULL_FIELDS, attrs, correction)


def overlap_null_profile(ds, scheme, *, n_permutations=200, rank=None, energy=0.9, seed=0, center=False, scale=None,
                         within=None, correction="bh", steps=None, branches=None, layers=None):
    """Mean off-diagonal overlap of every slice against its label-shuffle null.

    Returns ``observed``, ``null_mean``, ``null_low``, ``null_high``, ``excess`` (negative: classes more
    orthogonal than shuffled groups of the same sizes), ``p_lower`` and ``p_adjusted``. The random-subspace
    chance level is no reference for raw activations (every class shares the mean direction); this is.
    """
    ds = select(open_dataset(ds), steps=steps, branches=branches, layers=layers)
    labels = labels_of(ds, scheme)
    groups, within_name = _groups(ds, within)
    names = ("observed", "null_mean", "null_low", "null_high", "excess", "p_lower")

    def kernel(Z):
        result = metrics.overlap_null(Z, labels, n_permutations, seed, rank=rank, energy=energy, within=groups,
                                      center=center, scale=scale)
        low, high = percentile_interval(result.null, 0.95)
        return np.stack([result.observed, result.null.mean(axis=-1), low, high, result.excess, result.p_lower], -1)

    attrs = {"metric": "mean_overlap", "scheme": scheme, "n_permutations": int(n_permutations),
             "within": within_name, "center": str(center), "scale": scale or "none", "seed": int(seed),
             "rank": -1 if rank is None else int(rank), "energy": float(energy)}
    return _as_dataset(ds, lift(ds, kernel, {"field": len(names)}), names, attrs, correction)


def split_profile(ds, scheme, *, eps=0.5, scale=None, center=False, steps=None, branches=None, layers=None):
    """ΔR of every slice split into its class-mean part and its within-class-geometry part.

    ``total`` = ΔR, ``geometry`` = ΔR of the class-centred data, ``means`` = total − geometry, all at one
    precision (:class:`subspacelens.metrics.RateReductionSplit`).
    """
    ds = select(open_dataset(ds), steps=steps, branches=branches, layers=layers)
    labels = labels_of(ds, scheme)

    def kernel(Z):
        split = metrics.rate_reduction_split(Z, labels, eps, center=center, scale=scale)
        return np.stack([split.total, split.means, split.geometry], axis=-1)

    stacked = lift(ds, kernel, {"field": 3})
    out = xr.Dataset({name: stacked.isel(field=k, drop=True) for k, name in enumerate(("total", "means", "geometry"))})
    out = out.assign_coords(relative_depth=relative_depth(ds))
    out.attrs = {"metric": "delta_R_split", "scheme": scheme, "eps": float(eps), "scale": scale or "none",
                 "center": str(center), "guidance_scale": float(ds.attrs.get("guidance_scale", np.nan))}
    return out
