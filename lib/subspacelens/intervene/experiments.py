r"""The chapter's three experiments, batched: one pipeline call per block and condition.

A :class:`Study` holds what they share: the pipeline, the activation cache the bases come from, the image
classifier, the seeds (bases on ``basis_seeds``, generation on the held-out ``eval_seeds``) and the sampling
settings, which must be the cache's so that the recorded activations meet the cached ones at the same steps.

* :func:`ablation_profile` — per block, project out the between-class subspace of each label scheme
  (mean ablation, every step) and a random subspace of the same rank.
* :func:`patching_profile` — per block, patch a source subject's component from a run of the same seed
  into a target subject's run: the subject subspace, the same restricted to the natural span, the whole
  activation (upper bound) and a random subspace (control).
* :func:`steering_curve` — at one block, add the class-mean difference with increasing strength (and a
  random direction of the same norm).

Each returns an ``xarray.Dataset`` of per-image outcomes (``image`` dimension, with ``subject`` and ``seed``
coordinates) plus, per image, the off-manifold score of the edited block's activations at the cached steps
(:class:`~subspacelens.intervene.readouts.OffManifold`); :func:`summarise` turns one into means with
intervals over seeds, :func:`paired_difference` compares two conditions on the same images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from subspacelens import analysis
from subspacelens.capture import TraceBlocks
from subspacelens.intervene.bases import (between_class_basis, block_matrix, mean_difference, natural_span,
                                          restrict_to_span, split_seeds)
from subspacelens.intervene.edits import add_direction, paired_patch, project_out, random_basis
from subspacelens.intervene.hooks import Edit, EditBlocks, as_edit, by_step
from subspacelens.intervene.readouts import OffManifold, outcomes, seed_interval, seed_resamples
from subspacelens.organism.evaluate import generate

OUTCOMES = ("shows_subject", "shows_category", "switched", "off_manifold")


@dataclass
class Study:
    """The shared setting of the intervention experiments (see the module docstring)."""

    pipe: object
    ds: xr.Dataset
    classifier: object
    basis_seeds: list[int]
    eval_seeds: list[int]
    subjects: list[str]
    branch: str = "cond"
    edit_branches: tuple[str, ...] | None = None
    quantile: float = 0.99
    batch_size: int = 200
    _off_manifold: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_cache(cls, pipe, cache, classifier, *, n_basis_seeds: int, n_eval_seeds: int | None = None,
                   subjects: Sequence[str] | None = None, **options) -> Study:
        """Seeds split by :func:`~subspacelens.intervene.bases.split_seeds`; ``n_eval_seeds`` of the held-out
        seeds are generated (all by default); ``subjects`` defaults to every subject of the cache."""
        ds = analysis.open_dataset(cache)
        basis_seeds, held_out = split_seeds(ds, n_basis_seeds)
        if n_eval_seeds is not None:
            if not 1 <= n_eval_seeds <= len(held_out):
                raise ValueError(f"n_eval_seeds: {n_eval_seeds} not in 1..{len(held_out)} (the held-out seeds)")
            held_out = held_out[:n_eval_seeds]
        known = list(dict.fromkeys(np.asarray(ds["subject"].values).astype(str)))
        subjects = known if subjects is None else list(subjects)
        unknown = sorted(set(subjects) - set(known))
        if unknown:
            raise ValueError(f"subjects: {unknown} not in the cache's subjects {known}")
        return cls(pipe, ds, classifier, basis_seeds, held_out, subjects, **options)

    # -- the cache ------------------------------------------------------------------------------------
    @property
    def category_of(self) -> dict[str, str]:
        return analysis.category_of_subject(self.ds)

    @property
    def prompt_of(self) -> dict[str, str]:
        return dict(zip(np.asarray(self.ds["subject"].values).astype(str), np.asarray(self.ds["prompt"].values)))

    @property
    def sampling(self) -> dict:
        """The cache's sampling settings: generations are comparable to its activations step by step."""
        return {"num_inference_steps": int(self.ds.attrs["num_inference_steps"]),
                "guidance_scale": float(self.ds.attrs["guidance_scale"])}

    @property
    def layers(self) -> list[int]:
        return [int(layer) for layer in self.ds["layer"].values]

    @property
    def steps(self) -> list[int]:
        """The cached steps: bases are estimated at each and an edit uses the one nearest its step."""
        return [int(s) for s in self.ds["step"].values]

    def natural(self, layer: int, step: int, scheme: str = "fine") -> tuple[np.ndarray, np.ndarray]:
        """``(Z, labels)`` of block ``layer`` at cached step ``step`` on the basis seeds (:attr:`branch`)."""
        return block_matrix(self.ds, layer, self.basis_seeds, scheme, branch=self.branch, steps=[step])

    def off_manifold(self, layer: int) -> dict[int, OffManifold]:
        """Per cached step, the natural Gaussian of block ``layer`` (basis seeds) with its threshold set on the
        cached activations of the held-out evaluation seeds."""
        if layer not in self._off_manifold:
            models = {}
            for step in (int(s) for s in self.ds["step"].values):
                fit, _ = block_matrix(self.ds, layer, self.basis_seeds, "fine", branch=self.branch, steps=[step])
                held, _ = block_matrix(self.ds, layer, self.eval_seeds, "fine", branch=self.branch, steps=[step])
                models[step] = OffManifold.fit(fit.T, held.T, self.quantile)
            self._off_manifold[layer] = models
        return self._off_manifold[layer]

    # -- generation -----------------------------------------------------------------------------------
    def design(self, subjects: Sequence[str] | None = None) -> pd.DataFrame:
        """The evaluation images: every subject × every evaluation seed (subject-major)."""
        subjects = self.subjects if subjects is None else subjects
        return pd.DataFrame([(s, seed) for s in subjects for seed in self.eval_seeds], columns=["subject", "seed"])

    def run(self, subjects: Sequence[str], seeds: Sequence[int], edits: Mapping[int, Edit] | None = None,
            *, record_layer: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Generate one image per ``(subject, seed)`` under ``edits`` in one batch; with ``record_layer``, also
        the off-manifold score (share of cached steps beyond the natural threshold) of that block's edited
        activations, per image."""
        prompts = [self.prompt_of[s] for s in subjects]
        sampling = self.sampling
        cfg = sampling["guidance_scale"] > 1.0
        steps = self.steps
        trace = TraceBlocks(self.pipe, [record_layer], steps, cfg=cfg) if record_layer is not None else None
        editing = EditBlocks(self.pipe, edits, cfg=cfg, branches=self.edit_branches) if edits else None
        # The trace is entered after the edits: its hook runs second and sees the edited tokens.
        with editing or nullcontext(), trace or nullcontext():
            images = generate(self.pipe, prompts, list(seeds), batch_size=max(len(prompts), 1), **sampling)
        if trace is None:
            return images, None
        models = self.off_manifold(record_layer)
        cache = trace.cache
        scores = np.mean([models[s].score(cache[f"blocks.{record_layer}", s, self.branch].numpy()) for s in steps], axis=0)
        return images, scores

    def readout(self, images: np.ndarray, subjects, seeds, sources=None) -> pd.DataFrame:
        return outcomes(self.classifier.predict(images), subjects, seeds, self.category_of, sources)


def _dataset(frames: dict[tuple, pd.DataFrame], dims: tuple[str, ...], coords: dict) -> xr.Dataset:
    """Per-condition outcome tables (same images in the same order) stacked into a Dataset over ``dims`` + image."""
    first = next(iter(frames.values()))
    shape = tuple(len(coords[d]) for d in dims) + (len(first),)
    data = {}
    for name in OUTCOMES:
        if name not in first:
            continue
        values = np.full(shape, np.nan)
        for key, frame in frames.items():
            values[tuple(list(coords[d]).index(k) for d, k in zip(dims, key))] = frame[name].to_numpy(dtype=float)
        data[name] = ((*dims, "image"), values)
    image_coords = {"subject": ("image", first["subject"].to_numpy()), "seed": ("image", first["seed"].to_numpy())}
    if "source" in first:
        image_coords["source"] = ("image", first["source"].to_numpy())
    return xr.Dataset(data, coords={**{d: list(coords[d]) for d in dims}, **image_coords})


def ablation_profile(study: Study, layers: Sequence[int], schemes: Sequence[str] = ("coarse", "fine"),
                     rank: int = 4, control_seed: int = 0) -> tuple[xr.Dataset, dict]:
    r"""Per block: mean-ablate (:func:`project_out` with the natural mean as centre, every step) the
    between-class subspace of rank ``rank`` of each scheme, and a random subspace of the same rank (fixed per
    block); centres and bases are estimated at every cached step, each step uses the nearest; plus the
    unedited generation (condition ``"none"``, the same at every block). Returns the outcomes over
    ``(condition, layer, image)`` and the images ``{(condition, layer): (N, 3, H, W)}``."""
    design = study.design()
    subjects, seeds = design["subject"].tolist(), design["seed"].tolist()
    conditions = ["none", *schemes, "random"]
    frames, images = {}, {}
    d = study.ds.sizes["feature"]
    for layer in layers:
        natural = {step: {scheme: study.natural(layer, step, scheme) for scheme in schemes} for step in study.steps}
        control = random_basis(d, rank, seed=control_seed + layer)
        for condition in conditions:
            if condition == "none" and images:
                plain_key = ("none", layers[0])
                images[condition, layer], frames[condition, layer] = images[plain_key], frames[plain_key]
                continue
            edits = {} if condition == "none" else {layer: by_step({
                step: as_edit(project_out, center=by_scheme[schemes[0]][0].mean(axis=1),
                              basis=control if condition == "random" else between_class_basis(*by_scheme[condition], rank))
                for step, by_scheme in natural.items()})}
            picture, off = study.run(subjects, seeds, edits, record_layer=layer)
            frame = study.readout(picture, subjects, seeds)
            frame["off_manifold"] = off
            images[condition, layer], frames[condition, layer] = picture, frame
    return _dataset(frames, ("condition", "layer"), {"condition": conditions, "layer": list(layers)}), images


def subject_pairs(category_of: Mapping[str, str], subjects: Sequence[str], n_pairs: int) -> pd.DataFrame:
    """``n_pairs`` within-category and ``n_pairs`` across-category (target, source) pairs of ``subjects``:
    target ``i`` (in order) with the next subject of its category, and with the same position in the next
    category — a fixed, label-balanced design."""
    by_category: dict[str, list[str]] = {}
    for s in subjects:
        by_category.setdefault(category_of[s], []).append(s)
    categories = list(by_category)
    rows = []
    for kind in ("within", "across"):
        for i in range(n_pairs):
            c = categories[i % len(categories)]
            members = by_category[c]
            position = (i // len(categories)) % len(members)
            target = members[position]
            if kind == "within":
                if len(members) < 2:
                    raise ValueError(f"subjects: category {c!r} has one subject; no within-category pair")
                source = members[(position + 1) % len(members)]
            else:
                other = by_category[categories[(i + 1) % len(categories)]]
                source = other[position % len(other)]
            rows.append((target, source, kind))
    return pd.DataFrame(rows, columns=["target", "source", "kind"])


def patching_profile(study: Study, layers: Sequence[int], pairs: pd.DataFrame, rank: int = 4,
                     scheme: str = "fine", energy: float = 0.99, control_seed: int = 0) -> tuple[xr.Dataset, dict]:
    r"""Per block and every step, patch each target's component in a subspace from its source (same seed, in
    the same batch: :func:`paired_patch`). Conditions: ``subspace`` (between-class basis of ``scheme``, rank
    ``rank``), ``in_span`` (that basis restricted to the natural span holding ``energy`` of the variance),
    ``full`` (the whole activation: the upper bound) and ``random`` (rank ``rank``: the control). The
    outcomes of the target images over ``(condition, layer, image)``; ``info`` has, per (block, cached step),
    the rank of ``in_span`` and the dimension of the natural span. Bases are estimated at every cached step,
    each step uses the nearest."""
    targets = [t for t in pairs["target"] for _ in study.eval_seeds]
    sources = [s for s in pairs["source"] for _ in study.eval_seeds]
    seeds = [seed for _ in range(len(pairs)) for seed in study.eval_seeds]
    kinds = [k for k in pairs["kind"] for _ in study.eval_seeds]
    n = len(targets)
    conditions = ["subspace", "in_span", "full", "random"]
    frames, info = {}, {"in_span_rank": {}, "span_dim": {}}
    d = study.ds.sizes["feature"]
    for layer in layers:
        bases = {condition: {} for condition in conditions}
        for step in study.steps:
            Z, labels = study.natural(layer, step, scheme)
            span = natural_span(Z, energy)
            subspace = between_class_basis(Z, labels, rank)
            bases["subspace"][step], bases["in_span"][step] = subspace, restrict_to_span(subspace, span)
            bases["full"][step] = np.eye(d)
            bases["random"][step] = random_basis(d, rank, seed=control_seed + layer)
            info["in_span_rank"][layer, step], info["span_dim"][layer, step] = bases["in_span"][step].shape[1], span.shape[1]
        for condition in conditions:
            edits = {layer: by_step({step: paired_patch(basis, n) for step, basis in bases[condition].items()})}
            picture, off = study.run(targets + sources, seeds + seeds, edits, record_layer=layer)
            frame = study.readout(picture[:n], targets, seeds, sources)
            frame["off_manifold"] = off[:n]
            frames[condition, layer] = frame
    result = _dataset(frames, ("condition", "layer"), {"condition": conditions, "layer": list(layers)})
    return result.assign_coords(kind=("image", kinds)), info


def steering_curve(study: Study, layer: int, pairs: pd.DataFrame, strengths: Sequence[float],
                   control_seed: int = 0) -> tuple[xr.Dataset, dict]:
    r"""At block ``layer`` and every step, add :math:`\alpha(\mu_{\mathrm{source}} - \mu_{\mathrm{target}})`
    to each target's tokens (:func:`add_direction`), and, as the control, a random direction of the same
    norm (fixed per pair), for each strength α; the class means are those of the nearest cached step. Outcomes of the target images over ``(direction, strength, image)`` and the
    images ``{(direction, strength): (N, 3, H, W)}``."""
    targets = [t for t in pairs["target"] for _ in study.eval_seeds]
    sources = [s for s in pairs["source"] for _ in study.eval_seeds]
    seeds = [seed for _ in range(len(pairs)) for seed in study.eval_seeds]
    rng = np.random.default_rng(control_seed + layer)
    unit = {pair: rng.standard_normal(study.ds.sizes["feature"]) for pair in dict.fromkeys(zip(targets, sources))}
    per_row = {"mean_difference": {}, "random": {}}  # kind -> step -> (n, d): one direction per image
    for step in study.steps:
        Z, labels = study.natural(layer, step)
        v = np.stack([mean_difference(Z, labels, t, s) for t, s in zip(targets, sources)])
        u = np.stack([unit[pair] / np.linalg.norm(unit[pair]) for pair in zip(targets, sources)])
        per_row["mean_difference"][step], per_row["random"][step] = v, u * np.linalg.norm(v, axis=1, keepdims=True)
    frames, images = {}, {}
    for kind, rows in per_row.items():
        for strength in strengths:
            edits = {layer: by_step({step: as_edit(add_direction, direction=r, strength=float(strength))
                                     for step, r in rows.items()})}
            picture, off = study.run(targets, seeds, edits, record_layer=layer)
            frame = study.readout(picture, targets, seeds, sources)
            frame["off_manifold"] = off
            frames[kind, strength], images[kind, strength] = frame, picture
    coords = {"direction": list(per_row), "strength": [float(s) for s in strengths]}
    return _dataset(frames, ("direction", "strength"), coords), images


def summarise(result: xr.Dataset, variable: str, *, n_boot: int = 200, level: float = 0.95,
              seed: int = 0, where: np.ndarray | None = None) -> xr.Dataset:
    """``mean``, ``low``, ``high`` of ``variable`` over images, the interval from resampling every subject's
    seeds (:func:`~subspacelens.intervene.readouts.seed_interval`), for every condition; ``where`` selects
    images (e.g. one kind of pair)."""
    if variable not in result:
        raise ValueError(f"variable: {variable!r} not in {sorted(result.data_vars)}")
    da = result[variable] if where is None else result[variable].isel(image=np.flatnonzero(where))
    resamples = seed_resamples(da["subject"].values, n_boot, seed)
    stacked = da.stack(cell=[d for d in da.dims if d != "image"])
    values = np.array([seed_interval(stacked.isel(cell=i).values, resamples, level) for i in range(stacked.sizes["cell"])])
    out = xr.Dataset({name: ("cell", values[:, k]) for k, name in enumerate(("mean", "low", "high"))},
                     coords={"cell": stacked["cell"]})
    return out.unstack("cell")


def paired_difference(result: xr.Dataset, variable: str, a: Mapping, b: Mapping, *, n_boot: int = 200,
                      level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)`` of ``variable`` at selection ``a`` minus at ``b`` (e.g. ``{"condition":
    "random", "layer": 4}``), paired image by image, with the interval from resampling seeds."""
    diff = result[variable].sel(**a).values - result[variable].sel(**b).values
    return seed_interval(diff, seed_resamples(result["subject"].values, n_boot, seed), level)


def save_results(path, attrs: Mapping | None = None, **results: xr.Dataset) -> None:
    """Write experiment outcomes (e.g. ``ablation=..., patching=...``) as groups of one zarr store, replacing it;
    ``attrs`` (JSON-able) go on every group. The scorecard's causal measures read this store."""
    import shutil
    from pathlib import Path

    from subspacelens.paths import resolve

    target = Path(resolve(path))
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for group, result in results.items():
        stored = result.copy()
        stored.attrs.update(attrs or {})
        for name in list(stored.coords):
            if stored[name].dtype == object:
                stored[name] = stored[name].astype(str)
        stored.to_zarr(tmp, group=group, mode="a", zarr_format=2)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def load_results(path, group: str) -> xr.Dataset:
    """One group of a store written by :func:`save_results`, in memory."""
    from subspacelens.paths import resolve

    return xr.open_zarr(resolve(path), group=group, zarr_format=2).load()
