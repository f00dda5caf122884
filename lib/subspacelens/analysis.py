r"""Cache → metric profiles: every metric over every (layer, step, branch) slice of an activation cache.

The activation cache (``DESIGN.md``) is an ``xarray.Dataset`` with ``activations`` of dims
``(sample, layer, step, branch, feature)``. For one (step, branch) the blog's matrix ``Z`` of every
block is ``(layer, d, N)`` — one column per image — and the metrics of :mod:`subspacelens.metrics` are
batched over that leading ``layer`` axis, so a profile costs one metric call per (step, branch) slice.
Each slice is read into memory once, as float64.

Public API (stable; the chapters are written against it):

``open_dataset(cache)``
    A path (zarr store) or an ``xarray.Dataset`` → ``xarray.Dataset`` (small caches loaded into memory).
``slice_matrix(ds, step, branch, layers=None)``
    ``(layer, d, N)`` float64: the blog's ``Z`` for every block of one denoising step and CFG branch.
``labels_of(ds, scheme)``
    ``"coarse"`` → the 5 categories (``ds.category``), ``"fine"`` → the 25 subjects (``ds.subject``).
``relative_depth(ds)``
    ``layer / (num_layers_total - 1)``, so 28-block PixArt-α and a 12-block organism share an axis.
``profile(ds, metric, scheme=None, *, eps=0.5, center=None, n_boot=0, level=0.95, seed=0, **kw)``
    ``xr.Dataset`` with ``value`` (+ ``low``, ``high`` when ``n_boot > 0``) over ``(layer, step, branch)``.
``profiles(ds, metrics, scheme=None, **kw)``
    Several metrics in one pass (the rate metrics share one computation) → ``{metric: xr.Dataset}``.
``average_over_steps(prof)``
    A profile averaged over steps, its interval from the step-averaged bootstrap replicates.
``sweep_profile(caches, metric, scheme=None, **kw)``
    ``profile`` of several caches (CFG scales) stacked along ``guidance_scale``.
``permutation_profile(ds, scheme, *, n_permutations, eps=0.5, seed=0)``
    ΔR against its permuted-label null for every slice.
``overlap_matrix(ds, layer, step, branch, scheme, **kw)``
    The K×K class-subspace overlap matrix as an ``xr.DataArray`` (``attrs['chance']``).
``transition_layer(ds, scheme="coarse", branch="cond", step=None)``
    The block of minimum mean off-diagonal overlap (peak orthogonality): the blog's "layer 14".
``rank_bounds(ds, scheme=None)``
    The finite-sample ceilings of any rank estimate: ``min(N, d)`` and per class ``min(N_j, d)``.

Metric names accepted by :func:`profile` (``METRICS``): ``delta_R``, ``R``, ``Rc``, ``Rc_over_R``
(rate-reduction family; ``R`` needs no labels), ``effective_rank`` (Roy–Vetterli), ``participation_ratio``,
``overlap_offdiag`` (mean off-diagonal subspace overlap; adds a ``chance`` variable), ``hoyer``,
``jb_rejection`` and ``sigreg`` (isotropy test on random projections).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from . import metrics

__all__ = [
    "METRICS",
    "LABELLED",
    "open_dataset",
    "slice_matrix",
    "labels_of",
    "relative_depth",
    "profile",
    "profiles",
    "average_over_steps",
    "sweep_profile",
    "permutation_profile",
    "overlap_matrix",
    "transition_layer",
    "rank_bounds",
]

SCHEMES = {"coarse": "category", "fine": "subject"}
"""Label scheme → the cache's sample coordinate holding it."""

RATE_METRICS = ("delta_R", "R", "Rc", "Rc_over_R")
LABELLED = ("delta_R", "Rc", "Rc_over_R", "overlap_offdiag")
"""Metrics that need a label scheme."""
METRICS = RATE_METRICS + (
    "effective_rank",
    "participation_ratio",
    "overlap_offdiag",
    "hoyer",
    "jb_rejection",
    "sigreg",
)

IN_MEMORY_BYTES = 2 * 2**30
"""Caches whose activations are at most this large are loaded into memory by :func:`open_dataset`."""


# ----------------------------------------------------------------------------------------- cache access


