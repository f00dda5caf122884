"""Small helpers the per-chapter measures share."""

from __future__ import annotations

import numpy as np

from ..measurement import Measurement


def depth_of(ds_or_curve, layer):
    return float(ds_or_curve["relative_depth"].sel(layer=layer))


def add_statistic(session, m, name, function, role, metric, scheme, branch, **kwargs):
    """``m.add(name, *session.statistic(...))``: a function of the step-averaged curve with its interval."""
    estimate, low, high = session.statistic(role, function, metric, scheme, branch, **kwargs)
    return m.add(name, estimate, low, high)


def add_landmark(session, m, name, role, metric, scheme, branch, kind, **kwargs):
    """Adds ``name`` (the block), ``name_low``/``name_high``, ``name_flat`` (1 when no landmark), ``name_depth``."""
    found = session.landmark(role, metric, scheme, branch, kind, **kwargs)
    m.add(name, found["estimate"], found["low"], found["high"])
    m.add(f"{name}_flat", float(found["flat"]))
    curve = session.curve(role, metric, scheme, branch, **kwargs)
    m.add(f"{name}_depth", depth_of(curve, found["estimate"]))
    return found


def scale_note(scale):
    return "scale-aware" if scale == "rms" else "raw"


__all__ = ["Measurement", "add_landmark", "add_statistic", "depth_of", "np", "scale_note"]
