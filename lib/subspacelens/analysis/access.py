r"""Reading an activation cache: the blog's ``Z`` of one slice, the label schemes, depth coordinates.

The activation cache (``DESIGN.md``) is an ``xarray.Dataset`` with ``activations`` of dims
``(sample, layer, step, branch, feature)``. For one (step, branch) the blog's matrix ``Z`` of every block
is ``(layer, d, N)`` — one column per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr


SCHEMES = {"coarse": "category", "fine": "subject"}
"""Label scheme → the cache's sample coordinate holding it."""

RATE_METRICS = ("delta_R", "R", "Rc", "Rc_over_R")
LABELLED = ("delta_R", "Rc", "Rc_over_R", "mean_overlap")
"""Metrics that need a label scheme."""
METRICS = RATE_METRICS + (
    "effective_rank",
    "participation_ratio",
    "mean_overlap",
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
    (returned as is: a caller who chunked it with dask gets its profiles computed chunk by chunk, in
    parallel on the active scheduler). ``load=None`` loads a store's activations into memory when they fit
    in ``IN_MEMORY_BYTES`` (the organism caches are tens of MB), so repeated profiles read no zarr chunks.
    """
    if isinstance(cache, xr.Dataset):
        ds = cache
    elif isinstance(cache, (str, Path)):
        from ..cache import open_cache

        ds = open_cache(cache)  # resolves relative paths from the repository root
    else:
        raise ValueError(f"cache: expected a path or an xarray.Dataset, got {type(cache).__name__}")
    if "activations" not in ds:
        raise ValueError("cache: the dataset has no 'activations' variable (see DESIGN.md)")
    if load is None:
        load = not isinstance(cache, xr.Dataset) and ds["activations"].nbytes <= IN_MEMORY_BYTES
    return ds.load() if load else ds


def slice_matrix(ds, step, branch, layers=None):
    """The blog's ``Z`` for every block of one (step, branch): float64 of shape ``(layer, d, N)``.

    ``step`` and ``branch`` are coordinate values (``ds.step``, ``"cond"``/``"uncond"``); ``layers``
    optionally selects a subset of blocks (coordinate values).
    """
    ds = select(ds, steps=[step], branches=[branch], layers=layers)
    activations = ds["activations"].isel(step=0, branch=0)
    return np.asarray(activations.transpose("layer", "feature", "sample").values, dtype=np.float64)


def labels_of(ds, scheme):
    """Labels of the samples: ``"coarse"`` → ``ds.category`` (5 classes), ``"fine"`` → ``ds.subject`` (25).

    Any other sample coordinate of the cache (``"seed"``, ``"colour"``, …) is accepted by name too.
    """
    coord = SCHEMES.get(scheme, scheme)
    if not isinstance(coord, str) or coord not in ds.coords or ds[coord].dims != ("sample",):
        sample_coords = [c for c in ds.coords if ds[c].dims == ("sample",) and c != "sample"]
        raise ValueError(f"scheme: expected one of {sorted(SCHEMES)} or a sample coordinate of the cache "
                         f"({sample_coords}), got {scheme!r}")
    return np.asarray(ds[coord].values)


def select(ds, *, steps=None, branches=None, layers=None):
    """The cache restricted to some steps, branches and layers (coordinate values; ``None`` keeps all).

    ``ValueError`` naming the argument and listing the valid values when one is not in the cache.
    """
    chosen = {}
    for name, dim, wanted in (("steps", "step", steps), ("branches", "branch", branches), ("layers", "layer", layers)):
        if wanted is None:
            continue
        wanted = np.atleast_1d(wanted).tolist()
        valid = ds[dim].values.tolist()
        missing = [w for w in wanted if w not in valid]
        if missing or not wanted:
            raise ValueError(f"{name}: {missing or wanted!r} not in the cache; valid values: {valid}")
        chosen[dim] = wanted
    return ds.sel(chosen) if chosen else ds


def num_layers_total(ds):
    """Number of blocks of the captured model (``attrs['num_layers_total']``, else the largest layer + 1)."""
    total = ds.attrs.get("num_layers_total")
    return int(total) if total is not None else int(ds["layer"].max()) + 1


def relative_depth(ds):
    """``layer / (num_layers_total - 1)`` as a DataArray on ``layer``: 0 = first block, 1 = last block."""
    depth = ds["layer"].values / max(num_layers_total(ds) - 1, 1)
    return xr.DataArray(depth, dims="layer", coords={"layer": ds["layer"].values}, name="relative_depth")


def profile_coords(ds):
    coords = {
        "layer": ds["layer"].values,
        "step": ds["step"].values,
        "branch": ds["branch"].values,
        "relative_depth": ("layer", relative_depth(ds).values),
    }
    if "timestep" in ds.coords:
        coords["timestep"] = ("step", np.asarray(ds["timestep"].values))
    return coords