def open_dataset(cache, *, load=None):
    """An activation cache as an ``xarray.Dataset``.

    ``cache`` is a path to a zarr store (relative paths are taken from the repository root,
    :func:`subspacelens.paths.resolve`; opened with :func:`subspacelens.cache.open_cache`) or a Dataset
    (returned as is). ``load=None`` loads the activations into memory when they fit in
    ``IN_MEMORY_BYTES`` (the organism caches are tens of MB), so repeated profiles read no zarr chunks.
    """
    if isinstance(cache, xr.Dataset):
        ds = cache
    elif isinstance(cache, (str, Path)):
        from .cache import open_cache

        ds = open_cache(cache)  # resolves relative paths from the repository root
    else:
        raise ValueError(f"cache: expected a path or an xarray.Dataset, got {type(cache).__name__}")
    if "activations" not in ds:
        raise ValueError("cache: the dataset has no 'activations' variable (see DESIGN.md)")
    if load is None:
        load = ds["activations"].nbytes <= IN_MEMORY_BYTES
    return ds.load() if load else ds


def slice_matrix(ds, step, branch, layers=None):
    """The blog's ``Z`` for every block of one (step, branch): float64 of shape ``(layer, d, N)``.

    ``step`` and ``branch`` are coordinate values (``ds.step``, ``"cond"``/``"uncond"``); ``layers``
    optionally selects a subset of blocks (coordinate values).
    """
    activations = ds["activations"].sel(step=step, branch=branch)
    if layers is not None:
        activations = activations.sel(layer=np.atleast_1d(layers))
    return np.asarray(activations.transpose("layer", "feature", "sample").values, dtype=np.float64)


def labels_of(ds, scheme):
    """Labels of the samples: ``"coarse"`` → ``ds.category`` (5 classes), ``"fine"`` → ``ds.subject`` (25)."""
    try:
        coord = SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"scheme: expected one of {sorted(SCHEMES)}, got {scheme!r}") from None
    return np.asarray(ds[coord].values)


def num_layers_total(ds):
    """Number of blocks of the captured model (``attrs['num_layers_total']``, else the largest layer + 1)."""
    total = ds.attrs.get("num_layers_total")
    return int(total) if total is not None else int(ds["layer"].max()) + 1


def relative_depth(ds):
    """``layer / (num_layers_total - 1)`` as a DataArray on ``layer``: 0 = first block, 1 = last block."""
    depth = ds["layer"].values / max(num_layers_total(ds) - 1, 1)
    return xr.DataArray(depth, dims="layer", coords={"layer": ds["layer"].values}, name="relative_depth")


def _profile_coords(ds):
    coords = {
        "layer": ds["layer"].values,
        "step": ds["step"].values,
        "branch": ds["branch"].values,
        "relative_depth": ("layer", relative_depth(ds).values),
    }
    if "timestep" in ds.coords:
        coords["timestep"] = ("step", np.asarray(ds["timestep"].values))
    return coords


# ------------------------------------------------------------------------------------------- the metrics


def _check_metric(metric, scheme):
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {list(METRICS)}, got {metric!r}")
    if metric in LABELLED and scheme is None:
        raise ValueError(f"scheme: metric {metric!r} needs a label scheme ('coarse' or 'fine')")


def _evaluate(names, Z, labels, *, eps, center, options):
    """``{metric: {field: array over Z's leading axes}}`` for the metrics ``names`` (``value`` = profiled).

    The rate metrics share one ``metrics.rate_reduction`` call.
    """
    center_kw = {} if center is None else {"center": center}
    out = {}
    rate_names = [m for m in names if m in RATE_METRICS]
    if rate_names:
        if labels is None:  # "R" alone needs no labels
            out["R"] = {"value": metrics.coding_rate(Z, eps, **center_kw)}
        else:
            rr = metrics.rate_reduction(Z, labels, eps, **center_kw)
            fields = {"R": rr.R, "Rc": rr.Rc, "delta_R": rr.delta_R, "Rc_over_R": rr.Rc / rr.R}
            out.update({m: {"value": fields[m]} for m in rate_names})
    for metric in names:
        if metric in RATE_METRICS:
            continue
        if metric == "effective_rank":
            out[metric] = {"value": metrics.effective_rank(Z, **center_kw)}
        elif metric == "participation_ratio":
            out[metric] = {"value": metrics.participation_ratio(Z, **center_kw)}
        elif metric == "overlap_offdiag":
            keys = ("rank", "energy")
            overlap = metrics.subspace_overlap(Z, labels, **center_kw, **{k: v for k, v in options.items() if k in keys})
            out[metric] = {"value": overlap.mean_offdiagonal, "chance": overlap.chance_mean_offdiagonal}
        elif metric == "hoyer":
            out[metric] = {"value": metrics.hoyer_sparsity(Z - Z.mean(axis=-1, keepdims=True) if center else Z)}
        elif metric in ("jb_rejection", "sigreg"):
            keys = ("n_projections", "alpha", "seed")
            result = metrics.isotropy_test(Z, **{k: v for k, v in options.items() if k in keys})
            out[metric] = {"value": np.asarray(result.rejection_rate if metric == "jb_rejection" else result.sigreg)}
    return out


