r"""The blog's findings, each re-measured on this run's caches and checked against a stated criterion.

``data/reference/blog_findings.yaml`` lists every finding of the blog post with the sentence it comes
from (``claim``), the PixArt-α value as reported (``blog_value``), the chapter that examines it, the name
of a **measure** registered here (with ``options``) and a machine-checkable ``criterion``. A measure
computes named quantities from the caches — every number comes from :mod:`subspacelens.analysis` when the
page runs, nothing is hard-coded — and the criterion is a small expression over those names, e.g.
``ratio >= 10`` or ``1/3 <= min_depth <= 2/3``. Each quantity ``q`` with a bootstrap CI also provides
``q_low`` and ``q_high``. Depths are relative (``layer / (num_layers_total - 1)``), so a criterion reads
the same for 28-block PixArt-α and for a 12-block organism.

Public API (stable):

``table(caches, chapter=None, *, n_boot=30, seed=0, n_permutations=20, context=None)``
    ``pandas.DataFrame`` with columns ``id``, ``chapter``, ``finding``, ``PixArt-α (blog)``, ``this run``,
    ``criterion``, ``holds`` (``True``/``False``, or ``"not run"`` when a cache the finding needs is not
    given). ``caches`` maps a role to a path or Dataset: ``"main"`` (the CFG-4.5 cache), ``"sweep"`` (a list
    of caches at several CFG scales) and ``"random_init"`` (the random-initialised twin).
``summary(df)``
    One computed sentence: how many findings hold, fail and were not run.
``blog_reference()``
    The blog's protocol and the landmark blocks it names, with ``depth(block)`` → relative depth.
``load_findings(path=None)``, ``MEASURES``, ``evaluate_criterion(criterion, quantities)``,
``criterion_names(criterion)``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from . import analysis

__all__ = [
    "FINDINGS_PATH",
    "MEASURES",
    "Measurement",
    "NOT_RUN",
    "blog_reference",
    "criterion_names",
    "evaluate_criterion",
    "load_findings",
    "measure",
    "summary",
    "table",
]

FINDINGS_PATH = Path(__file__).resolve().parents[2] / "data" / "reference" / "blog_findings.yaml"
NOT_RUN = "not run"
COLUMNS = ["id", "chapter", "finding", "PixArt-α (blog)", "this run", "criterion", "holds"]


# --------------------------------------------------------------------------------------------- criteria

_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_FUNCTIONS = {"abs": abs, "min": min, "max": max}


def _parse(criterion):
    try:
        tree = ast.parse(criterion, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"criterion: cannot parse {criterion!r} ({error.msg})") from None
    for node in ast.walk(tree):
        allowed = (ast.Expression, ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
                   ast.BinOp, ast.Name, ast.Load, ast.Constant, ast.Call) + tuple(_COMPARE) + tuple(_BINARY)
        if not isinstance(node, allowed):
            raise ValueError(f"criterion: {type(node).__name__} is not allowed in {criterion!r}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            raise ValueError(f"criterion: only {sorted(_FUNCTIONS)} may be called in {criterion!r}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ValueError(f"criterion: only numbers are allowed as constants in {criterion!r}")
    return tree


def criterion_names(criterion):
    """The quantity names a criterion refers to (raises ``ValueError`` if it does not parse)."""
    tree = _parse(criterion)
    return sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - set(_FUNCTIONS))


def evaluate_criterion(criterion, quantities):
    """Evaluate a criterion such as ``"ratio >= 10 and 1/3 <= min_depth <= 2/3"`` → ``bool``.

    Allowed: numbers, names of ``quantities``, ``+ - * / **``, comparisons (chained), ``and``/``or``/
    ``not`` and ``abs``/``min``/``max``. An unknown name raises ``ValueError``; a NaN quantity makes
    every comparison it enters false.
    """

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in quantities:
                raise ValueError(f"criterion: unknown quantity {node.id!r}; known: {sorted(quantities)}")
            return float(quantities[node.id])
        if isinstance(node, ast.BoolOp):
            values = [bool(ev(v)) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            return (not ev(node.operand)) if isinstance(node.op, ast.Not) else -ev(node.operand)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comparator in zip(node.ops, node.comparators):
                right = ev(comparator)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](*[ev(a) for a in node.args])
        raise AssertionError(type(node))

    return bool(ev(_parse(criterion)))


# ------------------------------------------------------------------------------------------ measurements


@dataclass
class Measurement:
    """What a measure returns: named quantities (each a float) and the "this run" text of the table."""

    quantities: dict = field(default_factory=dict)
    display: str = ""

    def add(self, name, value, low=None, high=None):
        self.quantities[name] = float(value)
        if low is not None:
            self.quantities[f"{name}_low"] = float(low)
            self.quantities[f"{name}_high"] = float(high)
        return self


@dataclass(frozen=True)
class _Measure:
    function: object
    roles: tuple


MEASURES: dict[str, _Measure] = {}
"""Registered measurement functions: name → (function(ctx, **options) -> Measurement, roles needed)."""


def measure(name, roles=("main",)):
    """Register ``function(ctx, **options) -> Measurement`` as measure ``name`` needing cache ``roles``."""

    def register(function):
        MEASURES[name] = _Measure(function, tuple(roles))
        return function

    return register


class MissingCache(KeyError):
    """A measure needs a cache role that was not given."""


class Context:
    """The caches of one scorecard run, opened once, and a memo of every profile computed from them.

    Curves are step-averaged profiles over all blocks (no bootstrap); bootstrap replicates are computed
    only at the few blocks a finding reads (first, transition, last, a peak), which keeps a whole
    scorecard within about a minute on the organism caches.
    """

    def __init__(self, caches, *, n_boot=30, seed=0, n_permutations=20, level=0.95):
        if not isinstance(caches, Mapping):
            raise ValueError("caches: expected a mapping of role -> path/Dataset, e.g. {'main': path}")
        self.caches = {role: c for role, c in caches.items() if c is not None and not _is_empty_list(c)}
        self.n_boot, self.seed, self.n_permutations, self.level = n_boot, seed, n_permutations, level
        self._datasets, self._memo = {}, {}

    def has(self, role):
        return role in self.caches

    def ds(self, role, index=None):
        """The opened Dataset of a role (``index`` picks one cache of a list role such as ``sweep``)."""
        if role not in self.caches:
            raise MissingCache(role)
        key = (role, index)
        if key not in self._datasets:
            cache = self.caches[role]
            if index is not None:
                cache = cache[index]
            self._datasets[key] = analysis.open_dataset(cache)
        return self._datasets[key]

    def n_caches(self, role):
        cache = self.caches[role]
        return 1 if isinstance(cache, (str, Path)) or not isinstance(cache, Sequence) else len(cache)

    def _profiles(self, role, metric, scheme, *, index=None, **kwargs):
        """Memoised :func:`analysis.profiles`; the rate metrics are computed (and cached) together."""
        group = list(analysis.RATE_METRICS) if metric in analysis.RATE_METRICS and scheme else [metric]
        frozen = tuple(sorted((k, str(v)) for k, v in kwargs.items()))
        key = (role, index, metric if len(group) == 1 else "rates", scheme, frozen)
        if key not in self._memo:
            self._memo[key] = analysis.profiles(self.ds(role, index), group, scheme, **kwargs)
        return self._memo[key][metric]

    def profile(self, role, metric, scheme=None, *, index=None, branch="cond", **kwargs):
        """The profile of one branch over all blocks and steps (no bootstrap)."""
        return self._profiles(role, metric, scheme, index=index, branches=[branch], **kwargs)

    def curve(self, role, metric, scheme=None, branch="cond", *, index=None, **kwargs):
        """The profile of one branch averaged over the cache's steps: a DataArray over ``layer``."""
        return self.profile(role, metric, scheme, index=index, branch=branch, **kwargs)["value"].sel(
            branch=branch).mean("step")

    def replicates(self, role, metric, scheme, branch, layers, **kwargs):
        """Step-averaged bootstrap replicates at ``layers``: array ``(len(layers), n_boot)`` (or None).

        Replicates are memoised block by block, so findings reading overlapping blocks share them; all
        use the same resamples (``seed``), so replicates are paired across blocks and branches.
        """
        if not self.n_boot:
            return None
        rates = metric in analysis.RATE_METRICS and scheme
        group = list(analysis.RATE_METRICS) if rates else [metric]
        key = (role, "rates" if rates else metric, scheme, branch, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        store = self._memo.setdefault(("replicates",) + key, {})
        missing = sorted({int(layer) for layer in layers} - set(store))
        if missing:
            computed = analysis.profiles(self.ds(role), group, scheme, branches=[branch], layers=missing,
                                         n_boot=self.n_boot, seed=self.seed, level=self.level, keep_samples=True,
                                         **kwargs)
            for layer in missing:
                store[layer] = {m: computed[m]["samples"].sel(branch=branch, layer=layer).mean("step").values
                                for m in group}
        return np.stack([store[int(layer)][metric] for layer in layers])

    def transition(self, role="main"):
        """The block of minimum mean off-diagonal coarse overlap (cond branch, averaged over steps)."""
        overlap = self.profile(role, "overlap_offdiag", "coarse")
        return analysis.transition_layer(self.ds(role), overlap=overlap)


def _is_empty_list(cache):
    return isinstance(cache, Sequence) and not isinstance(cache, (str, Path)) and len(cache) == 0


def _fmt(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    x = float(x)
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def _fmt_ci(m, name, digits=3):
    q = m.quantities
    text = _fmt(q[name], digits)
    if f"{name}_low" in q:
        text += f" [{_fmt(q[name + '_low'], digits)}, {_fmt(q[name + '_high'], digits)}]"
    return text


def _stat(ctx, m, name, function, role, metric, scheme, branch, layers, **kwargs):
    """Add quantity ``name`` = ``function(values at layers)`` with its bootstrap percentile interval."""
    curve = ctx.curve(role, metric, scheme, branch, **kwargs)
    estimate = function(curve.sel(layer=list(layers)).values)
    samples = ctx.replicates(role, metric, scheme, branch, layers, **kwargs)
    if samples is None:
        return m.add(name, estimate)
    replicates = np.array([function(samples[:, b]) for b in range(samples.shape[-1])])
    return m.add(name, estimate, *_bounds(replicates, ctx.level))


def _bounds(replicates, level):
    """The percentile interval of a set of bootstrap replicates."""
    tail = 50 * (1 - level)
    return np.nanpercentile(replicates, tail), np.nanpercentile(replicates, 100 - tail)


def _ends(curve):
    """The first and last block of a curve."""
    return [int(curve["layer"].values[0]), int(curve["layer"].values[-1])]


def _layer_at(curve, position):
    """The block of a curve at an index such as ``np.argmax(curve)``."""
    return int(curve["layer"].values[int(position)])


def _depth_of(curve, layer):
    return float(curve["relative_depth"].sel(layer=layer))


# ------------------------------------------------------------------------------------- chapter 1: ΔR


@measure("growth")
def measure_growth(ctx, scheme="fine", branch="cond", role="main"):
    """ΔR at the first and last block and their ratio (paired bootstrap CIs); Spearman ρ with depth."""
    curve = ctx.curve(role, "delta_R", scheme, branch)
    ends = _ends(curve)
    m = Measurement()
    for name, function in (("first", lambda v: v[0]), ("last", lambda v: v[1]), ("ratio", lambda v: v[1] / v[0])):
        _stat(ctx, m, name, function, role, "delta_R", scheme, branch, ends)
    m.add("rho", stats.spearmanr(curve["layer"].values, curve.values).statistic)
    m.display = (f"ΔR {_fmt_ci(m, 'first')} → {_fmt_ci(m, 'last')} nats; ×{_fmt_ci(m, 'ratio')}; "
                 f"Spearman ρ(depth) = {_fmt(m.quantities['rho'])} ({scheme}, {branch})")
    return m


def _dip(curve):
    """(largest relative drop below the running maximum, position of that drop)."""
    running = np.maximum.accumulate(curve)
    drop = (running - curve) / running
    i = int(np.argmax(drop))
    return drop[i], i


@measure("dip")
def measure_dip(ctx, scheme="fine", branch="cond", role="main"):
    """The largest drop of ΔR below its running maximum, and the relative depth where it bottoms out."""
    curve = ctx.curve(role, "delta_R", scheme, branch)
    dip, i = _dip(curve.values)
    layers = [_layer_at(curve, np.argmax(curve.values[: i + 1])), _layer_at(curve, i)]
    m = Measurement()
    _stat(ctx, m, "dip", lambda v: (v[0] - v[1]) / v[0], role, "delta_R", scheme, branch, layers)
    m.add("dip_depth", _depth_of(curve, layers[1])).add("dip_layer", layers[1])
    m.display = (f"largest dip {_fmt_ci(m, 'dip')} below the block-{layers[0]} maximum, at block {layers[1]} "
                 f"(depth {_fmt(m.quantities['dip_depth'], 2)})")
    return m


@measure("sweep_shape", roles=("sweep",))
def measure_sweep_shape(ctx, scheme="fine", branch="cond", growth=10.0):
    """Across every (CFG scale × step) configuration: shape agreement and ΔR growth of each curve."""
    curves = []
    for index in range(ctx.n_caches("sweep")):
        prof = ctx.profile("sweep", "delta_R", scheme, index=index, branch=branch)
        curves.extend(prof["value"].sel(branch=branch).transpose("step", "layer").values)
    curves = np.asarray(curves)
    standardized = (curves - curves.mean(1, keepdims=True)) / curves.std(1, keepdims=True)
    mean_shape = standardized.mean(0)
    correlations = np.array([np.corrcoef(c, mean_shape)[0, 1] for c in curves])
    ratios = curves[:, -1] / curves[:, 0]
    m = Measurement()
    m.add("n_configs", len(curves)).add("min_shape_corr", correlations.min())
    m.add("frac_growth", np.mean(ratios >= growth)).add("ratio_min", ratios.min()).add("ratio_max", ratios.max())
    m.display = (f"{len(curves)} configs: min corr with mean shape {_fmt(correlations.min())}; "
                 f"last/first ×{_fmt(ratios.min())}–×{_fmt(ratios.max())}; "
                 f"{int(np.sum(ratios >= growth))}/{len(curves)} grow ≥ ×{_fmt(growth)}")
    return m


# -------------------------------------------------------------------------------- chapter 2: effective rank


@measure("effective_rank")
def measure_effective_rank(ctx, branch="cond", role="main"):
    """Roy–Vetterli effective rank: peak value and depth, last block, peak/last; the min(N, d) ceiling."""
    curve = ctx.curve(role, "effective_rank", None, branch)
    peak_layer = _layer_at(curve, np.argmax(curve.values))
    layers, m = [peak_layer, _ends(curve)[1]], Measurement()
    for name, function in (("peak", lambda v: v[0]), ("last", lambda v: v[1]),
                           ("peak_over_last", lambda v: v[0] / v[1])):
        _stat(ctx, m, name, function, role, "effective_rank", None, branch, layers)
    bound = analysis.rank_bounds(ctx.ds(role))["all"]
    m.add("peak_depth", _depth_of(curve, peak_layer)).add("peak_layer", peak_layer).add("bound", bound)
    m.display = (f"peak {_fmt_ci(m, 'peak')} at block {peak_layer} (depth {_fmt(m.quantities['peak_depth'], 2)}); "
                 f"last {_fmt_ci(m, 'last')}; peak/last ×{_fmt_ci(m, 'peak_over_last')}; ceiling min(N, d) = {bound}")
    return m


# ----------------------------------------------------------------------------- chapter 3: transition block


@measure("overlap")
def measure_overlap(ctx, scheme="coarse", branch="cond", role="main"):
    """Mean off-diagonal overlap curve (averaged over steps): minimum, its depth, range, rebound, chance."""
    prof = ctx.profile(role, "overlap_offdiag", scheme, branch=branch)
    curve = prof["value"].sel(branch=branch).mean("step")
    chance = prof["chance"].sel(branch=branch).mean("step").values
    values = curve.values
    i = int(np.argmin(values))
    layer = _layer_at(curve, i)
    m = Measurement()
    m.add("min", values[i]).add("min_depth", _depth_of(curve, layer)).add("min_layer", layer)
    m.add("max", values.max()).add("last", values[-1]).add("last_over_min", values[-1] / values[i])
    m.add("chance_at_min", chance[i])
    m.display = (f"min {_fmt(values[i])} at block {layer} (depth {_fmt(m.quantities['min_depth'], 2)}; "
                 f"chance {_fmt(chance[i])}); range {_fmt(values.min())}–{_fmt(values.max())}; "
                 f"last/min ×{_fmt(values[-1] / values[i])}")
    return m


@measure("overlap_by_step")
def measure_overlap_by_step(ctx, scheme="coarse", branch="cond", role="main"):
    """Depth of minimum overlap at each denoising step; first (noisiest) vs last step."""
    prof = ctx.profile(role, "overlap_offdiag", scheme, branch=branch)
    curves = prof["value"].sel(branch=branch)
    depths = np.asarray(prof["relative_depth"].values)
    layers = prof["layer"].values
    argmins = [int(curves.sel(step=s).argmin("layer")) for s in prof["step"].values]
    m = Measurement()
    m.add("first_step_depth", depths[argmins[0]]).add("last_step_depth", depths[argmins[-1]])
    m.add("n_steps", len(argmins))
    m.display = "minimum at " + ", ".join(
        f"step {s}: block {layers[a]} ({_fmt(depths[a], 2)})" for s, a in zip(prof["step"].values, argmins))
    return m


@measure("nesting")
def measure_nesting(ctx, branch="cond", step=None, role="main"):
    """25×25 subject overlap at the transition block: mean within-category / between-category overlap."""
    ds = ctx.ds(role)
    layer = ctx.transition(role)
    steps = ds["step"].values if step is None else [step]
    within, between = [], []
    for s in steps:
        om = analysis.overlap_matrix(ds, layer, s, branch, "fine")
        same = om["category_i"].values[:, None] == om["category_j"].values[None, :]
        off = ~np.eye(om.shape[0], dtype=bool)
        within.append(om.values[same & off].mean())
        between.append(om.values[~same].mean())
    w, b = float(np.mean(within)), float(np.mean(between))
    m = Measurement().add("within", w).add("between", b).add("ratio", w / b).add("layer", layer)
    m.display = f"block {layer}: within-category {_fmt(w)} vs between {_fmt(b)} (×{_fmt(w / b)})"
    return m


# ------------------------------------------------------------------------------ chapter 4: per subject


def _three_blocks(ctx, role, curve):
    """The first, transition and last blocks."""
    first, last = _ends(curve)
    return [first, ctx.transition(role), last]


@measure("rc_over_r")
def measure_rc_over_r(ctx, branch="cond", role="main"):
    """Rc/R for coarse and fine labels at the first, transition and last blocks (bootstrap CIs)."""
    m = Measurement()
    parts = []
    for scheme in ("coarse", "fine"):
        layers = _three_blocks(ctx, role, ctx.curve(role, "Rc_over_R", scheme, branch))
        for k, name in enumerate(("first", "mid", "last")):
            _stat(ctx, m, f"{scheme}_{name}", lambda v, k=k: v[k], role, "Rc_over_R", scheme, branch, layers)
        parts.append(f"{scheme} " + " / ".join(_fmt(m.quantities[f"{scheme}_{n}"], 2) for n in ("first", "mid", "last")))
    m.display = "; ".join(parts) + f" (blocks {', '.join(str(x) for x in layers)})"
    return m


@measure("fine_vs_coarse")
def measure_fine_vs_coarse(ctx, branch="cond", role="main"):
    """ΔR(fine) / ΔR(coarse) at every block (minimum, mean) and at the transition and last blocks."""
    fine, coarse = (ctx.curve(role, "delta_R", scheme, branch) for scheme in ("fine", "coarse"))
    ratio = (fine / coarse).values
    layers = _three_blocks(ctx, role, fine)[1:]
    samples = [ctx.replicates(role, "delta_R", scheme, branch, layers) for scheme in ("fine", "coarse")]
    m = Measurement().add("ratio_min", ratio.min()).add("ratio_mean", ratio.mean())
    for k, name in enumerate(("ratio_mid", "ratio_last")):
        estimate = float((fine / coarse).sel(layer=layers[k]))
        if samples[0] is None:
            m.add(name, estimate)
        else:  # the two schemes' resamples are stratified differently: an unpaired (conservative) interval
            m.add(name, estimate, *_bounds(samples[0][k] / samples[1][k], ctx.level))
    m.display = (f"fine/coarse ΔR ×{_fmt(ratio.min())}–×{_fmt(ratio.max())} over blocks (mean ×{_fmt(ratio.mean())}); "
                 f"transition ×{_fmt_ci(m, 'ratio_mid')}, last ×{_fmt_ci(m, 'ratio_last')}")
    return m


@measure("rc_nats")
def measure_rc_nats(ctx, scheme="fine", branch="cond", role="main"):
    """Rc (nats) at the first and last block."""
    ends = _ends(ctx.curve(role, "Rc", scheme, branch))
    m = Measurement()
    _stat(ctx, m, "first", lambda v: v[0], role, "Rc", scheme, branch, ends)
    _stat(ctx, m, "last", lambda v: v[1], role, "Rc", scheme, branch, ends)
    m.display = f"{scheme} Rc {_fmt_ci(m, 'first')} → {_fmt_ci(m, 'last')} nats"
    return m


# ----------------------------------------------------------------------------- chapter 5: cond vs uncond


@measure("branch_gap")
def measure_branch_gap(ctx, scheme="coarse", role="main"):
    """ΔR(cond) vs ΔR(uncond) at the transition and last blocks (paired bootstrap: same resamples)."""
    if "uncond" not in ctx.ds(role)["branch"].values:
        raise MissingCache(f"{role} cache's uncond branch (captured with guidance off)")
    cond = ctx.curve(role, "delta_R", scheme, "cond")
    uncond = ctx.curve(role, "delta_R", scheme, "uncond")
    layers = _three_blocks(ctx, role, cond)[1:]
    both = np.stack([cond.sel(layer=layers).values, uncond.sel(layer=layers).values])
    reps = [ctx.replicates(role, "delta_R", scheme, b, layers) for b in ("cond", "uncond")]
    m = Measurement()
    for name, function in {
        "cond_last": lambda s: s[0, 1], "uncond_last": lambda s: s[1, 1],
        "gap_last": lambda s: s[1, 1] - s[0, 1], "rel_gap_last": lambda s: abs(s[1, 1] - s[0, 1]) / s[0, 1],
        "gap_mid": lambda s: s[1, 0] - s[0, 0], "rel_gap_mid": lambda s: abs(s[1, 0] - s[0, 0]) / s[0, 0],
    }.items():
        if reps[0] is None:
            m.add(name, function(both))
            continue
        values = np.array([function(np.stack([reps[0][:, b], reps[1][:, b]])) for b in range(reps[0].shape[-1])])
        m.add(name, function(both), *_bounds(values, ctx.level))
    m.add("mid_layer", layers[0])
    q = m.quantities
    m.display = (f"last block: cond {_fmt(q['cond_last'], 4)} vs uncond {_fmt(q['uncond_last'], 4)} nats "
                 f"(|gap| {_fmt(100 * q['rel_gap_last'], 2)}%); block {layers[0]}: uncond − cond = "
                 f"{_fmt_ci(m, 'gap_mid')} nats")
    return m


# ---------------------------------------------------------------------------- chapter 6: dense not sparse


@measure("hoyer")
def measure_hoyer(ctx, branch="cond", role="main"):
    """Hoyer sparsity per block: range and the depth of the densest block."""
    curve = ctx.curve(role, "hoyer", None, branch)
    lo_layer, hi_layer = _layer_at(curve, np.argmin(curve.values)), _layer_at(curve, np.argmax(curve.values))
    m = Measurement()
    _stat(ctx, m, "min", lambda v: v[0], role, "hoyer", None, branch, [lo_layer, hi_layer])
    _stat(ctx, m, "max", lambda v: v[1], role, "hoyer", None, branch, [lo_layer, hi_layer])
    m.add("argmin_depth", _depth_of(curve, lo_layer)).add("argmin_layer", lo_layer)
    m.display = (f"Hoyer {_fmt_ci(m, 'min')} – {_fmt_ci(m, 'max')}; densest at block {lo_layer} "
                 f"(depth {_fmt(m.quantities['argmin_depth'], 2)})")
    return m


# ------------------------------------------------------------------------- chapter 7: beyond isotropic noise


@measure("jb_rejection")
def measure_jb_rejection(ctx, branch="cond", role="main", n_projections=128, alpha=0.01):
    """Jarque–Bera rejection rate on random projections, per block: range vs the nominal ``alpha``."""
    curve = ctx.curve(role, "jb_rejection", None, branch, n_projections=n_projections, alpha=alpha)
    m = Measurement().add("min", curve.min()).add("max", curve.max()).add("alpha", alpha)
    m.display = (f"rejection {_fmt(100 * float(curve.min()))}–{_fmt(100 * float(curve.max()))}% of "
                 f"{n_projections} projections (nominal {_fmt(100 * alpha)}%)")
    return m


# ----------------------------------------------------------------------------------- chapter 8: controls


@measure("permutation")
def measure_permutation(ctx, branch="cond", role="main", schemes=("coarse", "fine")):
    """ΔR against the permuted-label null at every block and step: largest p-value, smallest z-score."""
    ds = ctx.ds(role)
    p_max, z_min = [], []
    for scheme in schemes:
        key = (role, "permutation", scheme, branch, ctx.n_permutations)
        if key not in ctx._memo:
            ctx._memo[key] = analysis.permutation_profile(ds, scheme, n_permutations=ctx.n_permutations,
                                                          seed=ctx.seed, branches=[branch])
        perm = ctx._memo[key]
        p_max.append(float(perm["p_value"].max()))
        z_min.append(float(perm["z_score"].min()))
    m = Measurement().add("max_p", max(p_max)).add("min_z", min(z_min))
    m.add("min_possible_p", 1 / (1 + ctx.n_permutations))
    m.display = (f"max p = {_fmt(max(p_max))} over blocks × steps × {'/'.join(schemes)} labels "
                 f"({ctx.n_permutations} shuffles; smallest possible p {_fmt(1 / (1 + ctx.n_permutations))}); "
                 f"min z = {_fmt(min(z_min))}")
    return m


@measure("centering")
def measure_centering(ctx, scheme="coarse", branch="cond", role="main"):
    """Share of ΔR that survives centring the features (last block and minimum over blocks)."""
    raw = ctx.curve(role, "delta_R", scheme, branch)
    centred = ctx.curve(role, "delta_R", scheme, branch, center=True)
    kept = (centred / raw).values
    m = Measurement().add("kept_last", kept[-1]).add("kept_min", kept.min())
    m.display = f"centred/raw ΔR: last block {_fmt(kept[-1])}, min over blocks {_fmt(kept.min())} ({scheme})"
    return m


@measure("trained_vs_random", roles=("main", "random_init"))
def measure_trained_vs_random(ctx, scheme="fine", branch="cond"):
    """ΔR growth (last/first block) of the trained model vs its random-initialised twin."""
    m = Measurement()
    for role, name in (("main", "trained"), ("random_init", "random")):
        ends = _ends(ctx.curve(role, "delta_R", scheme, branch))
        _stat(ctx, m, f"growth_{name}", lambda v: v[1] / v[0], role, "delta_R", scheme, branch, ends)
        _stat(ctx, m, f"last_{name}", lambda v: v[1], role, "delta_R", scheme, branch, ends)
    m.display = (f"growth ×{_fmt_ci(m, 'growth_trained')} trained vs ×{_fmt_ci(m, 'growth_random')} random-init; "
                 f"last-block ΔR {_fmt(m.quantities['last_trained'])} vs {_fmt(m.quantities['last_random'])} nats")
    return m


# ---------------------------------------------------------------------------------------------- the table


def load_findings(path=None):
    """The findings of ``blog_findings.yaml`` as a list of dicts (validated: every field, a known measure)."""
    with open(path or FINDINGS_PATH, encoding="utf-8") as handle:
        findings = yaml.safe_load(handle)["findings"]
    required = {"id", "chapter", "finding", "claim", "blog_value", "measure", "criterion"}
    for finding in findings:
        missing = required - set(finding)
        if missing:
            raise ValueError(f"findings: {finding.get('id', finding)!r} lacks {sorted(missing)}")
        if finding["measure"] not in MEASURES:
            raise ValueError(f"findings: {finding['id']!r} names unknown measure {finding['measure']!r}")
        criterion_names(finding["criterion"])
    return findings


def blog_reference(path=None):
    """The blog's protocol and landmark blocks (``blog:`` in the findings file), with ``depth(block)``.

    Returns a dict; ``ref["depth"](14)`` is PixArt-α block 14 as a relative depth (14 / 27).
    """
    with open(path or FINDINGS_PATH, encoding="utf-8") as handle:
        ref = dict(yaml.safe_load(handle)["blog"])
    last = ref["num_layers"] - 1
    ref["depth"] = lambda block: np.asarray(block, dtype=float) / last
    return ref


def _row(finding, this_run, holds):
    return {"id": finding["id"], "chapter": finding["chapter"], "finding": finding["finding"],
            "PixArt-α (blog)": str(finding["blog_value"]), "this run": this_run,
            "criterion": finding["criterion"], "holds": holds}


def table(caches, chapter=None, *, n_boot=30, seed=0, n_permutations=20, findings=None, context=None):
    """The scorecard: one row per finding (of ``chapter``, or all), measured on ``caches``.

    ``caches``: mapping role → path/Dataset (``main``, ``sweep`` (list), ``random_init``); a finding whose
    roles are missing is reported as ``"not run"``. ``n_boot`` bootstrap replicates give the CIs,
    ``n_permutations`` shuffles the permuted-label null. Pass ``context`` (a :class:`Context`) to share
    computed profiles between calls.
    """
    findings = load_findings() if findings is None else findings
    if chapter is not None:
        findings = [f for f in findings if f["chapter"] == chapter]
        if not findings:
            raise ValueError(f"chapter: no findings for {chapter!r}")
    ctx = context or Context(caches, n_boot=n_boot, seed=seed, n_permutations=n_permutations)
    results = {}
    rows = []
    for finding in findings:
        spec = MEASURES[finding["measure"]]
        missing = [role for role in spec.roles if not ctx.has(role)]
        if missing:
            rows.append(_row(finding, f"{NOT_RUN} (needs {', '.join(missing)})", NOT_RUN))
            continue
        options = finding.get("options") or {}
        key = (finding["measure"], tuple(sorted((k, str(v)) for k, v in options.items())))
        if key not in results:
            try:
                results[key] = spec.function(ctx, **options)
            except MissingCache as missing_part:
                results[key] = missing_part
        result = results[key]
        if isinstance(result, MissingCache):
            rows.append(_row(finding, f"{NOT_RUN} (needs the {result.args[0]})", NOT_RUN))
            continue
        rows.append(_row(finding, result.display, evaluate_criterion(finding["criterion"], result.quantities)))
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(df):
    """A computed sentence: how many findings hold, do not hold, were not run (and which do not hold)."""
    holds = df["holds"]
    n_true = int((holds.astype(str) == "True").sum())
    n_false = int((holds.astype(str) == "False").sum())
    n_not_run = int((holds.astype(str) == NOT_RUN).sum())
    failed = ", ".join(df.loc[holds.astype(str) == "False", "id"])
    sentence = f"{n_true} of {n_true + n_false} measured findings hold"
    if n_false:
        sentence += f"; {n_false} {'does' if n_false == 1 else 'do'} not ({failed})"
    if n_not_run:
        sentence += f"; {n_not_run} {'was' if n_not_run == 1 else 'were'} not run (a cache it needs was not given)"
    return sentence + "."


# The causal findings' measures live with the interventions; importing them registers them in MEASURES.
from subspacelens.intervene import measures as _intervention_measures  # noqa: E402, F401
