"""``run_capture``: prompts -> hooked pipeline -> activation cache, batch by batch, resumable, shardable.

Only latents are generated (``output_type="latent"``): the VAE never runs during a capture. Each
pipeline call denoises ``batch_size`` prompts at once (``2 * batch_size`` rows with CFG). Every sample
has its own CPU ``torch.Generator`` seeded with its ``seed``, so its starting noise does not depend on
the batch or shard it falls in; shards own whole batches, so a sharded capture computes every batch
exactly as a single run does.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from subspacelens.cache import (
    CacheSpec,
    CacheWriter,
    batch_slices,
    cache_status,
    forget_batches,
    shard_batches,
    store_lock,
    verify_cache,
)
from subspacelens.capture.adapters import ModelAdapter, adapter_for
from subspacelens.capture.hooks import BlockRecord, TraceBlocks, parse_layers, parse_steps
from subspacelens.capture.loading import check_device, load_pipeline, torch_dtype
from subspacelens.capture.procedural import (
    ProceduralInputs,
    check_variance_preserving,
    encode_images,
    procedural_samples,
    token_grid_fraction,
)
from subspacelens.capture.teacher_forcing import RANDOM_INIT, TeacherForcing, load_twin
from subspacelens.capture.vocabulary import check_vocabulary
from subspacelens.paths import resolve
from subspacelens.prompts import load_prompt_set


#: What the denoiser sees: its own sampler's latents, or known images forward-noised (:mod:`.procedural`).
INPUTS = ("generated", "procedural")


@dataclass(frozen=True)
class CaptureConfig:
    """Every parameter of a capture. All but ``shard_index``/``num_shards``/``allow_unknown_tokens`` enter
    the config hash."""

    model: str = "data/models/organism-s0"  # hub id or local pipeline folder
    prompt_set: str = "v2"
    seeds: int | Sequence[int] | None = None  # None: the prompt set's seeds; int n: seeds 0..n-1; list: those
    num_inference_steps: int = 20
    guidance_scale: float = 4.5  # <= 1: guidance off, one branch "cond" (Flux: the distilled-guidance value)
    true_cfg_scale: float = 1.0  # > 1: Flux "true CFG", a separate unconditional call per step (hashed when != 1)
    steps: Sequence[int] | None = (0, 6, 13, 19)  # denoising-step indices kept; None: all
    layers: str | Sequence[int | str] = "all"
    dtype: str = "float32"  # dtype of the cache
    model_dtype: str = "float32"  # dtype the pipeline runs in
    device: str = "cpu"
    batch_size: int = 50  # prompts per pipeline call (and samples per cache chunk)
    height: int | None = None  # None: the model's native resolution
    width: int | None = None
    token_layers: Sequence[int | str] = ()  # full token grids (variable `tokens`) at these layers ...
    token_steps: Sequence[int] = ()  # ... x these steps
    token_dtype: str | None = None  # dtype of the token grids (None: `dtype`); "float16" halves the store
    keep_latents: bool = True  # store the final latents (variable `latents`) to decode images later
    negative_prompt: str = ""
    shard_index: int = 0
    num_shards: int = 1
    allow_unknown_tokens: bool = False  # capture prompts with words the tokenizer does not know (warn, not refuse)
    twin: str | None = None  # teacher forcing: record this twin ("random-init" or a folder) on the model's inputs
    twin_seed: int = 0  # seed of a "random-init" twin
    inputs: str = "generated"  # or "procedural": the denoiser sees each sample's procedural image, forward-noised
    hierarchy: str | None = None  # the procedural images' hierarchy (organism.images.HIERARCHIES), with "procedural"

    def with_(self, **changes: Any) -> CaptureConfig:
        return replace(self, **changes)


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: must be an int >= {low}, got {value!r}")


def select_samples(prompt_set: str, seeds: int | Sequence[int] | None) -> tuple[str, pd.DataFrame]:
    """The prompt set's name and its samples restricted to ``seeds`` (validated), re-indexed 0..N-1."""
    ps = load_prompt_set(prompt_set)
    samples = ps.samples
    available = sorted(samples["seed"].unique())
    if seeds is None:
        chosen = available
    elif isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        _check_int("seeds", seeds, 1)
        if seeds > len(available):
            raise ValueError(f"seeds: prompt set {ps.name!r} has {len(available)} seeds, asked for {seeds}")
        chosen = available[:seeds]
    else:
        chosen = list(seeds)
        if not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(f"seeds: must be a non-empty list of distinct seeds, got {seeds!r}")
        missing = [s for s in chosen if s not in available]
        if missing:
            raise ValueError(f"seeds: {missing} not in prompt set {ps.name!r} (seeds {available[0]}..{available[-1]})")
    samples = samples[samples["seed"].isin(chosen)].reset_index(drop=True)
    return ps.name, samples