def stratified_resamples(labels, n_boot, seed=0):
    """``(n_boot, N)`` column indices: each row draws N_j samples with replacement within every class j."""
    classes, codes = np.unique(labels, return_inverse=True)
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(classes.size):
        members = np.flatnonzero(codes == k)
        parts.append(members[rng.integers(0, members.size, size=(n_boot, members.size))])
    return np.concatenate(parts, axis=1)


def _weightable(names, center):
    """Whether a resample's value equals the metric of ``Z`` with columns scaled by √(multiplicity).

    True for statistics of :math:`Z Z^\top` and of its class blocks — a column drawn c times contributes
    c·z zᵀ either way — when nothing is centred (class sizes are kept by the stratified draw).
    """
    spectral = set(RATE_METRICS) | {"effective_rank", "overlap_offdiag"}
    if center:
        return False
    return all(m in spectral or (m == "participation_ratio" and center is False) for m in names)


BOOTSTRAP_BYTES = 2**28
"""Memory budget of one batch of resampled slices (weighted ``Z`` and its Gram)."""


def _replicates(names, Z, labels, resamples, *, eps, center, options):
    """``{metric: (..., n_boot)}``: each metric recomputed on every resample of the columns of ``Z``.

    Resamples are evaluated as one batched metric call per memory-bounded chunk: for statistics of the
    second moments (see :func:`_weightable`) a resample is ``Z`` with its columns scaled by the square
    root of their multiplicity (exactly the same value as duplicating them, N unchanged); otherwise the
    columns are gathered.
    """
    n_boot, n_samples = resamples.shape
    per_replicate = Z[..., 0, 0].size * 8 * (Z.shape[-2] * n_samples + n_samples**2)
    chunk = max(1, min(n_boot, BOOTSTRAP_BYTES // max(per_replicate, 1)))
    weighted = _weightable(names, center)
    gram = np.matmul(Z.swapaxes(-1, -2), Z) if weighted else None  # each resample's Gram is a rescaling of it
    parts = {m: [] for m in names}
    for start in range(0, n_boot, chunk):
        block = resamples[start:start + chunk]
        if weighted:
            counts = np.stack([np.bincount(row, minlength=n_samples) for row in block])
            weights = np.sqrt(counts).reshape((len(block),) + (1,) * (Z.ndim - 1) + (n_samples,))
            Zb = Z[None] * weights
            if labels is not None and all(m in RATE_METRICS for m in names):
                values = _rates_from_gram(names, Zb, gram * weights * weights.swapaxes(-1, -2), labels, eps)
            else:
                values = _evaluate(names, Zb, labels, eps=eps, center=center, options=options)
        else:  # class sizes are kept, and each resample lists its columns class by class
            Zb = np.stack([Z[..., row] for row in block])
            values = _evaluate(names, Zb, None if labels is None else labels[block[0]], eps=eps, center=center,
                               options=options)
        for m in names:
            parts[m].append(np.moveaxis(np.asarray(values[m]["value"]), 0, -1))
    return {m: np.concatenate(parts[m], axis=-1) for m in names}


def _rates_from_gram(names, Z, G, labels, eps):
    """The rate metrics of ``Z`` given its Gram ``G`` (``metrics.rate_reduction``'s own Gram path)."""
    from .metrics.labels import partition_labels
    from .metrics.rate_reduction import rate_reduction_from_gram

    rr = rate_reduction_from_gram(Z, G, partition_labels(labels, Z.shape[-1]), eps)
    fields = {"R": rr.R, "Rc": rr.Rc, "delta_R": rr.delta_R, "Rc_over_R": rr.Rc / rr.R}
    return {m: {"value": fields[m]} for m in names}


def _interval(samples, estimate, level, interval):
    """(low, high, samples, bias): percentile interval of replicates, re-centred when ``interval="centred"``."""
    bias = samples.mean(axis=-1) - estimate
    if interval == "centred":
        samples = samples - bias[..., None]
    elif interval != "percentile":
        raise ValueError(f"interval: expected 'centred' or 'percentile', got {interval!r}")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=-1)
    return low, high, samples, bias


def profile(ds, metric, scheme=None, **kwargs):
    r"""A metric for every (layer, step, branch) slice of a cache, with optional bootstrap CIs.

    Signature: ``profile(ds, metric, scheme=None, *, eps=0.5, center=None, n_boot=0, level=0.95, seed=0,
    interval="centred", steps=None, branches=None, layers=None, keep_samples=False, **metric_kwargs)``.

    Parameters
    ----------
    ds : xarray.Dataset or path
        The activation cache (see :func:`open_dataset`).
    metric : str
        One of ``METRICS``. ``Rc_over_R`` is :math:`R_c/R`; ``overlap_offdiag`` the mean off-diagonal
        class-subspace overlap (also returns its chance level as ``chance``).
    scheme : {"coarse", "fine", None}
        Label scheme (required for ``LABELLED`` metrics; also stratifies the bootstrap when given —
        otherwise the bootstrap is stratified by subject, which keeps category sizes too).
    eps : float
        Unsquared coding precision ε for the rate metrics (nats).
    center : bool or None
        Centre each slice before the metric; ``None`` keeps each metric's own default (``False``
        everywhere except ``participation_ratio``, which is a covariance statistic).
    n_boot, level, seed, interval
        ``n_boot > 0`` adds ``low``/``high`` (and ``boot_bias``): the ``level`` interval of a bootstrap
        that resamples images with replacement within each class (the resampling of
        ``metrics.bootstrap_ci``, evaluated batched; the same resamples for every slice, so replicates
        are paired across layers, steps and branches). Duplicated columns lower every class's rank, so
        the replicates of the rate metrics sit systematically above the estimate (``boot_bias`` = their
        mean − estimate; with 20-image classes in d ≳ 20 dims the shift can exceed the spread).
        ``interval="centred"`` (default) therefore re-centres the replicates on the estimate and reports
        their spread; ``"percentile"`` gives the raw percentile interval.
    steps, branches, layers
        Optional subsets (coordinate values); default every one in the cache.
    keep_samples : bool
        Also return the (re-centred) bootstrap replicates as ``samples`` (dim ``boot``), so functions
        of several blocks (ratios, argmins) get CIs too.
    **metric_kwargs
        Passed to the metric: ``rank``/``energy`` for ``overlap_offdiag``; ``n_projections``/``alpha``/
        ``seed`` for ``jb_rejection``/``sigreg``.

    Returns
    -------
    xarray.Dataset
        ``value`` (+ ``low``, ``high``, ``boot_bias``, ``samples``; ``chance`` for overlaps) with dims
        ``(layer, step, branch)``; coords ``timestep`` (on step) and ``relative_depth`` (on layer);
        attrs record metric, scheme, eps, centring, n_boot, level, model and guidance scale.
    """
    return profiles(ds, [metric], scheme, **kwargs)[metric]


def profiles(ds, metric_names, scheme=None, *, eps=0.5, center=None, n_boot=0, level=0.95, seed=0,
             interval="centred", steps=None, branches=None, layers=None, keep_samples=False, **metric_kwargs):
    """:func:`profile` of several metrics from one pass over the slices → ``{metric: xr.Dataset}``.

    The rate metrics (``R``, ``Rc``, ``delta_R``, ``Rc_over_R``) share one computation (and one bootstrap).
    """
    metric_names = list(metric_names)
    for metric in metric_names:
        _check_metric(metric, scheme)
    ds = open_dataset(ds)
    if steps is not None or branches is not None or layers is not None:
        ds = ds.sel(
            step=ds["step"].values if steps is None else np.atleast_1d(steps),
            branch=ds["branch"].values if branches is None else np.atleast_1d(branches),
            layer=ds["layer"].values if layers is None else np.atleast_1d(layers),
        )
    labels = labels_of(ds, scheme) if scheme is not None else None
    strata = labels if labels is not None else labels_of(ds, "fine")  # subjects nest in categories
    resamples = stratified_resamples(strata, n_boot, seed) if n_boot else None
    shape = (ds.sizes["layer"], ds.sizes["step"], ds.sizes["branch"])
    out: dict[str, dict[str, np.ndarray]] = {m: {} for m in metric_names}
    kw = dict(eps=eps, center=center, options=metric_kwargs)
    for i, step in enumerate(ds["step"].values):
        for j, branch in enumerate(ds["branch"].values):
            Z = slice_matrix(ds, step, branch)
            for metric, fields in _evaluate(metric_names, Z, labels, **kw).items():
                for name, array in fields.items():
                    out[metric].setdefault(name, np.full(shape, np.nan))[:, i, j] = array
            if not n_boot:
                continue
            for metric, samples in _replicates(metric_names, Z, labels, resamples, **kw).items():
                low, high, samples, bias = _interval(samples, out[metric]["value"][:, i, j], level, interval)
                for name, array in (("low", low), ("high", high), ("boot_bias", bias)):
                    out[metric].setdefault(name, np.full(shape, np.nan))[:, i, j] = array
                if keep_samples:
                    out[metric].setdefault("samples", np.full(shape + (n_boot,), np.nan))[:, i, j, :] = samples
    dims = ("layer", "step", "branch")
    result = {}
    for metric in metric_names:
        data_vars = {name: (dims + (("boot",) if name == "samples" else ()), array)
                     for name, array in out[metric].items()}
        attrs = {
            "metric": metric,
            "scheme": scheme or "",
            "eps": float(eps),
            "center": "default" if center is None else str(bool(center)),
            "n_boot": int(n_boot),
            "level": float(level),
            "interval": interval if n_boot else "",
            "model": str(ds.attrs.get("model", "")),
            "guidance_scale": float(ds.attrs.get("guidance_scale", np.nan)),
            "num_layers_total": num_layers_total(ds),
        }
        result[metric] = xr.Dataset(data_vars, coords=_profile_coords(ds), attrs=attrs)
    return result


def average_over_steps(prof):
    """A profile averaged over its denoising steps, with an interval for the average.

    With bootstrap ``samples`` (``profile(..., keep_samples=True)``) the interval is the percentile
    interval of the step-averaged replicates (the same resamples serve every step); without them ``low``
    and ``high`` are dropped rather than averaged.
    """
    level = prof.attrs.get("level", 0.95)
    out = prof[[v for v in ("value", "chance") if v in prof]].mean("step")
    if "samples" in prof:
        samples = prof["samples"].mean("step")
        tail = (1.0 - level) / 2.0
        out["low"] = samples.quantile(tail, dim="boot").drop_vars("quantile")
        out["high"] = samples.quantile(1.0 - tail, dim="boot").drop_vars("quantile")
        out["samples"] = samples
    out.attrs = dict(prof.attrs)
    return out


def sweep_profile(caches, metric, scheme=None, **kwargs):
    """:func:`profile` of several caches (one per CFG scale) stacked along a new ``guidance_scale`` dim.

    ``caches`` is a sequence of paths/Datasets sharing layers and steps. Stack ``(guidance_scale, step)``
    into one ``config`` axis (``.stack(config=("guidance_scale", "step"))``) for the blog's 4 × 3 sweep.
    """
    if isinstance(caches, (str, Path, xr.Dataset)) or not isinstance(caches, Sequence):
        raise ValueError("caches: expected a list of cache paths or Datasets")
    profiles = [profile(cache, metric, scheme, **kwargs) for cache in caches]
    scales = [p.attrs["guidance_scale"] for p in profiles]
    stacked = xr.concat(profiles, dim=xr.DataArray(scales, dims="guidance_scale", name="guidance_scale"),
                        coords="minimal", compat="override", combine_attrs="drop_conflicts")
    return stacked.sortby("guidance_scale")


# ------------------------------------------------------------------------------------- nulls and overlaps


def permutation_profile(ds, scheme, *, n_permutations, eps=0.5, seed=0, center=False, steps=None,
                        branches=None):
    """ΔR of every (layer, step, branch) slice against the permuted-label null (``metrics.permutation_null``).

    Returns an ``xr.Dataset`` with ``observed``, ``null_mean``, ``null_low``/``null_high`` (2.5 / 97.5
    percentiles of the null), ``p_value`` and ``z_score``, dims ``(layer, step, branch)``.
    """
    ds = open_dataset(ds)
    if steps is not None or branches is not None:
        ds = ds.sel(step=ds["step"].values if steps is None else np.atleast_1d(steps),
                    branch=ds["branch"].values if branches is None else np.atleast_1d(branches))
    labels = labels_of(ds, scheme)
    shape = (ds.sizes["layer"], ds.sizes["step"], ds.sizes["branch"])
    names = ("observed", "null_mean", "null_low", "null_high", "p_value", "z_score")
    out = {name: np.full(shape, np.nan) for name in names}
    for i, step in enumerate(ds["step"].values):
        for j, branch in enumerate(ds["branch"].values):
            result = metrics.permutation_null(slice_matrix(ds, step, branch), labels, eps=eps,
                                              n_permutations=n_permutations, seed=seed, center=center)
            null = np.asarray(result.null)
            values = {
                "observed": result.observed,
                "null_mean": null.mean(axis=-1),
                "null_low": np.percentile(null, 2.5, axis=-1),
                "null_high": np.percentile(null, 97.5, axis=-1),
                "p_value": result.p_value,
                "z_score": result.z_score,
            }
            for name in names:
                out[name][:, i, j] = values[name]
    dims = ("layer", "step", "branch")
    attrs = {"metric": "delta_R", "scheme": scheme, "eps": float(eps), "n_permutations": int(n_permutations),
             "guidance_scale": float(ds.attrs.get("guidance_scale", np.nan))}
    return xr.Dataset({name: (dims, out[name]) for name in names}, coords=_profile_coords(ds), attrs=attrs)


def overlap_matrix(ds, layer, step, branch, scheme, *, order=None, **kw):
    """The class-subspace overlap matrix of one block, as ``xr.DataArray`` with dims ``(class_i, class_j)``.

    ``kw`` goes to ``metrics.subspace_overlap`` (``rank``, ``energy``, ``center``). ``attrs`` carry the
    mean off-diagonal overlap and its chance level; ``chance`` is also a coordinate-free companion matrix
    in ``attrs['chance_matrix']``. For ``scheme="fine"`` the classes are ordered by category then subject
    (so nesting shows as blocks) and a ``category`` coord is attached; ``order`` overrides the order.
    """
    ds = open_dataset(ds)
    labels = labels_of(ds, scheme)
    Z = slice_matrix(ds, step, branch, layers=[layer])[0]
    result = metrics.subspace_overlap(Z, labels, **kw)
    classes = [str(c) for c in result.classes]
    da = xr.DataArray(
        result.matrix,
        dims=("class_i", "class_j"),
        coords={"class_i": classes, "class_j": classes},
        name="overlap",
        attrs={
            "layer": int(layer), "step": int(step), "branch": str(branch), "scheme": scheme,
            "mean_offdiagonal": float(result.mean_offdiagonal),
            "chance": float(result.chance_mean_offdiagonal),
            "chance_matrix": result.chance,
            "ranks": np.asarray(result.ranks),
        },
    )
    if scheme == "fine":
        category = _category_of_subject(ds)
        da = da.assign_coords(category_i=("class_i", [category[c] for c in classes]),
                              category_j=("class_j", [category[c] for c in classes]))
        if order is None:
            order = sorted(classes, key=lambda c: (category[c], c))
    if order is not None:
        da = da.sel(class_i=list(order), class_j=list(order))
    return da


def _category_of_subject(ds):
    subjects = np.asarray(ds["subject"].values).astype(str)
    categories = np.asarray(ds["category"].values).astype(str)
    return dict(zip(subjects, categories))


def transition_layer(ds, scheme="coarse", branch="cond", step=None, overlap=None, **kw):
    """The block of peak orthogonality: argmin over layers of the mean off-diagonal overlap.

    ``step=None`` averages the overlap profile over the cache's steps first. Pass a precomputed
    ``overlap`` profile (from ``profile(ds, "overlap_offdiag", scheme)``) to avoid recomputing it.
    Returns the block index (a ``layer`` coordinate value).
    """
    if overlap is None:
        overlap = profile(ds, "overlap_offdiag", scheme, branches=[branch], **kw)
    curve = overlap["value"].sel(branch=branch)
    curve = curve.mean("step") if step is None else curve.sel(step=step)
    return int(curve["layer"].values[int(curve.argmin("layer"))])


def rank_bounds(ds, scheme=None):
    """Finite-sample ceilings of a rank estimate: ``{"all": min(N, d), "per_class": {class: min(N_j, d)}}``.

    With N=500 images in d=1152 dims (PixArt-α) the sample covariance has rank ≤ 500 and a 20-image class
    rank ≤ 20; with the organism's d≈128 < N the ceiling is d instead.
    """
    ds = open_dataset(ds, load=False)
    n, d = ds.sizes["sample"], ds.sizes["feature"]
    bounds = {"N": n, "d": d, "all": min(n, d)}
    if scheme is not None:
        classes, sizes = np.unique(labels_of(ds, scheme), return_counts=True)
        bounds["per_class"] = {str(c): int(min(s, d)) for c, s in zip(classes, sizes)}
    return bounds
