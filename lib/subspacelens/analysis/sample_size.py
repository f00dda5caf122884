r"""What N images can estimate: metrics on subsamples of the noise seeds.

In the crossed v2 design every seed carries one image of every subject, so keeping n of the seeds keeps
n images per subject (5n per category). Each size is drawn ``n_repeats`` times without replacement; the
spread over draws shows how far a 20-per-class estimate is from what more images would give.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..metrics._checks import as_positive_int
from .access import open_dataset, select
from .profiles import profile


def sample_size_curve(ds, metric, scheme=None, *, per_class=(2, 5, 10, 20), n_repeats=10, seed=0, step=None,
                      branch="cond", layers=None, **profile_kwargs):
    """``metric`` on random subsets of the seeds: ``value`` over ``(per_class, repeat, layer)`` plus mean and spread.

    ``per_class`` lists how many seeds (= images per subject) to keep; each value must be between 2 and the
    cache's number of seeds. Returns an ``xr.Dataset`` with ``value`` and ``mean``, ``low``, ``high`` (2.5 /
    97.5 percentiles over repeats) on ``(per_class, layer)``.
    """
    ds = open_dataset(ds)
    if "seed" not in ds.coords:
        raise ValueError("ds: sample-size curves subsample the noise seeds, and this cache has no 'seed' coordinate")
    step = ds["step"].values[-1] if step is None else step
    ds = select(ds, steps=[step], branches=[branch], layers=layers)
    seeds = np.unique(ds["seed"].values)
    per_class = [as_positive_int("per_class", n) for n in np.atleast_1d(per_class)]
    bad = [n for n in per_class if not 2 <= n <= seeds.size]
    if bad:
        raise ValueError(f"per_class: {bad} outside 2..{seeds.size} (the cache has {seeds.size} seeds)")
    n_repeats = as_positive_int("n_repeats", n_repeats)
    rng = np.random.default_rng(seed)
    values = np.empty((len(per_class), n_repeats, ds.sizes["layer"]))
    for i, n in enumerate(per_class):
        for r in range(n_repeats):
            kept = rng.choice(seeds, size=n, replace=False)
            subset = ds.isel(sample=np.isin(ds["seed"].values, kept))
            values[i, r] = profile(subset, metric, scheme, **profile_kwargs)["value"].isel(step=0, branch=0).values
    out = xr.Dataset(
        {"value": (("per_class", "repeat", "layer"), values)},
        coords={"per_class": per_class, "repeat": np.arange(n_repeats), "layer": ds["layer"].values},
    )
    out["mean"] = out["value"].mean("repeat")
    out["low"] = out["value"].quantile(0.025, dim="repeat").drop_vars("quantile")
    out["high"] = out["value"].quantile(0.975, dim="repeat").drop_vars("quantile")
    out.attrs = {"metric": metric, "scheme": scheme or "", "step": int(step), "branch": str(branch),
                 "n_features": int(ds.sizes["feature"]), **{k: str(v) for k, v in profile_kwargs.items()}}
    return out
