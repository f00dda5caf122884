r"""Cache → metric profiles: every metric over every (layer, step, branch, …) slice, with intervals.

Each metric of :mod:`subspacelens.metrics` is batched over leading axes, so a profile is one kernel lifted
over the cache with ``xarray.apply_ufunc`` on the core dims ``("feature", "sample")``: every other dim of
``activations`` (layer, step, branch — and whatever a later cache adds: models, CFG scales, training seeds)
is a batch dim for free. Bootstrap replicates come from :mod:`subspacelens.stats` (one RNG contract) and
the same resamples serve every slice, so replicates are paired across blocks and steps, and functions of
several blocks (ratios, trends, argmins: :mod:`.derived`) get intervals too.

Every profile records in its attrs which statistic, scale, centring, resampler and seed produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .. import metrics
from ..metrics._checks import as_positive_int
from ..metrics.bootstrap import rate_statistics, resampled_statistics
from ..metrics.labels import partition_labels
from ..metrics.transforms import as_center, as_scale, prepare
from ..stats import (
    bootstrap_indices,
    centred_interval,
    check_level,
    percentile_interval,
)
from .access import (
    LABELLED,
    METRICS,
    RATE_METRICS,
    labels_of,
    num_layers_total,
    open_dataset,
    relative_depth,
    select,
)

RESAMPLERS = ("cluster", "stratified")
INTERVALS = ("centred", "percentile")
FIELDS = {"mean_overlap": ("value", "chance")}
"""Variables a metric adds besides ``value``."""


def check_metric(metric, scheme):
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {list(METRICS)}, got {metric!r}")
    if metric in LABELLED and scheme is None:
        raise ValueError(f"scheme: metric {metric!r} needs a label scheme ('coarse' or 'fine')")


def check_n_boot(n_boot):
    """0 (no bootstrap) or a positive integer."""
    return 0 if (isinstance(n_boot, (int, np.integer)) and not isinstance(n_boot, bool) and n_boot == 0) \
        else as_positive_int("n_boot", n_boot)


def _codes(labels):
    return None if labels is None else partition_labels(labels, len(labels)).codes


def evaluate(names, Z, labels, *, eps=0.5, center=None, scale=None, options=None):
    """``{metric: {field: array over Z's leading axes}}`` for the metrics ``names`` on one batch ``Z``.

    ``Z`` is prepared once (:func:`subspacelens.metrics.transforms.prepare`: ``center`` False/True/"class",
    ``scale`` None/"rms"/"unit"); ``center=None`` keeps each metric's own default (no centring, except the
    covariance statistic ``participation_ratio``). The rate metrics share one ``rate_reduction`` call.
    """
    options = options or {}
    codes = _codes(labels) if center == "class" else None
    Zp = prepare(Z, codes, center=center or False, scale=scale) if (center or scale) else Z
    out = {}
    rate_names = [m for m in names if m in RATE_METRICS]
    if rate_names:
        if labels is None:  # "R" alone needs no labels
            out["R"] = {"value": metrics.coding_rate(Zp, eps)}
        else:
            rr = metrics.rate_reduction(Zp, labels, eps)
            values = rate_statistics(rr.R, rr.Rc, rate_names)
            out.update({m: {"value": values[m]} for m in rate_names})
    for metric in names:
        if metric == "effective_rank":
            out[metric] = {"value": metrics.effective_rank(Zp)}
        elif metric == "participation_ratio":
            out[metric] = {"value": metrics.participation_ratio(Zp, center=center is None)}
        elif metric == "mean_overlap":
            keys = ("rank", "energy")
            overlap = metrics.subspace_overlap(Zp, labels, **{k: v for k, v in options.items() if k in keys})
            out[metric] = {"value": overlap.mean_offdiagonal, "chance": overlap.chance_mean_offdiagonal}
        elif metric == "hoyer":
            out[metric] = {"value": metrics.hoyer_sparsity(Zp)}
        elif metric == "jb_rejection":
            keys = ("n_projections", "alpha", "seed")
            rejection_rate = metrics.jarque_bera_rejection(Zp, **{k: v for k, v in options.items() if k in keys})[0]
            out[metric] = {"value": np.asarray(rejection_rate)}
        elif metric == "sigreg":
            keys = ("n_projections", "alpha", "seed")
            result = metrics.isotropy_test(Zp, **{k: v for k, v in options.items() if k in keys})
            out[metric] = {"value": np.asarray(result.sigreg)}
    return out


BOOTSTRAP_BYTES = 2**28
"""Memory budget of one batch of gathered resampled columns in the generic bootstrap path."""


def replicates(names, Z, labels, rows, *, eps=0.5, center=None, scale=None, options=None):
    """``{metric: (..., n_boot)}``: each metric recomputed (preparation included) on every resample row.

    The labelled rate metrics and ``mean_overlap`` go through
    :func:`subspacelens.metrics.bootstrap.resampled_statistics` (Gram blocks, no copy of Z when N ≤ d);
    the others gather the resampled columns in memory-bounded chunks.
    """
    options = options or {}
    out = {}
    labelled = [m for m in names if labels is not None and (m in RATE_METRICS or m == "mean_overlap")]
    if labelled:
        statistics = [m for m in labelled]
        values = resampled_statistics(Z, labels, rows, statistics, eps=eps, rank=options.get("rank"),
                                      energy=options.get("energy", 0.9), center=center or False, scale=scale)
        out.update(values)
    generic = [m for m in names if m not in out]
    if generic:
        per_row = Z[..., 0, 0].size * Z.shape[-2] * Z.shape[-1] * 8
        step = max(1, BOOTSTRAP_BYTES // max(per_row, 1))
        parts = {m: [] for m in generic}
        layout_labels = None if labels is None else labels[rows[0]]
        for start in range(0, rows.shape[0], step):
            columns = np.moveaxis(np.take(Z, rows[start:start + step], axis=-1), -2, -3)  # (..., n, d, N)
            values = evaluate(generic, columns, layout_labels, eps=eps, center=center, scale=scale, options=options)
            for m in generic:
                parts[m].append(np.asarray(values[m]["value"]))
        out.update({m: np.concatenate(parts[m], axis=-1) for m in generic})
    return out


def bootstrap_rows(ds, labels, n_boot, seed=0, resample="cluster"):
    """``(n_boot, N)`` resample rows for a cache, laid out class by class (stable sort by ``labels``).

    ``"cluster"``: the noise seeds are drawn with replacement as clusters (every subject shares them in the
    crossed v2 design, so samples with one seed are not independent); ``"stratified"``: within classes.
    """
    if resample not in RESAMPLERS:
        raise ValueError(f"resample: expected one of {list(RESAMPLERS)}, got {resample!r}")
    strata = labels if labels is not None else labels_of(ds, "fine")
    clusters = None
    if resample == "cluster":
        if "seed" not in ds.coords:
            raise ValueError("resample: 'cluster' resamples the cache's noise seeds, and this cache has no 'seed' "
                             "coordinate; use resample='stratified'")
        clusters = np.asarray(ds["seed"].values)
    rows = bootstrap_indices(n_boot, seed, strata=strata, clusters=clusters)
    codes = _codes(strata)
    return np.take_along_axis(rows, np.argsort(codes[rows], axis=1, kind="stable"), axis=1)


def lift(ds, kernel, new_dims):
    """``kernel`` (a function of ``(..., d, N)`` float64 arrays) applied to every slice of ``ds.activations``.

    ``new_dims`` (``{name: size}``) are the trailing axes the kernel appends. Dask-backed caches are
    processed chunk by chunk (``dask="parallelized"``, on the active scheduler) and the result is computed
    here, once: every caller reads several fields of it, and a lazy result would run the kernels again
    for each.
    """
    return xr.apply_ufunc(
        lambda array: kernel(np.asarray(array, dtype=np.float64)),
        ds["activations"],
        input_core_dims=[["feature", "sample"]],
        output_core_dims=[list(new_dims)],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": dict(new_dims), "allow_rechunk": True},
    ).compute()


def profile(ds, metric, scheme=None, **kwargs):
    r"""A metric for every (layer, step, branch) slice of a cache, with optional bootstrap intervals.

    Signature: ``profile(ds, metric, scheme=None, *, eps=0.5, scale=None, center=None, n_boot=0,
    level=0.95, seed=0, resample="cluster", interval="centred", steps=None, branches=None, layers=None,
    keep_samples=False, **metric_kwargs)``.

    Parameters
    ----------
    ds : xarray.Dataset or path
        The activation cache (see :func:`open_dataset`).
    metric : str
        One of ``METRICS``. ``Rc_over_R`` is :math:`R_c/R`; ``mean_overlap`` the mean off-diagonal
        class-subspace overlap (also returns its random-subspace chance level as ``chance``).
    scheme : str or None
        Label scheme (``"coarse"``, ``"fine"`` or a sample coordinate; required for ``LABELLED`` metrics).
    eps : float
        Unsquared coding precision ε for the rate metrics (nats).
    scale : {None, "rms", "unit"}
        ``"rms"``: ε relative to each slice's RMS column norm — the book's primary statistic, invariant to
        the activation scale; ``None``: absolute ε, the blog's raw statistic; ``"unit"``: unit-norm columns.
    center : {None, False, True, "class"}
        ``"class"`` subtracts each class's mean (the within-class geometry); ``None`` keeps each metric's
        default (``participation_ratio`` centres).
    n_boot, level, seed, resample, interval
        ``n_boot > 0`` adds ``low``/``high`` (and ``boot_bias``): the ``level`` interval over resamples
        of the images — ``resample="cluster"`` draws the noise seeds as clusters (the design-aware default),
        ``"stratified"`` draws within classes. Duplicated columns lower every class's rank, so replicates
        of the rate metrics sit above the estimate (``boot_bias``); ``interval="centred"`` re-centres them
        on the estimate, ``"percentile"`` gives the raw percentile interval.
    steps, branches, layers
        Optional subsets (coordinate values); default every one in the cache.
    keep_samples : bool
        Also return the (re-centred) replicates as ``samples`` (dim ``boot``), for :mod:`.derived`.
    **metric_kwargs
        ``rank``/``energy`` for ``mean_overlap``; ``n_projections``/``alpha``/``seed`` for the isotropy tests.

    Returns
    -------
    xarray.Dataset
        ``value`` (+ ``low``, ``high``, ``boot_bias``, ``samples``; ``chance`` for overlaps) over the slices;
        coords ``timestep`` and ``relative_depth``; attrs record metric, scheme, eps, scale, centring,
        resampler, n_boot, level, seed, model and guidance scale.
    """
    return profiles(ds, [metric], scheme, **kwargs)[metric]


def profiles(ds, metric_names, scheme=None, *, eps=0.5, scale=None, center=None, n_boot=0, level=0.95, seed=0,
             resample="cluster", interval="centred", steps=None, branches=None, layers=None, keep_samples=False,
             **metric_kwargs):
    """:func:`profile` of several metrics from one pass over the slices → ``{metric: xr.Dataset}``."""
    metric_names = list(metric_names)
    if not metric_names:
        raise ValueError("metric_names: expected at least one metric")
    for metric in metric_names:
        check_metric(metric, scheme)
    scale = as_scale(scale)
    center = None if center is None else as_center(center)
    if center == "class" and scheme is None:
        raise ValueError("center: 'class' needs a label scheme")
    n_boot = check_n_boot(n_boot)
    level = check_level(level)
    if interval not in INTERVALS:
        raise ValueError(f"interval: expected one of {list(INTERVALS)}, got {interval!r}")
    ds = select(open_dataset(ds), steps=steps, branches=branches, layers=layers)
    labels = labels_of(ds, scheme) if scheme is not None else None
    kw = dict(eps=eps, center=center, scale=scale, options=metric_kwargs)

    fields = [(m, f) for m in metric_names for f in FIELDS.get(m, ("value",))]

    def estimate_kernel(Z):
        values = evaluate(metric_names, Z, labels, **kw)
        return np.stack([np.asarray(values[m][f], dtype=np.float64) for m, f in fields], axis=-1)

    estimates = lift(ds, estimate_kernel, {"field": len(fields)})
    samples = None
    if n_boot:
        rows = bootstrap_rows(ds, labels, n_boot, seed, resample)

        def replicate_kernel(Z):
            reps = replicates(metric_names, Z, labels, rows, **kw)
            return np.stack([reps[m] for m in metric_names], axis=-2)

        samples = lift(ds, replicate_kernel, {"metric": len(metric_names), "boot": n_boot})

    depth = relative_depth(ds)
    result = {}
    for metric in metric_names:
        data = {f: estimates.isel(field=fields.index((metric, f)), drop=True) for f in FIELDS.get(metric, ("value",))}
        if samples is not None:
            reps = samples.isel(metric=metric_names.index(metric)).values
            value = data["value"].values
            if interval == "centred":
                low, high, bias = centred_interval(reps, value, level)
                reps = reps - bias[..., None]
            else:
                low, high = percentile_interval(reps, level)
                bias = reps.mean(axis=-1) - value
            dims = data["value"].dims
            data.update({"low": (dims, low), "high": (dims, high), "boot_bias": (dims, bias)})
            if keep_samples:
                data["samples"] = (dims + ("boot",), reps)
        out = xr.Dataset(data).assign_coords(relative_depth=depth)
        out.attrs = {
            "metric": metric,
            "scheme": scheme or "",
            "eps": float(eps),
            "scale": scale or "none",
            "center": "default" if center is None else str(center),
            "n_boot": int(n_boot),
            "resample": resample if n_boot else "",
            "level": float(level),
            "interval": interval if n_boot else "",
            "seed": int(seed),
            "model": str(ds.attrs.get("model", "")),
            "guidance_scale": float(ds.attrs.get("guidance_scale", np.nan)),
            "num_layers_total": num_layers_total(ds),
        }
        result[metric] = out
    return result


def average_over_steps(prof):
    """A profile averaged over its denoising steps, with an interval for the average.

    With bootstrap ``samples`` (``profile(..., keep_samples=True)``) the interval is the percentile
    interval of the step-averaged replicates (the same resamples serve every step); without them ``low``
    and ``high`` are dropped rather than averaged.
    """
    out = prof[[v for v in ("value", "chance") if v in prof]].mean("step")
    if "samples" in prof:
        samples = prof["samples"].mean("step")
        low, high = percentile_interval(samples.values, prof.attrs.get("level", 0.95))
        out["low"] = (samples.dims[:-1], low)
        out["high"] = (samples.dims[:-1], high)
        out["samples"] = samples
    out.attrs = dict(prof.attrs, averaged_over="step")
    return out


def sweep_profile(caches, metric, scheme=None, **kwargs):
    """:func:`profile` of several caches (one per CFG scale) stacked along a new ``guidance_scale`` dim.

    ``caches`` is a non-empty sequence of paths/Datasets sharing layers and steps. Stack
    ``(guidance_scale, step)`` into one ``config`` axis (``.stack(config=("guidance_scale", "step"))``) for the
    blog's 4 × 3 sweep.
    """
    if isinstance(caches, (str, Path, xr.Dataset)) or not isinstance(caches, Sequence) or not caches:
        raise ValueError(f"caches: expected a non-empty list of cache paths or Datasets, got {caches!r}")
    found = [profile(cache, metric, scheme, **kwargs) for cache in caches]
    scales = [p.attrs["guidance_scale"] for p in found]
    stacked = xr.concat(found, dim=xr.DataArray(scales, dims="guidance_scale", name="guidance_scale"),
                        coords="minimal", compat="override", combine_attrs="drop_conflicts")
    return stacked.sortby("guidance_scale")
