"""Per-family knowledge of where a diffusion transformer keeps its blocks and how it batches CFG.

A :class:`ModelAdapter` is all that :class:`~subspacelens.capture.TraceBlocks` and
:func:`~subspacelens.capture.run_capture` know about a model family. Adding a family (Flux, SANA, ...)
means writing one adapter and registering it in :data:`ADAPTERS`; the hooks and the cache are unchanged.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

#: CFG branch names in the order the pipeline stacks them along the batch axis.
UNCOND_FIRST = ("uncond", "cond")


@runtime_checkable
class ModelAdapter(Protocol):
    """What the capture needs to know about one model family."""

    #: Branch names in batch order when guidance is on (PixArt: ``("uncond", "cond")``).
    cfg_layout: tuple[str, ...]

    def matches(self, pipe: Any) -> bool:
        """Whether this adapter understands ``pipe`` (a diffusers pipeline)."""

    def denoiser(self, pipe: Any) -> nn.Module:
        """The module called once per denoising step (gets the step pre-hook)."""

    def blocks(self, pipe: Any) -> list[nn.Module]:
        """The hookable blocks, in depth order; hook point ``blocks.<i>`` is ``blocks(pipe)[i]``."""

    def hidden_size(self, pipe: Any) -> int:
        """Width ``d`` of a block's output tokens."""

    def image_tokens(self, output: Any) -> torch.Tensor:
        """A block's forward output -> the image tokens, shape ``(batch, tokens, d)``."""

    def replace_image_tokens(self, output: Any, tokens: torch.Tensor) -> Any:
        """``output`` with its image tokens replaced by ``tokens`` (same shape): how an edit writes back."""

    def timestep(self, args: tuple, kwargs: dict) -> float:
        """The scheduler timestep of one call of :meth:`denoiser`, from its arguments."""

    def native_size(self, pipe: Any) -> tuple[int, int]:
        """``(height, width)`` in pixels the model was trained at."""

    def call_kwargs(self, pipe: Any, height: int, width: int) -> dict:
        """Family-specific keyword arguments of ``pipe(...)`` (e.g. whether to bin aspect ratios)."""

    def latent_shape(self, pipe: Any, height: int, width: int) -> tuple[int, int, int]:
        """``(channels, y, x)`` of the latents a call at ``height`` x ``width`` denoises."""

    def num_tokens(self, pipe: Any, height: int, width: int) -> int:
        """Image tokens per sample a block sees for a call at ``height`` x ``width``."""


class PixArtAdapter:
    """PixArt-α and PixArt-Σ: both use ``PixArtTransformer2DModel`` with ``transformer_blocks``.

    Blocks see image tokens only (text enters by cross-attention), so a block's output
    ``(batch, (H/p)·(W/p), d)`` *is* the image-token grid, in raster order. With guidance on, the
    pipeline stacks ``[uncond, cond]`` along the batch axis, unconditional half first.
    """

    cfg_layout = UNCOND_FIRST
    #: Latent sides (``transformer.config.sample_size``) for which the pipelines ship aspect-ratio bins.
    BINNED_SAMPLE_SIZES = {"PixArtAlphaPipeline": {32, 64, 128}, "PixArtSigmaPipeline": {32, 64, 128, 256}}

    def matches(self, pipe: Any) -> bool:
        transformer = getattr(pipe, "transformer", None)
        return type(transformer).__name__ == "PixArtTransformer2DModel"

    def denoiser(self, pipe: Any) -> nn.Module:
        return pipe.transformer

    def blocks(self, pipe: Any) -> list[nn.Module]:
        return list(pipe.transformer.transformer_blocks)

    def hidden_size(self, pipe: Any) -> int:
        config = pipe.transformer.config
        return int(config.num_attention_heads * config.attention_head_dim)

    def image_tokens(self, output: Any) -> torch.Tensor:
        return output[0] if isinstance(output, tuple) else output

    def replace_image_tokens(self, output: Any, tokens: torch.Tensor) -> Any:
        return (tokens, *output[1:]) if isinstance(output, tuple) else tokens

    def timestep(self, args: tuple, kwargs: dict) -> float:
        t = kwargs.get("timestep")
        if t is None and len(args) > 3:  # forward(hidden_states, encoder_hidden_states, timestep, ...)
            t = args[2]
        if t is None:
            raise ValueError("PixArt transformer called without a timestep")
        t = t.reshape(-1)[0] if torch.is_tensor(t) else t
        return float(t)

    def native_size(self, pipe: Any) -> tuple[int, int]:
        side = int(pipe.transformer.config.sample_size) * int(pipe.vae_scale_factor)
        return side, side

    def call_kwargs(self, pipe: Any, height: int, width: int) -> dict:
        sizes = self.BINNED_SAMPLE_SIZES.get(type(pipe).__name__, set())
        binning = int(pipe.transformer.config.sample_size) in sizes
        # T5 prompts are padded to max_sequence_length; never beyond what the tokenizer was built for
        # (the organism's tokenizer knows 16 tokens, PixArt's default is 120).
        max_len = min(120, int(getattr(pipe.tokenizer, "model_max_length", 120)))
        return {"use_resolution_binning": binning, "max_sequence_length": max_len, "clean_caption": False}

    def generated_size(self, pipe: Any, height: int, width: int) -> tuple[int, int]:
        """The size the pipeline really generates at (aspect-ratio binning may move it)."""
        if not self.call_kwargs(pipe, height, width)["use_resolution_binning"]:
            return height, width
        from diffusers.pipelines.pixart_alpha import pipeline_pixart_alpha as alpha
        from diffusers.pipelines.pixart_alpha import pipeline_pixart_sigma as sigma

        bins = {256: sigma.ASPECT_RATIO_2048_BIN, 128: alpha.ASPECT_RATIO_1024_BIN, 64: alpha.ASPECT_RATIO_512_BIN,
                32: alpha.ASPECT_RATIO_256_BIN}[int(pipe.transformer.config.sample_size)]
        h, w = pipe.image_processor.classify_height_width_bin(height, width, ratios=bins)
        return int(h), int(w)

    def latent_shape(self, pipe: Any, height: int, width: int) -> tuple[int, int, int]:
        h, w = self.generated_size(pipe, height, width)
        f = int(pipe.vae_scale_factor)
        return int(pipe.transformer.config.in_channels), h // f, w // f

    def num_tokens(self, pipe: Any, height: int, width: int) -> int:
        _, y, x = self.latent_shape(pipe, height, width)
        p = int(pipe.transformer.config.patch_size)
        return (y // p) * (x // p)


ADAPTERS: list[ModelAdapter] = [PixArtAdapter()]


def adapter_for(pipe: Any) -> ModelAdapter:
    """The registered adapter that understands ``pipe``; ``ValueError`` naming the pipeline otherwise."""
    for adapter in ADAPTERS:
        if adapter.matches(pipe):
            return adapter
    denoiser = type(getattr(pipe, "transformer", getattr(pipe, "unet", None))).__name__
    raise ValueError(
        f"no ModelAdapter for {type(pipe).__name__} (denoiser {denoiser}); "
        f"known families: {[type(a).__name__ for a in ADAPTERS]}"
    )
