r"""A finding's profile under its controls: what a findings chapter draws next to the blog's raw statistic.

:func:`under_controls` returns, over blocks (step-averaged, one branch): the raw statistic as the blog
measured it, the controlled statistic (``scale="rms"`` for rates, centring for the scale-free metrics),
each with its paired-bootstrap interval; the same two for the random-init twin (teacher-forced on the
trained model's inputs when the twin cache says so); the permutation-null band of ΔR or the label-shuffle
band of the overlap; and the RMS activation norm per block, raw and centred — the scale a raw profile
carries. Every number comes from a :class:`subspacelens.scorecard.Session`, so a chapter and the
scorecard share one computation.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..stats import percentile_interval

NULLS = (None, "permutation", "overlap")


def _band(session, role, metric, scheme, branch, options):
    curve = session.curve(role, metric, scheme, branch, **options)
    samples = session.replicates(role, metric, scheme, branch, **options)
    if samples is None:
        return curve.values, np.full(curve.shape, np.nan), np.full(curve.shape, np.nan)
    # re-centred replicates: their spread around the estimate
    low, high = percentile_interval(samples, session.level)
    return curve.values, low, high


def under_controls(session, metric, scheme=None, *, controlled, branch="cond", null=None, role="main",
                   twin_role="twin", options=None):
    """``xr.Dataset`` over ``layer``: ``{raw,controlled}`` (+ ``_low``, ``_high``), ``twin_{raw,controlled}``
    (when the session has a twin), ``null_low``/``null_high``/``null_mean`` (for ``null``), ``norm`` and
    ``norm_centred`` (+ ``twin_norm``). ``controlled`` names the options of the controlled statistic, e.g.
    ``{"scale": "rms"}``; ``options`` (e.g. the isotropy test's ``n_projections``) apply to both variants;
    attrs say what each variant is.
    """
    if null not in NULLS:
        raise ValueError(f"null: expected one of {list(NULLS)}, got {null!r}")
    options = dict(options or {})
    variants = {"raw": options, "controlled": {**options, **controlled}}
    roles = {"": role} | ({"twin_": twin_role} if session.has(twin_role) else {})
    data = {}
    layer = session.curve(role, metric, scheme, branch)["layer"]
    for prefix, r in roles.items():
        for name, options in variants.items():
            value, low, high = _band(session, r, metric, scheme, branch, options)
            data[f"{prefix}{name}"], data[f"{prefix}{name}_low"], data[f"{prefix}{name}_high"] = value, low, high
        data[f"{prefix}norm"] = session.norms(r, branch)
        data[f"{prefix}norm_centred"] = session.norms(r, branch, center=True)
    if null == "permutation":
        perm = session.permutation(role, scheme, branch, within="seed", **controlled)
        for name in ("null_low", "null_high", "null_mean"):
            data[name] = perm[name].sel(branch=branch).mean("step").values
    elif null == "overlap":
        found = session.overlap_null(role, scheme, branch, **{k: v for k, v in controlled.items()
                                                              if k in ("center", "scale")})
        for name in ("null_low", "null_high", "null_mean"):
            data[name] = found[name].sel(branch=branch).mean("step").values
    out = xr.Dataset({k: ("layer", np.asarray(v, dtype=np.float64)) for k, v in data.items()},
                     coords={"layer": layer.values, "relative_depth": ("layer", layer["relative_depth"].values)})
    twin = session.ds(twin_role).attrs if session.has(twin_role) else {}
    out.attrs = {"metric": metric, "scheme": scheme or "", "branch": branch, "controlled": str(controlled),
                 "null": null or "", "twin": ("teacher-forced" if twin.get("teacher_forced") else "free-running")
                 if twin else "", "averaged_over": "step", "level": session.level}
    return out


def describe(result, *, unit="", digits=2):
    """A computed sentence for a chapter's closing text: last/first for each variant, and the null."""
    def ratio(name):
        return float(result[name][-1] / result[name][0])

    parts = [f"raw last/first ×{ratio('raw'):.{digits}f}", f"controlled ×{ratio('controlled'):.{digits}f}"]
    if "twin_raw" in result:
        parts.append(f"{result.attrs['twin']} twin ×{ratio('twin_raw'):.{digits}f} raw, "
                     f"×{ratio('twin_controlled'):.{digits}f} controlled")
        above = (result["controlled_low"] > result["twin_controlled_high"]).values
        parts.append(f"the trained model's controlled curve is above the twin's interval at {int(above.sum())} of "
                     f"{above.size} blocks")
    if "null_high" in result:
        beyond = (result["controlled"] > result["null_high"]).values
        parts.append(f"above the null's 97.5 % quantile at {int(beyond.sum())} of {beyond.size} blocks")
    norm = result["norm"].values
    parts.append(f"activation RMS norm {norm[0]:.3g} → {norm[-1]:.3g}{unit}")
    return "; ".join(parts)
