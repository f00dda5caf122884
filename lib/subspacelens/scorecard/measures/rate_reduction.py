"""Chapter 1, rate reduction across layers: growth, depth trend, the dip, the CFG × step sweep."""

from __future__ import annotations

import numpy as np

from ...stats import spearman_with_depth
from ..measurement import Measurement, fmt
from ..registry import measure
from ._common import add_statistic, depth_of, scale_note


@measure("growth")
def growth(session, scheme="fine", branch="cond", role="main", scale=None):
    """ΔR at the first and last block, their ratio and Spearman ρ with depth, each with its interval."""
    m = Measurement()
    kw = {"scale": scale}
    add_statistic(session, m, "first", lambda v: v[0], role, "delta_R", scheme, branch, **kw)
    add_statistic(session, m, "last", lambda v: v[-1], role, "delta_R", scheme, branch, **kw)
    add_statistic(session, m, "ratio", lambda v: v[-1] / v[0], role, "delta_R", scheme, branch, **kw)
    add_statistic(session, m, "rho", spearman_with_depth, role, "delta_R", scheme, branch, **kw)
    m.display = (f"{scale_note(scale)} ΔR {m.interval('first')} → {m.interval('last')} nats; ×{m.interval('ratio')}; "
                 f"ρ(depth) {m.interval('rho')} ({scheme}, {branch}, mean over steps)")
    return m


def _dip(curve):
    """(largest relative drop below the running maximum, position of that drop)."""
    running = np.maximum.accumulate(curve)
    drop = (running - curve) / running
    i = int(np.argmax(drop))
    return drop[i], i


@measure("dip")
def dip(session, scheme="fine", branch="cond", role="main", scale=None):
    """The largest drop of ΔR below its running maximum (with interval) and the depth where it bottoms out."""
    curve = session.curve(role, "delta_R", scheme, branch, scale=scale)
    _, i = _dip(curve.values)
    layer = int(curve["layer"].values[i])
    m = Measurement()
    add_statistic(session, m, "dip", lambda v: _dip(v)[0], role, "delta_R", scheme, branch, scale=scale)
    m.add("dip_depth", depth_of(curve, layer)).add("dip_layer", layer)
    m.display = (f"{scale_note(scale)}: largest dip {m.interval('dip')} of the running maximum, at block {layer} "
                 f"(depth {fmt(m.quantities['dip_depth'], 2)})")
    return m


@measure("sweep_shape", roles=("sweep",))
def sweep_shape(session, scheme="fine", branch="cond", growth=10.0, scale=None):
    """Across every (CFG scale × step) configuration: shape agreement, and each curve's last/first ratio."""
    curves = []
    for index in range(session.n_caches("sweep")):
        prof = session.profile("sweep", "delta_R", scheme, index=index, branch=branch, scale=scale)
        curves.extend(prof["value"].sel(branch=branch).transpose("step", "layer").values)
    curves = np.asarray(curves)
    standardized = (curves - curves.mean(1, keepdims=True)) / curves.std(1, keepdims=True)
    mean_shape = standardized.mean(0)
    correlations = np.array([np.corrcoef(c, mean_shape)[0, 1] for c in curves])
    ratios = curves[:, -1] / curves[:, 0]
    m = Measurement()
    m.add("n_configs", len(curves)).add("min_shape_corr", correlations.min())
    m.add("frac_growth", np.mean(ratios >= growth)).add("ratio_min", ratios.min()).add("ratio_max", ratios.max())
    m.add("frac_growing", np.mean(ratios > 1))
    m.display = (f"{scale_note(scale)}: {len(curves)} configs; min corr with the mean shape {fmt(correlations.min())}; "
                 f"last/first ×{fmt(ratios.min())}–×{fmt(ratios.max())}; {int(np.sum(ratios >= growth))}/{len(curves)} "
                 f"grow ≥ ×{fmt(growth)}")
    return m