def validate(config: CaptureConfig) -> pd.DataFrame:
    """Check every parameter that can be checked without the model; return the samples."""
    _check_int("num_inference_steps", config.num_inference_steps, 1)
    _check_int("batch_size", config.batch_size, 1)
    for name in ("guidance_scale", "true_cfg_scale"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValueError(f"{name}: must be a finite number, got {value!r}")
    parse_steps(config.steps, config.num_inference_steps)
    if config.token_steps:
        parse_steps(config.token_steps, config.num_inference_steps)
        if config.steps is not None and not set(config.token_steps) <= set(config.steps):
            raise ValueError(f"token_steps: {list(config.token_steps)} must be among steps {list(config.steps)}")
    if bool(config.token_layers) != bool(config.token_steps):
        raise ValueError("token_layers, token_steps: give both or neither")
    torch_dtype(config.dtype)
    torch_dtype(config.model_dtype)
    check_device(config.device)
    if not isinstance(config.allow_unknown_tokens, bool):
        raise ValueError(f"allow_unknown_tokens: must be True or False, got {config.allow_unknown_tokens!r}")
    if config.twin is not None and (not isinstance(config.twin, (str, os.PathLike)) or not str(config.twin)):
        raise ValueError(f"twin: must be None, {RANDOM_INIT!r} or a folder with a transformer/, got {config.twin!r}")
    _check_int("twin_seed", config.twin_seed, 0)
    if config.token_dtype is not None:
        torch_dtype(config.token_dtype)
    _check_inputs(config)
    for name in ("height", "width"):
        value = getattr(config, name)
        if value is not None:
            _check_int(name, value, 8)
    _, samples = select_samples(config.prompt_set, config.seeds)
    n_batches = len(batch_slices(len(samples), config.batch_size))
    shard_batches(n_batches, config.shard_index, config.num_shards)
    return samples


def _check_inputs(config: CaptureConfig) -> None:
    from subspacelens.organism.images import HIERARCHIES

    if config.inputs not in INPUTS:
        raise ValueError(f"inputs: must be one of {INPUTS}, got {config.inputs!r}")
    if config.inputs == "procedural" and config.hierarchy not in HIERARCHIES:
        raise ValueError(f"hierarchy: with inputs 'procedural', one of {HIERARCHIES}, got {config.hierarchy!r}")
    if config.inputs == "generated" and config.hierarchy is not None:
        raise ValueError(f"hierarchy: only with inputs 'procedural' (got {config.hierarchy!r} with generated inputs)")


def model_fingerprint(pipe: Any, adapter: ModelAdapter) -> str:
    """A hash of the denoiser's weights (per-tensor name, shape, sum and sum of squares, in float64)."""
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in adapter.denoiser(pipe).state_dict().items():
            x = p.detach().double()
            stats = torch.stack([x.sum(), (x * x).sum()]).cpu().numpy()
            h.update(f"{name}{tuple(p.shape)}{p.dtype}".encode())
            h.update(np.round(stats, 6).tobytes())
    return h.hexdigest()[:16]


def plan(config: CaptureConfig, pipe: Any, twin_pipe: Any | None = None) -> tuple[CacheSpec, dict]:
    """The cache spec (layout, hashed config, attrs) and the pipeline call's fixed keyword arguments.

    ``twin_pipe`` (with ``config.twin``): the :class:`~subspacelens.capture.teacher_forcing.TwinView` whose
    blocks are recorded; its weight fingerprint enters the hash next to the trained model's.
    """
    validate(config)
    prompt_set_name, samples = select_samples(config.prompt_set, config.seeds)
    adapter = adapter_for(pipe)
    n_blocks = len(adapter.blocks(pipe))
    layers = parse_layers(config.layers, n_blocks)
    token_layers = parse_layers(list(config.token_layers), n_blocks) if config.token_layers else []
    steps = parse_steps(config.steps, config.num_inference_steps) or list(range(config.num_inference_steps))
    token_steps = parse_steps(config.token_steps) if config.token_steps else []
    native_h, native_w = adapter.native_size(pipe)
    height, width = config.height or native_h, config.width or native_w
    call_kwargs = adapter.call_kwargs(pipe, height, width)
    if config.true_cfg_scale != 1.0:
        if adapter.cfg_split != "calls":
            raise ValueError(
                f"true_cfg_scale: {config.true_cfg_scale} is for pipelines that run the unconditional branch as a "
                f"separate call (Flux); {type(pipe).__name__} batches it, set guidance_scale instead"
            )
        call_kwargs["true_cfg_scale"] = float(config.true_cfg_scale)
    all_timesteps = adapter.timesteps(pipe, config.num_inference_steps, height, width)
    if len(all_timesteps) != config.num_inference_steps:
        raise ValueError(
            f"num_inference_steps: {type(scheduler).__name__} makes {len(all_timesteps)} denoiser calls for "
            f"{config.num_inference_steps} steps; only one call per step is supported"
        )
    call = dict(
        call_kwargs,
        height=height,
        width=width,
        num_inference_steps=config.num_inference_steps,
        guidance_scale=config.guidance_scale,
        negative_prompt=config.negative_prompt,
        output_type="latent",
    )
    cfg = adapter.guided(call)
    branches = tuple(adapter.cfg_layout) if cfg else ("cond",)
    unhashed = ("layers", "steps", "token_layers", "token_steps", "token_dtype", "seeds", "allow_unknown_tokens",
                "true_cfg_scale",  # hashed via call_kwargs
                "twin", "twin_seed",  # hashed below, only for a teacher-forced capture
                "inputs", "hierarchy")  # hashed below, only for procedural inputs
    hashed = {k: v for k, v in asdict(config).items() if k not in unhashed}
    token_dtype = str(config.token_dtype or config.dtype)
    if token_layers:  # hashed only when tokens are stored, so token-less captures keep their hash
        hashed["token_dtype"] = token_dtype
    hashed.update(
        layers=layers,
        steps=steps,
        token_layers=token_layers,
        token_steps=token_steps,
        seeds=sorted(int(s) for s in samples["seed"].unique()),
        height=height,
        width=width,
        prompts_sha256=hashlib.sha256(samples.to_csv(index=False).encode()).hexdigest()[:16],
        prompt_set=prompt_set_name,
        pipeline=type(pipe).__name__,
        scheduler=type(pipe.scheduler).__name__,
        scheduler_config={k: v for k, v in pipe.scheduler.config.items() if not k.startswith("_")},
        model_fingerprint=model_fingerprint(pipe, adapter),
        call_kwargs=call_kwargs,
        reduction="mean",
    )
    attrs = {
        "model": str(config.model),
        "guidance_scale": float(config.guidance_scale),
        "num_inference_steps": int(config.num_inference_steps),
        "scheduler": type(pipe.scheduler).__name__,
        "prompt_set": prompt_set_name,
        "reduction": "mean",
        "num_layers_total": n_blocks,
        "model_dtype": str(config.model_dtype),
        "device": str(config.device),
        "height": height,
        "width": width,
        "teacher_forced": config.twin is not None,
        "guidance_mode": guidance_mode(pipe, adapter, cfg),
        "true_cfg_scale": float(config.true_cfg_scale),
    }
    if config.twin is not None:  # only then: a free-running capture keeps the hash it always had
        twin = {
            "twin": str(config.twin),
            "twin_seed": int(config.twin_seed),
            "twin_fingerprint": model_fingerprint(twin_pipe, adapter),
        }
        hashed.update(teacher_forced=True, **twin)
        attrs.update(twin)
    samples = samples[["subject", "category", "seed", "prompt"]]
    token_foreground = None
    if config.inputs == "procedural":  # only then: a generated capture keeps the hash it always had
        check_variance_preserving(pipe)
        if height != width:
            raise ValueError(f"inputs: procedural images are square, the model generates {height}x{width}")
        samples, _, masks = procedural_samples(samples, height, config.hierarchy)
        if token_layers:
            token_foreground = token_grid_fraction(masks, adapter.num_tokens(pipe, height, width))
        hashed.update(inputs="procedural", hierarchy=config.hierarchy)
        attrs.update(inputs="procedural", hierarchy=config.hierarchy)
    spec = CacheSpec(
        samples=samples,
        token_foreground=token_foreground,
        layers=layers,
        block_kinds=[adapter.block_kinds(pipe)[i] for i in layers],
        steps=steps,
        timesteps=[all_timesteps[s] for s in steps],
        branches=branches,
        hidden_size=adapter.hidden_size(pipe),
        batch_size=int(config.batch_size),
        dtype=str(config.dtype),
        config=json.loads(json.dumps(hashed, default=str)),
        attrs=attrs,
        token_layers=token_layers,
        token_steps=token_steps,
        token_dtype=token_dtype,
        num_tokens=adapter.num_tokens(pipe, height, width) if token_layers else 0,
        latent_shape=adapter.latent_shape(pipe, height, width) if config.keep_latents else None,
        shard_index=int(config.shard_index),
        num_shards=int(config.num_shards),
    )
    return spec, call


def guidance_mode(pipe: Any, adapter: ModelAdapter, cfg: bool) -> str:
    """How the run guides: ``"cfg"`` (branches in one batch), ``"true-cfg"`` (one call per branch),
    ``"distilled"`` (a guidance embedding, no unconditional branch) or ``"none"``."""
    if cfg:
        return "cfg" if adapter.cfg_split == "batch" else "true-cfg"
    return "distilled" if getattr(adapter.denoiser(pipe).config, "guidance_embeds", False) else "none"


@dataclass
class _BatchBuffer:
    """Preallocated per-batch arrays the hook sink fills; checked complete before the batch is written."""

    spec: CacheSpec
    n: int
    activations: np.ndarray = field(init=False)
    tokens: np.ndarray | None = field(init=False)
    filled: set = field(default_factory=set)

    def __post_init__(self) -> None:
        s = self.spec
        dtype = np.dtype(s.dtype)
        self.activations = np.empty((self.n, len(s.layers), len(s.steps), len(s.branches), s.hidden_size), dtype)
        self.tokens = None
        if s.token_layers:
            shape = (self.n, len(s.token_layers), len(s.token_steps), len(s.branches), s.num_tokens, s.hidden_size)
            self.tokens = np.empty(shape, np.dtype(s.token_dtype))
        self._layer = {v: i for i, v in enumerate(s.layers)}
        self._step = {v: i for i, v in enumerate(s.steps)}
        self._tlayer = {v: i for i, v in enumerate(s.token_layers)}
        self._tstep = {v: i for i, v in enumerate(s.token_steps)}
        self._branch = {v: i for i, v in enumerate(s.branches)}

    def __call__(self, r: BlockRecord) -> None:
        b = self._branch[r.branch]
        value = r.value.numpy()
        if r.reduction == "mean":
            self.activations[:, self._layer[r.layer], self._step[r.step], b] = value
        else:
            self.tokens[:, self._tlayer[r.layer], self._tstep[r.step], b] = value
        self.filled.add((r.reduction, r.layer, r.step, r.branch))

    def check(self) -> None:
        s = self.spec
        want = {("mean", l, t, b) for l in s.layers for t in s.steps for b in s.branches}
        want |= {("tokens", l, t, b) for l in s.token_layers for t in s.token_steps for b in s.branches}
        missing = want - self.filled
        if missing:
            raise RuntimeError(f"capture: {len(missing)} block outputs never arrived, e.g. {sorted(missing)[:3]}")


def run_capture(
    config: CaptureConfig | None = None,
    out: str | os.PathLike | None = None,
    *,
    pipeline: Any | None = None,
    progress: bool = True,
    verify_hashes: bool = False,
    **overrides: Any,
) -> Path:
    """Capture block activations into the zarr store ``out`` and return its path.

    ``config`` fields may also be given as keyword ``overrides``. ``pipeline``: an already-built pipeline
    to use instead of loading ``config.model`` (which is then only recorded). Parameters are validated
    and the model loaded before anything is written. An existing store with the same configuration hash
    is resumed (or returned at once when complete); one with another hash is refused. Batches whose chunk
    files no longer match their recorded sizes (and SHA-256, with ``verify_hashes=True``) are recomputed.
    The store's write lock is held throughout: a second capture to the same ``out`` is refused. Prompts
    with words the model's tokenizer does not know are refused (warned about with
    ``allow_unknown_tokens=True``) before anything is written.
    """
    config = (config or CaptureConfig()).with_(**overrides)
    if out is None:
        raise ValueError("out: give the path of the zarr store to write")
    out = resolve(out)
    validate(config)
    pipe = pipeline if pipeline is not None else load_pipeline(config.model, dtype=config.model_dtype, device=config.device)
    forcing = None
    if config.twin is not None:
        forcing = TeacherForcing(pipe, load_twin(config.twin, pipe, seed=config.twin_seed))
    spec, call = plan(config, pipe, forcing.twin_pipe if forcing else None)
    prompts = [*spec.samples["prompt"], *([config.negative_prompt] if config.negative_prompt else [])]
    check_vocabulary(pipe.tokenizer, prompts, allow_unknown_tokens=config.allow_unknown_tokens)
    procedural = None
    if config.inputs == "procedural":
        procedural = (ProceduralInputs(pipe), config.hierarchy)
    with store_lock(out):
        _fill_store(out, spec, call, pipe, progress=progress, verify_hashes=verify_hashes, forcing=forcing,
                    procedural=procedural)
    return out


def _fill_store(
    out: Path,
    spec: CacheSpec,
    call: dict,
    pipe: Any,
    *,
    progress: bool,
    verify_hashes: bool,
    forcing: TeacherForcing | None = None,
    procedural: tuple[ProceduralInputs, str] | None = None,
) -> None:
    """Create or resume the store, recompute the batches found damaged, generate every missing batch.

    With ``forcing`` the blocks recorded are the twin's, run on the inputs of ``pipe``'s denoiser. With
    ``procedural`` (the hook and the hierarchy) the denoiser's inputs are each sample's
    procedural image, forward-noised, and ``latents`` holds those images' clean latents."""
    writer = CacheWriter.open(out, spec)
    damaged = verify_cache(out, hashes=verify_hashes).damaged
    if damaged:
        forget_batches(out, [damage.batch for damage in damaged])
    status = cache_status(out)
    if status["complete"]:
        return
    todo = writer.todo_batches()
    slices = spec.batches()
    mine = spec.my_batches()
    total = sum(slices[b].stop - slices[b].start for b in mine)
    done = total - sum(slices[b].stop - slices[b].start for b in todo)
    bar = tqdm(total=total, initial=done, unit="img", desc=f"capture {out.name}", disable=not progress)
    adapter = adapter_for(pipe)
    trace = TraceBlocks(
        forcing.twin_pipe if forcing else pipe,
        spec.layers,
        spec.steps,
        adapter=adapter,
        cfg=len(spec.branches) == 2,
        token_layers=spec.token_layers,
        token_steps=spec.token_steps,
        dtype=torch_dtype(spec.dtype),
    )
    try:
        for b in todo:
            region = slices[b]
            rows = spec.samples.iloc[region]
            buffer = _BatchBuffer(spec, len(rows))
            trace.sink = buffer
            generators = [torch.Generator("cpu").manual_seed(int(s)) for s in rows["seed"]]
            start = time.perf_counter()
            clean = None
            if procedural is not None:
                hook, hierarchy = procedural
                _, images, _ = procedural_samples(rows, call["height"], hierarchy)
                clean = encode_images(pipe, images)
                hook.use(clean)
            # The procedural hook first, so that a teacher-forced twin sees the replaced inputs too.
            with procedural[0] if procedural else contextlib.nullcontext(), forcing or contextlib.nullcontext(), trace:
                result = pipe(list(rows["prompt"]), generator=generators, **call)
            seconds = time.perf_counter() - start
            buffer.check()
            _check_timesteps(trace, spec)
            latents = None
            if spec.latent_shape is not None:
                final = clean if clean is not None else adapter.final_latents(
                    pipe, result.images.detach(), call["height"], call["width"])
                latents = final.float().cpu().numpy()
            writer.write_batch(b, buffer.activations, tokens=buffer.tokens, latents=latents, seconds=seconds)
            bar.update(len(rows))
    finally:
        bar.close()
    writer.finalize()


def _check_timesteps(trace: TraceBlocks, spec: CacheSpec) -> None:
    seen = [trace.timesteps.get(s) for s in spec.steps]
    # Flux passes t / 1000 in the model's dtype: bfloat16 keeps about three significant digits.
    if not np.allclose(np.asarray(seen, dtype=float), np.asarray(spec.timesteps, dtype=float), rtol=1e-2):
        raise RuntimeError(f"capture: the pipeline ran timesteps {seen}, the cache expects {spec.timesteps}")


def decode_latents(pipe: Any, latents: Any, *, batch_size: int = 16) -> np.ndarray:
    """Decode cached final latents (``(n, C, y, x)``, array or DataArray) with the pipeline's VAE into
    images in the library's convention, ``(n, 3, H, W)`` float32 in [-1, 1] (see :mod:`subspacelens.viz.images`)."""
    vae = pipe.vae
    shift = getattr(vae.config, "shift_factor", None) or 0.0  # SD3 and Flux VAEs: latents are shifted, then scaled
    values = torch.as_tensor(np.asarray(latents), dtype=vae.dtype, device=vae.device)
    parts = []
    with torch.no_grad():
        for chunk in values.split(batch_size):
            decoded = vae.decode(chunk / vae.config.scaling_factor + shift, return_dict=False)[0]
            parts.append(decoded.float().clamp(-1, 1).cpu().numpy())
    return np.concatenate(parts)
