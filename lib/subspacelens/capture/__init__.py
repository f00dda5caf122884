"""Hooked diffusers pipelines: capture block outputs into the activation cache.

* :class:`TraceBlocks` — context manager with forward hooks on chosen blocks (hook points ``blocks.<i>``)
  and a step pre-hook on the denoiser; :func:`run_with_cache` for a one-off call.
* :class:`ModelAdapter` and one adapter per family (:class:`PixArtAdapter` for PixArt-α/Σ,
  :class:`SanaAdapter`, :class:`SD3Adapter`, :class:`FluxAdapter`) — where a family keeps its blocks, its
  branch layout, hidden size; :func:`adapter_for` picks one for a pipeline.
* :func:`random_init_twin` — the same pipeline with its denoiser re-initialised from its config (the control).
* :func:`load_pipeline` — ``DiffusionPipeline.from_pretrained`` (safetensors only, never remote code) with
  a clear :class:`ModelNotFoundError` when the weights are not here; :func:`check_device` before loading.
* :class:`TeacherForcing` with :func:`load_twin` — a twin denoiser (``"random-init"`` or a saved one) run on
  exactly the trained denoiser's inputs; hook its blocks through ``forcing.twin_pipe`` (a :class:`TwinView`).
* :class:`ProceduralInputs` — the denoiser's input replaced by each sample's known procedural image,
  forward-noised to the call's timestep (``run_capture(..., inputs="procedural")``: exact masks and nuisances).
* :func:`check_vocabulary` — prompts with words the tokenizer maps to its unknown token are refused.
* :func:`run_capture` with :class:`CaptureConfig` — the resumable, shardable capture into
  :mod:`subspacelens.cache`; :func:`decode_latents` turns cached latents into images;
  :func:`capture_on_cluster` runs the shards as tasks on a dask cluster and merges them.
"""

from subspacelens.capture.adapters import (
    ADAPTERS,
    BlockOutputError,
    FluxAdapter,
    ModelAdapter,
    PixArtAdapter,
    SanaAdapter,
    SD3Adapter,
    adapter_for,
)
from subspacelens.capture.hooks import BlockRecord, TraceBlocks, hook_name, parse_layers, parse_steps, run_with_cache
from subspacelens.capture.loading import ModelNotFoundError, check_device, load_pipeline, torch_dtype
from subspacelens.capture.run import CaptureConfig, decode_latents, model_fingerprint, plan, run_capture, select_samples, validate
from subspacelens.capture.procedural import ProceduralInputs
from subspacelens.capture.teacher_forcing import RANDOM_INIT, TeacherForcing, TwinView, load_twin
from subspacelens.capture.twin import random_init_twin
from subspacelens.capture.vocabulary import UnknownTokensWarning, check_vocabulary, unknown_words
from subspacelens.capture.cluster import capture_on_cluster  # noqa: I001 (imports run)

__all__ = [
    "ADAPTERS",
    "BlockOutputError",
    "RANDOM_INIT",
    "BlockRecord",
    "CaptureConfig",
    "FluxAdapter",
    "ModelAdapter",
    "ModelNotFoundError",
    "PixArtAdapter",
    "ProceduralInputs",
    "TeacherForcing",
    "SD3Adapter",
    "SanaAdapter",
    "TraceBlocks",
    "TwinView",
    "UnknownTokensWarning",
    "adapter_for",
    "check_device",
    "check_vocabulary",
    "capture_on_cluster",
    "decode_latents",
    "hook_name",
    "load_pipeline",
    "load_twin",
    "model_fingerprint",
    "parse_layers",
    "parse_steps",
    "plan",
    "random_init_twin",
    "run_capture",
    "run_with_cache",
    "select_samples",
    "torch_dtype",
    "unknown_words",
    "validate",
]
