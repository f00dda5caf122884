r"""Each chapter's core profile on several caches (architectures, or a model and its random-init twin).

Different families have different depths (the organism 12 blocks, PixArt-α 28, Flux 57), so profiles are
compared on the relative depth :math:`\ell / (L - 1)` (:func:`subspacelens.analysis.relative_depth`) and
never stacked along ``layer``. Each chapter contributes the profile its finding is about
(:data:`CORE_PROFILES`); :func:`core_profiles` computes all of them for one cache from one pass over its
slices, and :func:`depth_summary` reduces each curve to a few numbers with bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from subspacelens.analysis import open_dataset, profiles


@dataclass(frozen=True)
class CoreProfile:
    """The curve one chapter's finding is about."""

    chapter: str
    metric: str  # a name of subspacelens.analysis.METRICS
    scheme: str | None  # label scheme, None for label-free metrics
    label: str  # axis label


CORE_PROFILES: tuple[CoreProfile, ...] = (
    CoreProfile("rate_reduction_across_layers", "delta_R", "coarse", "ΔR, 5 categories (nats)"),
    CoreProfile("per_subject", "delta_R", "fine", "ΔR, 25 subjects (nats)"),
    CoreProfile("effective_rank", "effective_rank", None, "effective rank"),
    CoreProfile("transition_block", "mean_overlap", "coarse", "mean off-diagonal overlap, categories"),
    CoreProfile("dense_not_sparse", "hoyer", None, "Hoyer sparsity"),
    CoreProfile("beyond_isotropic_noise", "jb_rejection", None, "Jarque–Bera rejection rate"),
)


def _check_choices(name: str, values: Sequence[str], valid: Sequence[str]) -> None:
    unknown = [v for v in values if v not in valid]
    if unknown or not values:
        raise ValueError(f"{name}: {list(values)!r} must be a non-empty selection of {list(valid)}")


def core_profiles(cache, *, chapters: Sequence[str] | None = None, step_index: int | None = -1,
                  branch: str = "cond", eps: float = 0.5, n_boot: int = 0, level: float = 0.95, seed: int = 0,
                  **metric_kwargs) -> dict[str, xr.Dataset]:
    """``{chapter: profile}`` of one cache, each over ``layer`` only (coords ``relative_depth``, and
    ``block_kind`` when the cache records it).

    ``step_index`` picks one of the cache's kept steps by position (``-1``: its last, the cleanest; caches
    of different schedulers keep different timesteps, positions line up); ``None`` averages over the kept
    steps. ``branch`` must be in the cache. The profiles of one label scheme share one bootstrap.
    """
    ds = open_dataset(cache)
    names = [p.chapter for p in CORE_PROFILES]
    chapters = names if chapters is None else list(chapters)
    _check_choices("chapters", chapters, names)
    if branch not in ds["branch"].values:
        raise ValueError(f"branch: {branch!r} not in this cache's branches {ds['branch'].values.tolist()}")
    steps = ds["step"].values if step_index is None else [ds["step"].values[step_index]]
    chosen = [p for p in CORE_PROFILES if p.chapter in chapters]
    out: dict[str, xr.Dataset] = {}
    for scheme in dict.fromkeys(p.scheme for p in chosen):
        group = [p for p in chosen if p.scheme == scheme]
        result = profiles(ds, [p.metric for p in group], scheme, eps=eps, n_boot=n_boot, level=level, seed=seed,
                          steps=steps, branches=[branch], keep_samples=n_boot > 0, **metric_kwargs)
        for p in group:
            prof = result[p.metric].sel(branch=branch).mean("step") if len(steps) > 1 else result[p.metric].sel(
                branch=branch).isel(step=0)
            if "block_kind" in ds.coords:
                prof = prof.assign_coords(block_kind=("layer", ds["block_kind"].values))
            prof.attrs.update(chapter=p.chapter, label=p.label, blocks=int(ds.attrs.get("num_layers_total", 0)))
            out[p.chapter] = prof
    return {p.chapter: out[p.chapter] for p in chosen}  # in the book's order


def depth_summary(by_model: Mapping[str, Mapping[str, xr.Dataset]]) -> pd.DataFrame:
    """One row per (chapter, model): the curve's first and last block, its ratio last/first, and the relative
    depths of its maximum and minimum (``argmax_depth``, ``argmin_depth``: the transition block is a minimum of
    overlap), each with a bootstrap interval when the profiles carry
    replicates (``samples``; the same resamples for every block, so ratios and argmaxes get intervals too).
    """
    rows = []
    for model, chapters in by_model.items():
        for chapter, prof in chapters.items():
            depth = prof["relative_depth"].values
            draws = {"estimate": prof["value"].values[None, :]}
            if "samples" in prof:
                draws["boot"] = prof["samples"].transpose("boot", "layer").values
            stats = {k: _curve_stats(v, depth) for k, v in draws.items()}
            row = {"chapter": chapter, "model": model, "blocks": prof.attrs.get("blocks")}
            for name, values in stats["estimate"].items():
                row[name] = float(values[0])
                if "boot" in stats:
                    tail = (1 - float(prof.attrs.get("level", 0.95))) / 2
                    draws_ = stats["boot"][name][np.isfinite(stats["boot"][name])]
                    low, high = np.quantile(draws_, [tail, 1 - tail]) if draws_.size else (np.nan, np.nan)
                    row[f"{name} CI"] = f"[{low:.3g}, {high:.3g}]" if draws_.size else "n/a"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["chapter", "model"])


def _curve_stats(curves: np.ndarray, depth: np.ndarray) -> dict[str, np.ndarray]:
    """``curves`` (draws, layer) -> first, last, last/first, relative depths of the maximum and minimum, per draw."""
    first, last = curves[:, 0], curves[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(first != 0, last / first, np.nan)
    return {"first": first, "last": last, "last/first": ratio, "argmax_depth": depth[np.argmax(curves, axis=1)],
            "argmin_depth": depth[np.argmin(curves, axis=1)]}
