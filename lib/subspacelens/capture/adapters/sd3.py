"""Stable Diffusion 3 / 3.5 (``SD3Transformer2DModel``, ``StableDiffusion3Pipeline``)."""

from __future__ import annotations

from typing import Any

from subspacelens.capture.adapters.base import TwoStreamAdapter, scheduler_timesteps, shifted_mu, tokenizer_length


class SD3Adapter(TwoStreamAdapter):
    """SD3: MM-DiT ``JointTransformerBlock``s, each with a text and an image stream (``block_kind`` ``joint``).

    A block returns ``(encoder_hidden_states, hidden_states)``, text stream first; the last block is
    ``context_pre_only`` and returns ``(None, hidden_states)``. The image stream is ``hidden_states``,
    ``(batch, (H/p)·(W/p), d)`` in raster order. CFG is batched ``[uncond, cond]``; skip-layer guidance
    (``skip_guidance_layers``) would add a third call per step and is not passed by the capture. The
    scheduler is flow matching: timesteps are ``1000 σ``, shifted by ``mu`` when the scheduler uses
    dynamic shifting (SD3.5), as the pipeline does. No resolution binning.
    """

    family = "SD3"
    block_kind = "joint"

    def matches(self, pipe: Any) -> bool:
        return type(getattr(pipe, "transformer", None)).__name__ == "SD3Transformer2DModel"

    def timesteps(self, pipe: Any, num_inference_steps: int, height: int, width: int) -> list[float]:
        mu = None
        if pipe.scheduler.config.get("use_dynamic_shifting", None):
            mu = shifted_mu(pipe, self.num_tokens(pipe, height, width), max_shift_default=1.16)
        return scheduler_timesteps(pipe, num_inference_steps, mu=mu)

    def call_kwargs(self, pipe: Any, height: int, width: int) -> dict:
        return {"max_sequence_length": tokenizer_length(getattr(pipe, "tokenizer_3", None), 256)}

    def latent_shape(self, pipe: Any, height: int, width: int) -> tuple[int, int, int]:
        f = int(pipe.vae_scale_factor)
        return int(pipe.transformer.config.in_channels), height // f, width // f
