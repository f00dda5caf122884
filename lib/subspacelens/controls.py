r"""Controls and references for the later chapters (cond vs uncond, sparsity, isotropy, controls, PixArt-α).

Everything here is a pure function of an activation cache (an ``xarray.Dataset`` following DESIGN.md) or
of plain arrays, returning ``xarray`` objects (or a ``pandas.DataFrame`` for summary tables). Metrics come
from :mod:`subspacelens.metrics` and slices from :mod:`subspacelens.analysis`; nothing here plots.

What the analysis layer does not already provide:

* :func:`eps_profile` — ΔR for a whole range of ε from *one* eigendecomposition per slice
  (:func:`~subspacelens.metrics.rate_reduction_curve`), and :func:`layer_trend` to ask whether a layer trend
  holds at every ε;
* :func:`remove_class_means` and :func:`centering_profile` — ΔR on raw, globally centred and
  class-mean-removed features (how much of ΔR is mean separation);
* :func:`labels_profile` — ΔR under any labelling (e.g. the noise ``seed``) and :func:`seed_spread` — how much
  of the variance is *not* explained by the shared initial noise;
* :func:`branch_gap` — ΔR(uncond) − ΔR(cond) with a *paired* bootstrap CI (one resample for both branches);
* :func:`stack_models` — profiles of several caches along a ``model`` dim (trained vs random-initialised twin);
* :func:`gaussian_hoyer`, :func:`hoyer_references`, :func:`isotropy_references` — what an isotropic
  Gaussian, a Gaussian with the data's covariance, heavy-tailed noise and sparse codes score;
* :func:`ci_widths` — the width of every bootstrap band, one row per curve;
* :func:`cache_nbytes`, :func:`store_nbytes` — disk arithmetic for a capture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special, stats

from subspacelens import metrics, synthetic
from subspacelens.analysis import labels_of, relative_depth, slice_matrix

__all__ = [
    "cache_nbytes",
    "centering_profile",
    "ci_widths",
    "eps_profile",
    "gaussian_hoyer",
    "hoyer_references",
    "isotropy_profile",
    "isotropy_references",
    "labels_profile",
    "layer_trend",
    "stack_models",
    "remove_class_means",
    "seed_spread",
    "store_nbytes",
    "branch_gap",
]


# --------------------------------------------------------------------------------------------------
# slices and coordinates


def _selection(ds, steps=None, branches=None):
    steps = list(ds.step.values) if steps is None else list(np.atleast_1d(steps))
    branches = list(ds.branch.values) if branches is None else list(np.atleast_1d(branches))
    return steps, branches


def _profile_coords(ds, steps):
    """Coordinates shared by every per-layer result: layer (+ relative_depth), step (+ timestep)."""
    coords = {"layer": ds.layer.values, "relative_depth": ("layer", relative_depth(ds).values), "step": steps}
    if "timestep" in ds.coords:
        coords["timestep"] = ("step", ds.timestep.sel(step=steps).values)
    return coords


def _labels(ds, labels):
    """A scheme name (``"coarse"``/``"fine"``/any sample coordinate such as ``"seed"``) or an array."""
    if isinstance(labels, str):
        if labels in ("coarse", "fine"):
            return np.asarray(labels_of(ds, labels))
        if labels in ds.coords and ds[labels].dims == ("sample",):
            return np.asarray(ds[labels].values)
        raise ValueError(f"labels: unknown scheme {labels!r}; use 'coarse', 'fine' or a sample coordinate")
    labels = np.asarray(labels)
    if labels.shape != (ds.sizes["sample"],):
        raise ValueError(f"labels: expected length {ds.sizes['sample']}, got shape {labels.shape}")
    return labels


def _per_slice(ds, fn, steps=None, branches=None, extra_dims=()):
    """Apply ``fn(Z)`` to every (step, branch) slice ``Z`` of shape (layer, d, N).

    ``fn`` returns a dict of arrays of shape (layer, *extra) ; the result is a Dataset with dims
    (layer, *extra_dims, step, branch).
    """
    steps, branches = _selection(ds, steps, branches)
    out: dict[str, np.ndarray] = {}
    for i, step in enumerate(steps):
        for j, branch in enumerate(branches):
            values = fn(slice_matrix(ds, step, branch))
            for name, value in values.items():
                value = np.asarray(value, dtype=np.float64)
                if name not in out:
                    out[name] = np.full(value.shape + (len(steps), len(branches)), np.nan)
                out[name][..., i, j] = value
    dims = ("layer", *extra_dims, "step", "branch")
    coords = _profile_coords(ds, steps)
    coords["branch"] = branches
    return xr.Dataset({name: (dims, value) for name, value in out.items()}, coords=coords)


# --------------------------------------------------------------------------------------------------
# ε sensitivity


def eps_profile(ds, scheme, eps_values, *, center=False, steps=None, branches=None):
    r"""R, R_c and ΔR at every ε in ``eps_values``: dims (layer, eps, step, branch).

    One eigendecomposition per slice and class (:func:`~subspacelens.metrics.rate_reduction_curve`), so a
    whole ε-range costs about as much as a single ε.
    """
    labels = _labels(ds, scheme)
    eps_values = np.asarray(eps_values, dtype=np.float64)

    def fn(Z):
        rr = metrics.rate_reduction_curve(Z, labels, eps_values, center=center)
        return {"R": rr.R, "Rc": rr.Rc, "delta_R": rr.delta_R}

    result = _per_slice(ds, fn, steps, branches, extra_dims=("eps",))
    return result.assign_coords(eps=eps_values).assign_attrs(scheme=str(scheme), center=int(center))


def layer_trend(values, dim="layer"):
    """Summaries of a per-layer curve, reduced over ``dim`` (other dims kept).

    ``first``/``last``: the values at the first and last layer; ``ratio_last_first``; ``argmax_layer``/``argmin_layer``:
    the layer label of the extreme; ``spearman``: Spearman's rank correlation of value with layer index
    (+1 for a monotone increase); ``increasing``: whether last > first.
    """
    values = values.transpose(dim, ...)
    layers = values[dim].values
    first = values.isel({dim: 0}, drop=True)
    last = values.isel({dim: -1}, drop=True)
    ranks = xr.apply_ufunc(
        lambda a: stats.rankdata(a, axis=-1),
        values,
        input_core_dims=[[dim]],
        output_core_dims=[[dim]],
    )
    layer_ranks = xr.DataArray(stats.rankdata(layers), dims=dim, coords={dim: layers})
    spearman = xr.corr(ranks, layer_ranks, dim=dim)
    return xr.Dataset(
        {
            "first": first,
            "last": last,
            "ratio_last_first": last / first,
            "argmax_layer": values.idxmax(dim),
            "argmin_layer": values.idxmin(dim),
            "spearman": spearman,
            "increasing": last > first,
        }
    )


# --------------------------------------------------------------------------------------------------
# centring


def remove_class_means(Z, labels):
    """``Z`` (..., d, N) with every column's class mean subtracted: classes then share the mean 0."""
    Z = np.asarray(Z, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.shape != (Z.shape[-1],):
        raise ValueError(f"labels: expected length N={Z.shape[-1]}, got shape {labels.shape}")
    classes, codes = np.unique(labels, return_inverse=True)
    one_hot = np.zeros((labels.size, classes.size))
    one_hot[np.arange(labels.size), codes] = 1.0
    means = (Z @ one_hot) / one_hot.sum(axis=0)  # (..., d, K)
    return Z - means @ one_hot.T


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
            "class_centred": metrics.rate_reduction(remove_class_means(Z, labels), labels, eps).delta_R,
        }

    result = _per_slice(ds, fn, steps, branches)
    result["mean_share"] = 1.0 - result.class_centred / result.raw
    return result.assign_attrs(scheme=str(scheme), eps=float(eps))


