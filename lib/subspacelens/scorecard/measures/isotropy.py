"""Chapter 7, beyond isotropic noise: Jarque–Bera rejections on random projections."""

from __future__ import annotations

from ..measurement import Measurement, fmt
from ..registry import measure


@measure("jb_rejection")
def jb_rejection(session, branch="cond", role="main", n_projections=128, alpha=0.01, center=None):
    """Jarque–Bera rejection rate per block (step mean): range against the nominal ``alpha``."""
    kw = {} if center is None else {"center": center}
    curve = session.curve(role, "jb_rejection", None, branch, n_projections=n_projections, alpha=alpha, **kw)
    m = Measurement().add("min", curve.min()).add("max", curve.max()).add("alpha", alpha)
    m.display = (f"{'centred: ' if center else ''}rejection {fmt(100 * float(curve.min()))}–{fmt(100 * float(curve.max()))}% "
                 f"of {n_projections} projections (nominal {fmt(100 * alpha)}%; mean over steps)")
    return m
