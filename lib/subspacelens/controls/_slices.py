r"""Per-slice plumbing shared by the controls: select steps/branches, apply a batched function to every slice."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..analysis import labels_of, relative_depth, slice_matrix


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
