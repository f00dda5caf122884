"""Flux.1 (``FluxTransformer2DModel``, ``FluxPipeline``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from subspacelens.capture.adapters.base import TwoStreamAdapter, scheduler_timesteps, shifted_mu, tokenizer_length


class FluxAdapter(TwoStreamAdapter):
    """Flux: 19 double-stream (MM-DiT) blocks, then 38 single-stream blocks, in one depth-ordered list.

    Hook point ``blocks.<i>`` is ``transformer_blocks[i]`` for ``i < num_layers`` and
    ``single_transformer_blocks[i - num_layers]`` after (``block_kind`` ``"double"`` / ``"single"``). In
    diffusers 0.42 both kinds return ``(encoder_hidden_states, hidden_states)``; ``hidden_states`` is the
    image stream ``(batch, (y/2)·(x/2), d)`` over the 2×2-packed latents.

    Guidance: FLUX.1-dev is guidance-distilled (``guidance_scale`` feeds a guidance embedding; one call
    per step, branch ``cond`` only). "True CFG" (``true_cfg_scale > 1`` with a negative prompt) runs a
    *second* call per step inside ``transformer.cache_context("uncond")``, after the ``"cond"`` one:
    ``cfg_split = "calls"``. The transformer gets ``timestep / 1000``; this adapter reports scheduler
    units. Latents come back packed ``(batch, tokens, 4·C)`` and are unpacked to ``(C, y, x)``.
    """

    family = "Flux"
    cfg_split = "calls"

    def matches(self, pipe: Any) -> bool:
        return type(getattr(pipe, "transformer", None)).__name__ == "FluxTransformer2DModel"

    def blocks(self, pipe: Any) -> list[nn.Module]:
        return [*pipe.transformer.transformer_blocks, *pipe.transformer.single_transformer_blocks]

    def block_kinds(self, pipe: Any) -> list[str]:
        t = pipe.transformer
        return ["double"] * len(t.transformer_blocks) + ["single"] * len(t.single_transformer_blocks)

    def timestep(self, args: tuple, kwargs: dict) -> float:
        return 1000.0 * super().timestep(args, kwargs)

    def guided(self, call: dict) -> bool:
        return float(call.get("true_cfg_scale", 1.0)) > 1.0 and call.get("negative_prompt") is not None

    def timesteps(self, pipe: Any, num_inference_steps: int, height: int, width: int) -> list[float]:
        use_flow_sigmas = pipe.scheduler.config.get("use_flow_sigmas", False)
        sigmas = None if use_flow_sigmas else np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
        mu = shifted_mu(pipe, self.num_tokens(pipe, height, width), max_shift_default=1.15)
        return scheduler_timesteps(pipe, num_inference_steps, sigmas=sigmas, mu=mu)

    def call_kwargs(self, pipe: Any, height: int, width: int) -> dict:
        return {"max_sequence_length": tokenizer_length(getattr(pipe, "tokenizer_2", None), 512)}

    def latent_shape(self, pipe: Any, height: int, width: int) -> tuple[int, int, int]:
        f = int(pipe.vae_scale_factor)
        side = [2 * (int(pixels) // (f * 2)) for pixels in (height, width)]  # packing needs even latent sides
        return int(pipe.transformer.config.in_channels) // 4, side[0], side[1]

    def final_latents(self, pipe: Any, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)

    def num_tokens(self, pipe: Any, height: int, width: int) -> int:
        _, y, x = self.latent_shape(pipe, height, width)
        return (y // 2) * (x // 2)
