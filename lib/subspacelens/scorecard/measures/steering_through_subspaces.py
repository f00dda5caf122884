"""The scorecard's causal findings: measures over the store the chapter "Steering through subspaces" writes.

Registered in :data:`subspacelens.scorecard.MEASURES` with the other chapters' measures. Each
needs the cache role ``interventions`` (the path of the store of
:func:`~subspacelens.intervene.experiments.save_results`); the ablation measures also read the ``main`` cache
for the lens' transition block. Every interval is over seeds (each subject's seeds resampled, paired across
conditions: :func:`~subspacelens.intervene.experiments.paired_difference`).
"""

from __future__ import annotations

import numpy as np

from ...intervene.experiments import load_results, paired_difference, summarise
from ..measurement import Measurement, fmt
from ..registry import measure

OUTCOME = {"fine": "shows_subject", "coarse": "shows_category"}
N_BOOT = 200


def _results(ctx, group):
    return ctx.memo(("interventions", group), lambda: load_results(ctx.caches["interventions"], group))


def _depth(result, layer):
    return float(layer) / (int(result.attrs["num_layers_total"]) - 1)


def _nearest(layers, layer):
    layers = np.asarray(layers)
    return int(layers[np.argmin(np.abs(layers - layer))])


def ablation_drops(result, scheme, *, seed=0):
    """Per evaluated block: (mean, low, high) of accuracy(random) − accuracy(scheme ablated), paired over images."""
    outcome = OUTCOME[scheme]
    return {int(layer): paired_difference(result, outcome, {"condition": "random", "layer": layer},
                                          {"condition": scheme, "layer": layer}, n_boot=N_BOOT, seed=seed)
            for layer in result["layer"].values}


@measure("ablation_vs_random", roles=("interventions", "main"))
def measure_ablation_vs_random(ctx, scheme="fine"):
    """Ablating the scheme's subspace at the lens' transition block (nearest evaluated block) against a random
    subspace of the same rank: the accuracy drop beyond the control's, with its interval over seeds."""
    result = _results(ctx, "ablation")
    block = _nearest(result["layer"].values, ctx.transition("main"))
    drop = ablation_drops(result, scheme, seed=ctx.seed)[block]
    m = Measurement().add("drop", *drop).add("block", block)
    m.display = (f"block {block}: {OUTCOME[scheme].replace('_', ' ')} {m.interval('drop')} lower than with a "
                 f"random rank-{result.attrs['rank']} subspace")
    return m


@measure("ablation_where", roles=("interventions", "main"))
def measure_ablation_where(ctx, scheme="coarse"):
    """Depth of the block where ablating the scheme's subspace hurts most (beyond the random control), against
    the depth of the lens' transition block."""
    result = _results(ctx, "ablation")
    drops = ablation_drops(result, scheme, seed=ctx.seed)
    peak = max(drops, key=lambda layer: drops[layer][0])
    transition = ctx.transition("main")
    m = Measurement().add("peak_depth", _depth(result, peak)).add("transition_depth", _depth(result, transition))
    m.add("gap", abs(_depth(result, peak) - _depth(result, transition)))
    m.add("peak_drop", *drops[peak])
    m.display = (f"largest {scheme} drop at block {peak} (depth {fmt(m.quantities['peak_depth'], 2)}, drop "
                 f"{m.interval('peak_drop')}); transition block {transition} (depth "
                 f"{fmt(m.quantities['transition_depth'], 2)})")
    return m


@measure("patch_switch", roles=("interventions",))
def measure_patch_switch(ctx):
    """At the block where patching the subject subspace switches most: switch rate beyond the random subspace's,
    and the same for the patch restricted to the span of the natural activations (the illusion check)."""
    result = _results(ctx, "patching")
    switched = summarise(result, "switched", n_boot=N_BOOT, seed=ctx.seed)["mean"]
    block = int(switched.sel(condition="subspace").idxmax("layer"))
    m = Measurement().add("block", block)
    for condition in ("subspace", "in_span", "full"):
        m.add(f"{condition}_excess", *paired_difference(result, "switched", {"condition": condition, "layer": block},
                                                        {"condition": "random", "layer": block}, n_boot=N_BOOT,
                                                        seed=ctx.seed))
    m.display = (f"block {block}: switch rate beyond random — subspace {m.interval('subspace_excess')}, within the "
                 f"natural span {m.interval('in_span_excess')}, whole activation {m.interval('full_excess')}")
    return m


@measure("steering_on_manifold", roles=("interventions",))
def measure_steering_on_manifold(ctx, max_off=0.1):
    """Among strengths whose off-manifold score stays ≤ ``max_off``, the largest switch rate of steering along
    the class-mean difference beyond a random direction of the same norm."""
    result = _results(ctx, "steering")
    off = summarise(result, "off_manifold", n_boot=N_BOOT, seed=ctx.seed)["mean"].sel(direction="mean_difference")
    m = Measurement().add("max_off", max_off)
    allowed = [float(s) for s in off["strength"].values if float(off.sel(strength=s)) <= max_off]
    if not allowed:
        m.add("excess", np.nan).add("strength", np.nan)
        m.display = f"no strength keeps the off-manifold score ≤ {fmt(max_off)}"
        return m
    excess = {s: paired_difference(result, "switched", {"direction": "mean_difference", "strength": s},
                                   {"direction": "random", "strength": s}, n_boot=N_BOOT, seed=ctx.seed)
              for s in allowed}
    best = max(excess, key=lambda s: excess[s][0])
    m.add("excess", *excess[best]).add("strength", best).add("off", float(off.sel(strength=best)))
    m.display = (f"strength {fmt(best)} at block {result.attrs['block']}: switch rate {m.interval('excess')} beyond "
                 f"a random direction, off-manifold score {fmt(m.quantities['off'])} (≤ {fmt(max_off)})")
    return m
