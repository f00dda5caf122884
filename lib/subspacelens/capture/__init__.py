"""Hooked diffusers pipelines: capture block outputs into the activation cache.

* :class:`TraceBlocks` — context manager with forward hooks on chosen blocks (hook points ``blocks.<i>``)
  and a step pre-hook on the denoiser; :func:`run_with_cache` for a one-off call.
* :class:`ModelAdapter` / :class:`PixArtAdapter` — where a model family keeps its blocks, CFG layout,
  hidden size; :func:`adapter_for` picks one for a pipeline.
* :func:`load_pipeline` — ``DiffusionPipeline.from_pretrained`` (safetensors only, never remote code) with
  a clear :class:`ModelNotFoundError` when the weights are not here; :func:`check_device` before loading.
* :class:`TeacherForcing` with :func:`load_twin` — a twin denoiser (``"random-init"`` or a saved one) run on
  exactly the trained denoiser's inputs; hook its blocks through ``forcing.twin_pipe`` (a :class:`TwinView`).
* :func:`check_vocabulary` — prompts with words the tokenizer maps to its unknown token are refused.
* :func:`run_capture` with :class:`CaptureConfig` — the resumable, shardable capture into
  :mod:`subspacelens.cache`; :func:`decode_latents` turns cached latents into images.
"""

from subspacelens.capture.adapters import ADAPTERS, ModelAdapter, PixArtAdapter, adapter_for
from subspacelens.capture.hooks import BlockRecord, TraceBlocks, hook_name, parse_layers, parse_steps, run_with_cache
from subspacelens.capture.loading import ModelNotFoundError, check_device, load_pipeline, torch_dtype
from subspacelens.capture.run import CaptureConfig, decode_latents, model_fingerprint, plan, run_capture, select_samples, validate
from subspacelens.capture.teacher_forcing import RANDOM_INIT, TeacherForcing, TwinView, load_twin
from subspacelens.capture.vocabulary import UnknownTokensWarning, check_vocabulary, unknown_words

__all__ = [
    "ADAPTERS",
    "RANDOM_INIT",
    "BlockRecord",
    "CaptureConfig",
    "ModelAdapter",
    "ModelNotFoundError",
    "PixArtAdapter",
    "TeacherForcing",
    "TraceBlocks",
    "TwinView",
    "UnknownTokensWarning",
    "adapter_for",
    "check_device",
    "check_vocabulary",
    "decode_latents",
    "hook_name",
    "load_pipeline",
    "load_twin",
    "model_fingerprint",
    "parse_layers",
    "parse_steps",
    "plan",
    "run_capture",
    "run_with_cache",
    "select_samples",
    "torch_dtype",
    "unknown_words",
    "validate",
]
