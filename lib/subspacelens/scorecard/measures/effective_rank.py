"""Chapter 2, effective rank: where it peaks (with an interval) and how far it collapses."""

from __future__ import annotations

import numpy as np

from ... import analysis
from ..measurement import Measurement, fmt
from ..registry import measure
from ._common import add_landmark, add_statistic


@measure("effective_rank")
def effective_rank(session, branch="cond", role="main", center=None):
    """Roy–Vetterli effective rank: peak block (interval, flatness), peak/last ratio, the min(N, d) ceiling."""
    m = Measurement()
    kw = {} if center is None else {"center": center}
    add_landmark(session, m, "peak_layer", role, "effective_rank", None, branch, "max", **kw)
    add_statistic(session, m, "peak_over_last", lambda v: np.max(v) / v[-1], role, "effective_rank", None, branch,
                  **kw)
    add_statistic(session, m, "peak", np.max, role, "effective_rank", None, branch, **kw)
    bound = analysis.rank_bounds(session.ds(role))["all"]
    m.add("bound", bound)
    q = m.quantities
    where = "flat, no landmark" if q["peak_layer_flat"] else f"block {int(q['peak_layer'])} [{fmt(q['peak_layer_low'])}, {fmt(q['peak_layer_high'])}]"
    m.display = (f"{'centred ' if center else ''}peak {m.interval('peak')} at {where} (depth "
                 f"{fmt(q['peak_layer_depth'], 2)}); peak/last ×{m.interval('peak_over_last')}; ceiling min(N, d) = {bound}")
    return m
