r"""Class-subspace overlap matrices of one block, the transition block, and the finite-sample rank ceilings."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import metrics
from .access import labels_of, open_dataset, slice_matrix
from .derived import landmark
from .profiles import profile

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
        category = category_of_subject(ds)
        da = da.assign_coords(category_i=("class_i", [category[c] for c in classes]),
                              category_j=("class_j", [category[c] for c in classes]))
        if order is None:
            order = sorted(classes, key=lambda c: (category[c], c))
    if order is not None:
        da = da.sel(class_i=list(order), class_j=list(order))
    return da


def category_of_subject(ds):
    """``{subject: category}`` from the cache's sample coordinates."""
    subjects = np.asarray(ds["subject"].values).astype(str)
    categories = np.asarray(ds["category"].values).astype(str)
    return dict(zip(subjects, categories))


def transition_layer(ds, scheme="coarse", branch="cond", step=None, overlap=None, **kw):
    """The block of peak orthogonality: argmin over layers of the mean off-diagonal overlap.

    ``step=None`` averages the overlap profile over the cache's steps first. Pass a precomputed
    ``overlap`` profile (from ``profile(ds, "mean_overlap", scheme)``) to avoid recomputing it.
    :func:`transition_landmark` gives the same block with its interval and a flatness verdict.
    Returns the block index (a ``layer`` coordinate value).
    """
    if overlap is None:
        overlap = profile(ds, "mean_overlap", scheme, branches=[branch], **kw)
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


def transition_landmark(ds, scheme="coarse", branch="cond", *, n_boot=200, seed=0, level=0.95, **kw):
    """The transition block with its bootstrap interval: :func:`.derived.landmark` of the step-averaged overlap.

    Returns a dict ``estimate``, ``low``, ``high``, ``flat`` (True: the overlap curve is flat within its
    own interval, so no block is a landmark).
    """
    from .profiles import average_over_steps

    overlap = profile(ds, "mean_overlap", scheme, branches=[branch], n_boot=n_boot, seed=seed, level=level,
                      keep_samples=True, **kw)
    found = landmark(average_over_steps(overlap).sel(branch=branch), "min", level)
    return {k: found[k].item() for k in ("estimate", "low", "high", "flat")}
