r"""Profiles of several caches (a trained model and its twin, other organisms) stacked along ``model``."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import xarray as xr


def stack_models(profiles: Mapping[str, xr.Dataset]):
    """Profiles of several models (e.g. ``{"trained": ..., "random-init": ...}``) along a new ``model`` dim.

    Coordinates are taken from the first profile (the models share layers and steps); attrs that differ
    (model name, …) are dropped.
    """
    return xr.concat(list(profiles.values()), dim=pd.Index(list(profiles), name="model"), coords="minimal",
                     compat="override", combine_attrs="drop_conflicts")
