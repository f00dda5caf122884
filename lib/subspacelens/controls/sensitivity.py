r"""How much a conclusion depends on a choice: ε, the depth trend at every ε, the width of the bands."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .. import metrics
from ._slices import _labels, _per_slice


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
