"""Chapter 5, cond vs uncond: the branch gap judged per denoising step (step 0 is an exact null)."""

from __future__ import annotations

import numpy as np

from ..measurement import Measurement, at_most, fmt
from ..registry import measure
from .per_subject import _three_blocks


# ΔR is O(1) nats; an exact null computed in float64 lands within ~1e-13 of 0.
EXACT_NULL_FLOOR = 1e-10


@measure("branch_gap")
def branch_gap(session, scheme="coarse", role="main", scale=None):
    """|ΔR(uncond) − ΔR(cond)| / ΔR(cond) at the transition and last blocks, at every step but the first.

    At the first step of a prompt-free seed the unconditional branch sees identical inputs for every prompt,
    so its ΔR is 0 by construction: that step is reported as the exact null it is, not averaged in.
    """
    ds = session.ds(role)
    if "uncond" not in ds["branch"].values:
        from ..session import MissingCache

        raise MissingCache(f"{role} cache's uncond branch (captured with guidance off)")
    cond = session.profile(role, "delta_R", scheme, branch="cond", scale=scale)["value"].sel(branch="cond")
    uncond = session.profile(role, "delta_R", scheme, branch="uncond", scale=scale)["value"].sel(branch="uncond")
    positions = _three_blocks(session, role, cond.mean("step"))[1:]
    relative = np.abs(uncond - cond) / cond
    steps = cond["step"].values
    mid, last = (relative.isel(layer=p, step=slice(1, None)) for p in positions)
    m = Measurement()
    m.add("max_rel_gap_last", float(last.max())).add("min_rel_gap_last", float(last.min()))
    m.add("min_gap_mid", float((uncond - cond).isel(layer=positions[0], step=slice(1, None)).min()))
    m.add("frac_mid_above_last", float((mid.values > last.values).mean()))
    m.add("step0_uncond", float(uncond.isel(step=0, layer=positions[-1])))
    m.display = (f"|uncond − cond|/cond at the last block, steps {', '.join(str(s) for s in steps[1:])}: "
                 + ", ".join(f"{fmt(100 * v, 2)}%" for v in last.values)
                 + f"; step {steps[0]}: |uncond ΔR| {at_most(m.quantities['step0_uncond'], EXACT_NULL_FLOOR)} nats (exact null)")
    return m


