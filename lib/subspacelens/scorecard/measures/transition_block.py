"""Chapter 3, the transition block: the overlap minimum (with interval and flatness), its null, nesting."""

from __future__ import annotations

import numpy as np

from ... import analysis
from ..measurement import Measurement, fmt
from ..registry import measure
from ._common import add_landmark, add_statistic


@measure("overlap")
def overlap(session, scheme="coarse", branch="cond", role="main", center=False):
    """Mean off-diagonal overlap (step-averaged): its minimum block, rebound, and the label-shuffle null there."""
    kw = {"center": center} if center else {}
    m = Measurement()
    found = add_landmark(session, m, "min_layer", role, "mean_overlap", scheme, branch, "min", **kw)
    curve = session.curve(role, "mean_overlap", scheme, branch, **kw)
    add_statistic(session, m, "min", np.min, role, "mean_overlap", scheme, branch, **kw)
    add_statistic(session, m, "last_over_min", lambda v: v[-1] / np.min(v), role, "mean_overlap", scheme, branch, **kw)
    add_statistic(session, m, "range", lambda v: np.max(v) - np.min(v), role, "mean_overlap", scheme, branch, **kw)
    chance = session.profile(role, "mean_overlap", scheme, branch=branch, **kw)["chance"].sel(branch=branch).mean("step")
    null = session.overlap_null(role, scheme, branch, center=center or False)
    at_min = null.sel(layer=found["estimate"], branch=branch)
    m.add("chance_at_min", float(chance.sel(layer=found["estimate"])))
    m.add("null_mean_at_min", float(at_min["null_mean"].mean("step")))
    m.add("max_p_at_min", float(at_min["p_adjusted"].max()))
    q = m.quantities
    where = ("flat, no landmark" if q["min_layer_flat"] else
             f"block {int(q['min_layer'])} [{fmt(q['min_layer_low'])}, {fmt(q['min_layer_high'])}]")
    m.display = (f"{'class-centred ' if center else ''}overlap min {m.interval('min')} at {where}; range "
                 f"{fmt(float(curve.min()))}–{fmt(float(curve.max()))}; label-shuffle null there {fmt(q['null_mean_at_min'])} "
                 f"(max adjusted p over steps {fmt(q['max_p_at_min'])}); random-subspace chance {fmt(q['chance_at_min'])}")
    return m


@measure("overlap_by_step")
def overlap_by_step(session, scheme="coarse", branch="cond", role="main", center=False):
    """Depth of minimum overlap at each denoising step; first (noisiest) vs last step."""
    kw = {"center": center} if center else {}
    prof = session.profile(role, "mean_overlap", scheme, branch=branch, **kw)
    curves = prof["value"].sel(branch=branch)
    depths = np.asarray(prof["relative_depth"].values)
    layers = prof["layer"].values
    argmins = [int(curves.sel(step=s).argmin("layer")) for s in prof["step"].values]
    m = Measurement()
    m.add("first_step_depth", depths[argmins[0]]).add("last_step_depth", depths[argmins[-1]]).add("n_steps", len(argmins))
    m.display = "minimum at " + ", ".join(
        f"step {s}: block {layers[a]} ({fmt(depths[a], 2)})" for s, a in zip(prof["step"].values, argmins))
    return m


@measure("nesting")
def nesting(session, branch="cond", role="main", center=False):
    """25×25 subject overlap at the transition block: within-category / between-category overlap (step mean)."""
    ds = session.ds(role)
    layer = session.transition(role)

    def compute():
        within, between = [], []
        for step in ds["step"].values:
            om = analysis.overlap_matrix(ds, layer, step, branch, "fine", **({"center": center} if center else {}))
            same = om["category_i"].values[:, None] == om["category_j"].values[None, :]
            off = ~np.eye(om.shape[0], dtype=bool)
            within.append(om.values[same & off].mean())
            between.append(om.values[~same].mean())
        return float(np.mean(within)), float(np.mean(between))

    w, b = session.memo(("nesting", role, branch, layer, center), compute, role=role)
    m = Measurement().add("within", w).add("between", b).add("ratio", w / b).add("layer", layer)
    m.display = (f"{'class-centred, ' if center else ''}block {layer}: within-category {fmt(w)} vs between {fmt(b)} "
                 f"(×{fmt(w / b)}; mean over steps)")
    return m