# --------------------------------------------------------------------------------------------------
# labellings, seeds and branches


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
    groups = _labels(ds, group)

    def fn(Z):
        within = remove_class_means(Z, groups)
        total = Z - Z.mean(axis=-1, keepdims=True)
        return {
            "within_fraction": (within**2).sum(axis=(-2, -1)) / (total**2).sum(axis=(-2, -1)),
            "max_abs_diff": np.abs(within).max(axis=(-2, -1)),
        }

    return _per_slice(ds, fn, steps, branches).assign_attrs(group=group)


def branch_gap(prof, *, minuend="uncond", subtrahend="cond", level=None):
    r"""ΔR(uncond) − ΔR(cond) per (layer, step) with a *paired* bootstrap CI, from one bootstrapped profile.

    ``prof`` is ``analysis.profile(ds, "delta_R", scheme, n_boot=B, keep_samples=True)`` over both branches.
    :func:`~subspacelens.metrics.bootstrap_ci` draws the same resamples (same ``seed``, same labels) for
    every slice, so replicate b of the two branches holds the same images: their difference is a paired
    replicate of the gap, and the image-to-image variation common to both branches cancels.
    Data vars ``cond``/``uncond`` (values), ``gap``, ``gap_low``, ``gap_high``, ``rel_gap`` = gap / cond.
    """
    if "samples" not in prof:
        raise ValueError("prof: needs bootstrap replicates (profile(..., n_boot>0, keep_samples=True))")
    level = float(prof.attrs.get("level", 0.95)) if level is None else float(level)
    a, b = prof.sel(branch=minuend, drop=True), prof.sel(branch=subtrahend, drop=True)
    replicates = a.samples - b.samples
    tail = (1.0 - level) / 2.0
    bounds = replicates.quantile([tail, 1.0 - tail], dim="boot")
    gap = a.value - b.value
    return xr.Dataset(
        {
            minuend: a.value,
            subtrahend: b.value,
            "gap": gap,
            "gap_low": bounds.isel(quantile=0, drop=True),
            "gap_high": bounds.isel(quantile=1, drop=True),
            "rel_gap": gap / b.value,
        },
        attrs={**prof.attrs, "level": level, "minuend": minuend, "subtrahend": subtrahend},
    )


