r"""The CFG branches compared: ΔR(uncond) − ΔR(cond) with a paired bootstrap interval."""

from __future__ import annotations

import xarray as xr


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
