"""Chapter 6, dense not sparse: Hoyer sparsity per block and where the densest block is."""

from __future__ import annotations

import numpy as np

from ..measurement import Measurement, fmt
from ..registry import measure
from ._common import add_landmark, add_statistic


@measure("hoyer")
def hoyer(session, branch="cond", role="main", center=None):
    """Hoyer sparsity per block: the largest value (interval) and the densest block (interval, flatness)."""
    kw = {} if center is None else {"center": center}
    m = Measurement()
    add_statistic(session, m, "max", np.max, role, "hoyer", None, branch, **kw)
    add_statistic(session, m, "min", np.min, role, "hoyer", None, branch, **kw)
    add_landmark(session, m, "densest", role, "hoyer", None, branch, "min", **kw)
    q = m.quantities
    where = "flat, no landmark" if q["densest_flat"] else f"block {int(q['densest'])} [{fmt(q['densest_low'])}, {fmt(q['densest_high'])}]"
    m.display = (f"{'centred ' if center else ''}Hoyer {m.interval('min')} – {m.interval('max')}; densest at {where} "
                 f"(depth {fmt(q['densest_depth'], 2)}; mean over steps)")
    return m
