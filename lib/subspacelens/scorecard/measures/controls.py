"""The controls the blog did not run, each a row of its own: nulls, class-centring, scale, the twin, seeds."""

from __future__ import annotations

import numpy as np

from ..measurement import Measurement, fmt
from ..registry import measure
from ._common import add_statistic


@measure("permutation")
def permutation(session, scheme="fine", branch="cond", role="main", scale="rms", center=False, within="seed"):
    """ΔR against its permuted-label null at every block and step: largest adjusted p, smallest excess.

    ``within="seed"``: labels are exchanged only among images of one noise seed, which keeps the crossed
    design's one-image-per-seed balance in every shuffled class (a free shuffle breaks it).
    """
    perm = session.permutation(role, scheme, branch, scale=scale, center=center, within=within)
    p = perm["p_adjusted"]
    m = Measurement().add("max_p_adjusted", float(p.max())).add("min_excess", float(perm["excess"].min()))
    m.add("min_z", float(perm["z_score"].min())).add("frac_significant", float((p < 0.05).mean()))
    m.add("min_possible_p", 1 / (1 + perm.attrs["n_permutations"]))
    m.display = (f"{'class-centred ' if center == 'class' else ''}{scheme} ΔR vs {perm.attrs['n_permutations']} shuffles "
                 f"within {perm.attrs['within'] or 'all'}: "
                 f"{fmt(100 * m.quantities['frac_significant'])}% of {p.size} block × step slices p < 0.05 after "
                 f"{perm.attrs['p_adjust'].upper()} (max {fmt(m.quantities['max_p_adjusted'])}); excess ≥ "
                 f"{fmt(m.quantities['min_excess'])} nats")
    return m


@measure("class_means_share")
def class_means_share(session, scheme="fine", branch="cond", role="main", scale="rms"):
    """Share of last-block ΔR carried by the class means: 1 − ΔR(class-centred) / ΔR."""
    raw = session.curve(role, "delta_R", scheme, branch, scale=scale)
    centred = session.curve(role, "delta_R", scheme, branch, scale=scale, center="class")
    share = 1 - centred / raw
    m = Measurement()
    m.add("means_share_last", float(share.isel(layer=-1))).add("means_share_min", float(share.min()))
    m.display = (f"class means carry {fmt(100 * float(share.min()))}–{fmt(100 * float(share.max()))}% of {scheme} "
                 f"scale-aware ΔR over blocks ({fmt(100 * float(share.isel(layer=-1)))}% at the last; mean over steps)")
    return m


@measure("twin_gap", roles=("main", "twin"))
def twin_gap(session, scheme="fine", branch="cond", scale="rms"):
    """Area between the trained model's and the teacher-forced twin's ΔR curves (mean over blocks), paired CI."""
    trained = session.curve("main", "delta_R", scheme, branch, scale=scale).values
    twin = session.curve("twin", "delta_R", scheme, branch, scale=scale).values
    m = Measurement()
    a = session.replicates("main", "delta_R", scheme, branch, scale=scale)
    b = session.replicates("twin", "delta_R", scheme, branch, scale=scale)
    area = float(np.mean(trained - twin))
    if a is None:
        m.add("area", area)
    else:  # the twin sees the trained model's inputs, same prompts and seeds: the resamples pair them
        low, high = np.percentile((a - b).mean(axis=0), [50 * (1 - session.level), 100 - 50 * (1 - session.level)])
        m.add("area", area, low, high)
    for role, name in (("main", "trained"), ("twin", "twin")):
        add_statistic(session, m, f"growth_{name}", lambda v: v[-1] / v[0], role, "delta_R", scheme, branch,
                      scale=scale)
    teacher = bool(session.ds("twin").attrs.get("teacher_forced", False))
    m.add("teacher_forced", float(teacher))
    m.display = (f"{'scale-aware' if scale == 'rms' else 'raw'} ΔR, trained − {'teacher-forced' if teacher else 'free-running'} "
                 f"twin, mean over blocks: {m.interval('area')} nats; growth ×{m.interval('growth_trained')} vs "
                 f"×{m.interval('growth_twin')}")
    return m


@measure("seed_spread", roles=("main", "seeds"))
def seed_spread(session, scheme="fine", branch="cond", scale="rms"):
    """Last/first ΔR ratio of organisms trained from other seeds, next to the main one's image interval."""
    ratios = []
    for index in range(session.n_caches("seeds")):
        curve = session.curve("seeds", "delta_R", scheme, branch, index=index, scale=scale).values
        ratios.append(curve[-1] / curve[0])
    m = Measurement()
    add_statistic(session, m, "ratio_main", lambda v: v[-1] / v[0], "main", "delta_R", scheme, branch, scale=scale)
    m.add("ratio_seed_min", min(ratios)).add("ratio_seed_max", max(ratios)).add("n_seeds", len(ratios) + 1)
    m.display = (f"scale-aware growth ×{m.interval('ratio_main')} (seed 0, interval over images); other training seeds "
                 + ", ".join(f"×{fmt(r)}" for r in ratios))
    return m