# --------------------------------------------------------------------------------------------------
# several models


def stack_models(profiles: Mapping[str, xr.Dataset]):
    """Profiles of several models (e.g. ``{"trained": ..., "random-init": ...}``) along a new ``model`` dim.

    Coordinates are taken from the first profile (the models share layers and steps); attrs that differ
    (model name, …) are dropped.
    """
    return xr.concat(list(profiles.values()), dim=pd.Index(list(profiles), name="model"), coords="minimal",
                     compat="override", combine_attrs="drop_conflicts")


# --------------------------------------------------------------------------------------------------
# references: sparsity and isotropy


def gaussian_hoyer(d):
    r"""Expected Hoyer sparsity of an isotropic Gaussian vector in d dimensions (exact).

    For :math:`z\sim\mathcal N(0, I_d)`, :math:`z/\|z\|_2` is independent of :math:`\|z\|_2`, so
    :math:`E[\|z\|_1/\|z\|_2] = E\|z\|_1 / E\|z\|_2 = d\sqrt{2/\pi}\,\big/\,\big(\sqrt2\,\Gamma(\tfrac{d+1}2)/\Gamma(\tfrac d2)\big)`.
    Tends to :math:`1 - \sqrt{2/\pi} \approx 0.202` as d grows.
    """
    d = int(d)
    if d < 2:
        raise ValueError(f"d: expected an integer >= 2, got {d!r}")
    mean_l2 = np.sqrt(2.0) * np.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    ratio = d * np.sqrt(2.0 / np.pi) / mean_l2
    return float((np.sqrt(d) - ratio) / (np.sqrt(d) - 1.0))


def hoyer_references(d, n_samples, *, active_fraction=0.05, overcomplete=8, seed=0):
    """Hoyer sparsity of reference codes of the same (d, N), via :func:`~subspacelens.metrics.hoyer_sparsity`.

    ``gaussian``: isotropic Gaussian columns (``gaussian_exact``: its closed form, :func:`gaussian_hoyer`);
    ``sparse_neurons``: ``active_fraction``·d active units per column in the neuron basis (the SAE picture
    if the dictionary were the basis); ``sparse_dictionary``: ``active_fraction`` of a random dictionary of
    ``overcomplete``·d unit atoms active, read in the neuron basis — a truly sparse code that Hoyer, a
    basis-dependent measure, does not see; ``one_hot``: one active unit per column (the maximum, 1).
    Codes come from :func:`subspacelens.synthetic.sparse_codes`.
    """
    k_neurons = max(1, int(round(active_fraction * d)))
    k_atoms = max(1, int(round(active_fraction * overcomplete * d)))
    values = {
        "gaussian": metrics.hoyer_sparsity(synthetic.isotropic_gaussian(d, n_samples, seed=seed)),
        "gaussian_exact": gaussian_hoyer(d),
        "sparse_neurons": metrics.hoyer_sparsity(synthetic.sparse_codes(d, n_samples, k_neurons, seed=seed).Z),
        "sparse_dictionary": metrics.hoyer_sparsity(
            synthetic.sparse_codes(d, n_samples, k_atoms, n_atoms=overcomplete * d, seed=seed).Z
        ),
        "one_hot": metrics.hoyer_sparsity(synthetic.sparse_codes(d, n_samples, 1, seed=seed).Z),
    }
    return xr.DataArray(
        [float(v) for v in values.values()],
        dims="reference",
        coords={"reference": list(values)},
        name="hoyer",
        attrs={"d": int(d), "n_samples": int(n_samples), "active_fraction": float(active_fraction),
               "active_neurons": k_neurons, "active_atoms": k_atoms, "overcomplete": int(overcomplete)},
    )


