"""Chapter 4, per subject: Rc/R at three blocks, fine vs coarse (a tautology), fine beyond coarse (a null)."""

from __future__ import annotations


from ..measurement import Measurement, fmt
from ..registry import measure
from ._common import add_statistic


def _three_blocks(session, role, curve):
    """Positions (not labels) of the first, transition and last blocks in a curve over ``layer``."""
    layers = list(curve["layer"].values)
    return [0, layers.index(session.transition(role)), len(layers) - 1]


@measure("rc_over_r")
def rc_over_r(session, branch="cond", role="main", scale=None):
    """Rc/R for coarse and fine labels at the first, transition and last blocks, with intervals."""
    m = Measurement()
    parts = []
    for scheme in ("coarse", "fine"):
        positions = _three_blocks(session, role, session.curve(role, "Rc_over_R", scheme, branch, scale=scale))
        for k, name in zip(positions, ("first", "mid", "last")):
            add_statistic(session, m, f"{scheme}_{name}", lambda v, k=k: v[k], role, "Rc_over_R", scheme, branch,
                          scale=scale)
        add_statistic(session, m, f"{scheme}_drop", lambda v, a=positions[0], b=positions[-1]: v[a] - v[b], role,
                      "Rc_over_R", scheme, branch, scale=scale)
        parts.append(f"{scheme} " + " / ".join(fmt(m.quantities[f"{scheme}_{n}"], 2) for n in ("first", "mid", "last")))
    m.display = "; ".join(parts) + f" (first, transition block {session.transition(role)}, last; mean over steps)"
    return m


@measure("fine_vs_coarse")
def fine_vs_coarse(session, branch="cond", role="main", scale=None):
    """ΔR(fine) / ΔR(coarse) over blocks (minimum, mean). Holds for any nested labelling (Jensen)."""
    fine, coarse = (session.curve(role, "delta_R", scheme, branch, scale=scale) for scheme in ("fine", "coarse"))
    ratio = (fine / coarse).values
    m = Measurement().add("ratio_min", ratio.min()).add("ratio_mean", ratio.mean())
    m.display = f"fine/coarse ΔR ×{fmt(ratio.min())}–×{fmt(ratio.max())} over blocks (mean ×{fmt(ratio.mean())})"
    return m


@measure("fine_beyond_coarse")
def fine_beyond_coarse(session, branch="cond", role="main", scale="rms"):
    """Fine-label ΔR against the null that permutes subjects only within their category (and seed), every slice."""
    perm = session.permutation(role, "fine", branch, within=("category", "seed"), scale=scale)
    p = perm["p_adjusted"].sel(branch=branch)
    m = Measurement().add("max_p_adjusted", float(p.max())).add("frac_significant", float((p < 0.05).mean()))
    m.add("min_excess", float(perm["excess"].min())).add("max_excess", float(perm["excess"].max()))
    m.display = (f"within-category null ({perm.attrs['n_permutations']} shuffles, {perm.attrs['p_adjust'].upper()}-"
                 f"adjusted over {p.size} block × step slices): {fmt(100 * m.quantities['frac_significant'])}% of slices "
                 f"p < 0.05 (max p {fmt(m.quantities['max_p_adjusted'])}); excess {fmt(m.quantities['min_excess'])}–"
                 f"{fmt(m.quantities['max_excess'])} nats")
    return m


@measure("rc_nats")
def rc_nats(session, scheme="fine", branch="cond", role="main", scale=None):
    """Rc (nats) at the first and last block, and their difference, with intervals."""
    m = Measurement()
    add_statistic(session, m, "first", lambda v: v[0], role, "Rc", scheme, branch, scale=scale)
    add_statistic(session, m, "last", lambda v: v[-1], role, "Rc", scheme, branch, scale=scale)
    add_statistic(session, m, "growth", lambda v: v[-1] - v[0], role, "Rc", scheme, branch, scale=scale)
    m.display = f"{scheme} Rc {m.interval('first')} → {m.interval('last')} nats (mean over steps)"
    return m


