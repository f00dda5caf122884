"""Hooked diffusers pipelines: capture block outputs into the activation cache.

* :class:`TraceBlocks` — context manager with forward hooks on chosen blocks (hook points ``blocks.<i>``)
  and a step pre-hook on the denoiser; :func:`run_with_cache` for a one-off call.
* :class:`ModelAdapter` / :class:`PixArtAdapter` — where a model family keeps its blocks, CFG layout,
  hidden size; :func:`adapter_for` picks one for a pipeline.
* :func:`load_pipeline` — ``DiffusionPipeline.from_pretrained`` (safetensors only, never remote code) with
  a clear :class:`ModelNotFoundError` when the weights are not here.
* :func:`run_capture` with :class:`CaptureConfig` — the resumable, shardable capture into
  :mod:`subspacelens.cache`; :func:`decode_latents` turns cached latents into images;
  :func:`capture_on_cluster` runs the shards as tasks on a dask cluster and merges them.
"""

from subspacelens.capture.adapters import ADAPTERS, ModelAdapter, PixArtAdapter, adapter_for
from subspacelens.capture.hooks import BlockRecord, TraceBlocks, hook_name, parse_layers, parse_steps, run_with_cache
from subspacelens.capture.loading import ModelNotFoundError, load_pipeline, torch_dtype
from subspacelens.capture.run import CaptureConfig, decode_latents, model_fingerprint, plan, run_capture, select_samples, validate
from subspacelens.capture.cluster import capture_on_cluster  # noqa: I001 (needs run)

__all__ = [
    "ADAPTERS",
    "BlockRecord",
    "CaptureConfig",
    "ModelAdapter",
    "ModelNotFoundError",
    "PixArtAdapter",
    "TraceBlocks",
    "adapter_for",
    "capture_on_cluster",
    "decode_latents",
    "hook_name",
    "load_pipeline",
    "model_fingerprint",
    "parse_layers",
    "parse_steps",
    "plan",
    "run_capture",
    "run_with_cache",
    "select_samples",
    "torch_dtype",
    "validate",
]
