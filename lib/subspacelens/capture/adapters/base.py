"""The adapter protocol and the pieces every family shares.

A :class:`ModelAdapter` is all that :class:`~subspacelens.capture.TraceBlocks` and
:func:`~subspacelens.capture.run_capture` know about a model family: where its blocks are, which part of
a block's output is the image-token stream, how the guidance branches are laid out, how a denoiser call
gives away its timestep, and the model's native size. The hooks and the cache are the same for every
family.

Two branch layouts exist (``cfg_split``):

* ``"batch"``: one denoiser call per step whose batch stacks the branches in ``cfg_layout`` order
  (PixArt, SANA, SD3: ``[uncond, cond]``);
* ``"calls"``: one denoiser call per branch and step, each inside ``transformer.cache_context(name)``
  (Flux "true CFG"); the capture reads the branch name off that context.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

#: Branch names in the order the cache stores them (and the batch order of a ``"batch"`` layout).
UNCOND_FIRST = ("uncond", "cond")
CFG_SPLITS = ("batch", "calls")


@runtime_checkable
class ModelAdapter(Protocol):
    """What the capture needs to know about one model family."""

    #: Branch names when guidance is on, in cache order (and batch order for ``cfg_split == "batch"``).
    cfg_layout: tuple[str, ...]
    #: ``"batch"`` (branches stacked in one call) or ``"calls"`` (one call per branch, named by cache_context).
    cfg_split: str

    def matches(self, pipe: Any) -> bool:
        """Whether this adapter understands ``pipe`` (a diffusers pipeline)."""

    def denoiser(self, pipe: Any) -> nn.Module:
        """The module called once per denoising step and branch call (gets the step pre-hook)."""

    def blocks(self, pipe: Any) -> list[nn.Module]:
        """The hookable blocks, in depth order; hook point ``blocks.<i>`` is ``blocks(pipe)[i]``."""

    def block_kinds(self, pipe: Any) -> list[str]:
        """One word per block of :meth:`blocks` (the cache's ``block_kind`` coord on ``layer``)."""

    def hidden_size(self, pipe: Any) -> int:
        """Width ``d`` of a block's output tokens."""

    def image_tokens(self, output: Any) -> torch.Tensor:
        """A block's forward output -> the image tokens, shape ``(batch, tokens, d)``."""

    def replace_image_tokens(self, output: Any, tokens: torch.Tensor) -> Any:
        """``output`` with its image tokens replaced by ``tokens`` (same shape): how an edit writes back."""

    def timestep(self, args: tuple, kwargs: dict) -> float:
        """The scheduler timestep of one call of :meth:`denoiser`, from its arguments."""

    def guided(self, call: dict) -> bool:
        """Whether a pipeline call with keyword arguments ``call`` runs an unconditional branch."""

    def timesteps(self, pipe: Any, num_inference_steps: int, height: int, width: int) -> list[float]:
        """The scheduler timesteps the pipeline runs for this many steps at this size, in call order."""

    def native_size(self, pipe: Any) -> tuple[int, int]:
        """``(height, width)`` in pixels the model was trained at."""

    def call_kwargs(self, pipe: Any, height: int, width: int) -> dict:
        """Family-specific keyword arguments of ``pipe(...)`` (e.g. whether to bin aspect ratios)."""

    def latent_shape(self, pipe: Any, height: int, width: int) -> tuple[int, int, int]:
        """``(channels, y, x)`` of the VAE latents a call at ``height`` x ``width`` produces."""

    def final_latents(self, pipe: Any, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The pipeline's ``output_type="latent"`` result -> VAE latents ``(n, channels, y, x)``."""

    def num_tokens(self, pipe: Any, height: int, width: int) -> int:
        """Image tokens per sample a block sees for a call at ``height`` x ``width``."""


class BlockOutputError(RuntimeError):
    """A block returned something the family's adapter cannot read image tokens from."""


def describe(output: Any) -> str:
    """A short description of a block output for error messages: types and shapes, never values."""
    if torch.is_tensor(output):
        return f"a tensor of shape {tuple(output.shape)}"
    if isinstance(output, (tuple, list)):
        return f"a {type(output).__name__} of ({', '.join(describe(o) for o in output)})"
    return f"a {type(output).__name__}"


def scheduler_timesteps(pipe: Any, num_inference_steps: int, **set_timesteps_kwargs: Any) -> list[float]:
    """Timesteps of a copy of ``pipe.scheduler`` after ``set_timesteps`` (the pipeline's own is untouched)."""
    scheduler = copy.deepcopy(pipe.scheduler)
    accepted = inspect.signature(scheduler.set_timesteps).parameters
    kwargs = {k: v for k, v in set_timesteps_kwargs.items() if k in accepted}
    if kwargs.get("sigmas") is not None:
        scheduler.set_timesteps(device="cpu", **kwargs)
    else:
        scheduler.set_timesteps(num_inference_steps, device="cpu", **kwargs)
    return [float(t) for t in scheduler.timesteps]


def shifted_mu(pipe: Any, image_seq_len: int, max_shift_default: float) -> float:
    """Flow-matching resolution shift ``mu`` as the SD3/Flux pipelines compute it (``calculate_shift``):
    linear in the image sequence length between ``(base_image_seq_len, base_shift)`` and
    ``(max_image_seq_len, max_shift)``."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    c = pipe.scheduler.config
    return float(
        calculate_shift(
            image_seq_len,
            c.get("base_image_seq_len", 256),
            c.get("max_image_seq_len", 4096),
            c.get("base_shift", 0.5),
            c.get("max_shift", max_shift_default),
        )
    )


def tokenizer_length(tokenizer: Any, default: int) -> int:
    """Prompt padding length: the pipeline's default, never beyond what the tokenizer was built for."""
    return int(min(default, int(getattr(tokenizer, "model_max_length", default))))


class DiTAdapter:
    """Defaults shared by the four families: ``pipe.transformer`` with ``transformer_blocks``, token width
    ``heads · head_dim``, CFG batched ``[uncond, cond]`` whenever ``guidance_scale > 1``, the scheduler's own
    timesteps, latents returned as they are. A family overrides what differs."""

    cfg_layout = UNCOND_FIRST
    cfg_split = "batch"
    block_kind = "cross"  # text enters by cross-attention
    family = "DiT"
    #: Position of ``timestep`` among the positional arguments of the denoiser's forward.
    timestep_position = 2

    def denoiser(self, pipe: Any) -> nn.Module:
        return pipe.transformer

    def blocks(self, pipe: Any) -> list[nn.Module]:
        return list(pipe.transformer.transformer_blocks)

    def block_kinds(self, pipe: Any) -> list[str]:
        return [self.block_kind] * len(self.blocks(pipe))

    def hidden_size(self, pipe: Any) -> int:
        return int(pipe.transformer.config.num_attention_heads * pipe.transformer.config.attention_head_dim)

    def timestep(self, args: tuple, kwargs: dict) -> float:
        t = kwargs.get("timestep")
        if t is None and len(args) > self.timestep_position:
            t = args[self.timestep_position]
        if t is None:
            raise ValueError(f"{self.family} transformer called without a timestep")
        return float(t.reshape(-1)[0]) if torch.is_tensor(t) else float(t)

    def guided(self, call: dict) -> bool:
        return float(call.get("guidance_scale", 1.0)) > 1.0

    def timesteps(self, pipe: Any, num_inference_steps: int, height: int, width: int) -> list[float]:
        return scheduler_timesteps(pipe, num_inference_steps)

    def final_latents(self, pipe: Any, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return latents

    def num_tokens(self, pipe: Any, height: int, width: int) -> int:
        _, y, x = self.latent_shape(pipe, height, width)
        p = int(pipe.transformer.config.patch_size)
        return (y // p) * (x // p)


class SingleStreamAdapter(DiTAdapter):
    """Families whose blocks see only image tokens (PixArt, SANA): a block output is the token tensor
    itself (or a tuple whose first item is); the latent side is ``sample_size · vae_scale_factor``, moved by
    the pipeline's aspect-ratio binning (:meth:`bins`)."""

    def image_tokens(self, output: Any) -> torch.Tensor:
        tokens = output[0] if isinstance(output, tuple) and output else output
        if not torch.is_tensor(tokens):
            raise BlockOutputError(f"{self.family} block output is {describe(output)}, expected a tensor")
        return tokens

    def replace_image_tokens(self, output: Any, tokens: torch.Tensor) -> Any:
        return (tokens, *output[1:]) if isinstance(output, tuple) else tokens

    def native_size(self, pipe: Any) -> tuple[int, int]:
        side = int(pipe.transformer.config.sample_size) * int(pipe.vae_scale_factor)
        return side, side

    def bins(self, pipe: Any) -> dict | None:
        """The aspect-ratio table the pipeline bins sizes to (``None``: generated as asked)."""
        return None

    def generated_size(self, pipe: Any, height: int, width: int) -> tuple[int, int]:
        """The size the pipeline really generates at (aspect-ratio binning may move it)."""
        table = self.bins(pipe)
        if table is None:
            return height, width
        h, w = pipe.image_processor.classify_height_width_bin(height, width, ratios=table)
        return int(h), int(w)

    def latent_shape(self, pipe: Any, height: int, width: int) -> tuple[int, int, int]:
        h, w = self.generated_size(pipe, height, width)
        f = int(pipe.vae_scale_factor)
        return int(pipe.transformer.config.in_channels), h // f, w // f


class TwoStreamAdapter(DiTAdapter):
    """MM-DiT families (SD3, Flux): a block returns ``(encoder_hidden_states, hidden_states)``, text stream
    first; the image stream is the second. Native size ``default_sample_size · vae_scale_factor``."""

    timestep_position = 3  # forward(hidden_states, encoder_hidden_states, pooled_projections, timestep, ...)

    def image_tokens(self, output: Any) -> torch.Tensor:
        if not (isinstance(output, tuple) and len(output) == 2 and torch.is_tensor(output[1])):
            raise BlockOutputError(
                f"{self.family} block output is {describe(output)}, expected (encoder_hidden_states, hidden_states)"
            )
        return output[1]

    def replace_image_tokens(self, output: Any, tokens: torch.Tensor) -> Any:
        return (output[0], tokens)

    def native_size(self, pipe: Any) -> tuple[int, int]:
        side = int(pipe.default_sample_size) * int(pipe.vae_scale_factor)
        return side, side