def isotropy_references(Z, *, n_projections=256, alpha=0.01, seed=0, heavy_tailed=True):
    """Isotropy-test scores of ``Z`` (…, d, N) next to reference data of the same shape: dims (reference, …).

    ``observed``: ``Z`` itself; ``isotropic_gaussian``: N(0, I_d), the null that
    :func:`~subspacelens.metrics.isotropy_test` draws alongside; ``matched_gaussian``: a Gaussian with each
    slice's own mean and covariance — as anisotropic and low-rank as the data, yet every projection of it is
    Gaussian; ``student_t`` (if ``heavy_tailed``): i.i.d. Student-t (3 d.o.f.) coordinates — non-Gaussian
    without any subspace structure. Data vars ``rejection_rate`` (Jarque–Bera at ``alpha``) and ``sigreg``
    (mean Epps–Pulley). The same projection directions (``seed``) serve every reference.
    """
    Z = np.asarray(Z, dtype=np.float64)
    d, n_samples = Z.shape[-2:]
    batch = Z.shape[:-2]
    rng = np.random.default_rng(seed)
    # A Gaussian with the slice's sample covariance: the centred columns mixed with Gaussian weights.
    mean = Z.mean(axis=-1, keepdims=True)
    weights = rng.standard_normal((n_samples, n_samples)) / np.sqrt(n_samples - 1)
    matched = mean + (Z - mean) @ weights

    def test(sample):
        return metrics.isotropy_test(sample, n_projections=n_projections, alpha=alpha, seed=seed)

    observed, matched_res = test(Z), test(matched)
    table = {
        "observed": (observed.rejection_rate, observed.sigreg),
        "isotropic_gaussian": (observed.null_rejection_rate, observed.sigreg_null),
        "matched_gaussian": (matched_res.rejection_rate, matched_res.sigreg),
    }
    if heavy_tailed:
        heavy = test(rng.standard_t(3, size=(d, n_samples)))
        table["student_t"] = (heavy.rejection_rate, heavy.sigreg)
    dims = ("reference",) + tuple(f"dim_{i}" for i in range(len(batch)))

    def stacked(position):
        return np.stack([np.broadcast_to(np.asarray(v[position], float), batch) for v in table.values()])

    return xr.Dataset(
        {"rejection_rate": (dims, stacked(0)), "sigreg": (dims, stacked(1))},
        coords={"reference": list(table)},
        attrs={"d": int(d), "n_samples": int(n_samples), "n_projections": int(n_projections), "alpha": float(alpha)},
    )


def isotropy_profile(ds, *, n_projections=256, alpha=0.01, seed=0, steps=None, branches=None):
    """:func:`isotropy_references` for every (layer, step, branch) of a cache: dims (reference, layer, step, branch).

    The Student-t reference does not depend on the data; it is computed once and broadcast.
    """
    first = {}

    def fn(Z):
        refs = isotropy_references(Z, n_projections=n_projections, alpha=alpha, seed=seed,
                                   heavy_tailed=not first)
        if not first:
            first.update({k: refs[k].sel(reference="student_t").values for k in ("rejection_rate", "sigreg")})
            refs = refs.drop_sel(reference="student_t")
        out = {}
        for var in ("rejection_rate", "sigreg"):
            values = np.concatenate([refs[var].values, first[var][None]], axis=0)  # (reference, layer)
            out[var] = values.T  # (layer, reference)
        return out

    result = _per_slice(ds, fn, steps, branches, extra_dims=("reference",))
    names = ["observed", "isotropic_gaussian", "matched_gaussian", "student_t"]
    return result.assign_coords(reference=names).transpose("reference", ...).assign_attrs(
        n_projections=int(n_projections), alpha=float(alpha), seed=int(seed))


# --------------------------------------------------------------------------------------------------
# bootstrap bands


def ci_widths(profiles: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """One row per curve: the median and largest CI width (high − low) and the median width relative to |value|.

    ``profiles`` maps a curve name to a Dataset with ``value``, ``low`` and ``high`` (as returned by
    ``analysis.profile(..., n_boot>0)``); widths are pooled over every layer/step/branch it has.
    """
    rows = []
    for name, prof in profiles.items():
        width = (prof.high - prof.low).values.ravel()
        value = np.abs(prof.value.values.ravel())
        relative = np.where(value > 0, width / np.where(value > 0, value, 1.0), np.nan)
        rows.append(
            {
                "curve": name,
                "median width": float(np.nanmedian(width)),
                "max width": float(np.nanmax(width)),
                "median width / |value|": float(np.nanmedian(relative)),
                "slices": int(width.size),
            }
        )
    return pd.DataFrame(rows).set_index("curve")


# --------------------------------------------------------------------------------------------------
# disk arithmetic


def cache_nbytes(n_samples, n_layers, n_steps, n_branches, d, itemsize=4):
    """Uncompressed size of an activation array: N × layers × steps × branches × d × itemsize bytes."""
    dims = (n_samples, n_layers, n_steps, n_branches, d, itemsize)
    if any(int(x) < 1 for x in dims):
        raise ValueError(f"n_samples: every dimension must be >= 1, got {dims}")
    return int(np.prod([int(x) for x in dims], dtype=np.int64))


def store_nbytes(path) -> int:
    """Bytes on disk of a store (a directory such as a zarr store: the sum of its files' sizes)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total
