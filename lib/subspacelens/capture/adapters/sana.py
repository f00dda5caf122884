"""SANA (``SanaTransformer2DModel``, ``SanaPipeline``)."""

from __future__ import annotations

from typing import Any

from subspacelens.capture.adapters.base import SingleStreamAdapter, tokenizer_length


class SanaAdapter(SingleStreamAdapter):
    """SANA: linear-attention DiT blocks over image tokens, text by cross-attention (like PixArt).

    ``SanaTransformerBlock.forward(hidden_states, attention_mask, encoder_hidden_states,
    encoder_attention_mask, timestep, height, width)`` returns the image-token tensor
    ``(batch, (H/p)·(W/p), d)``; CFG is batched ``[uncond, cond]``. The VAE is an ``AutoencoderDC`` (32×
    down-sampling in the released models, ``pipe.vae_scale_factor``). The pipeline bins the requested size
    to the aspect-ratio table of its ``sample_size`` (16, 32, 64, 128 -> 512 ... 4096 px) unless
    ``use_resolution_binning=False``; any other ``sample_size`` is generated as asked. The timestep a block
    sees is the scheduler's times ``transformer.config.timestep_scale`` (1 in SANA 1.0/1.5); this adapter
    reads it unscaled, so a model with another scale fails the capture's timestep check loudly.
    """

    family = "SANA"

    def matches(self, pipe: Any) -> bool:
        return type(getattr(pipe, "transformer", None)).__name__ == "SanaTransformer2DModel"

    def bins(self, pipe: Any) -> dict | None:
        from diffusers.pipelines.sana import pipeline_sana as sana

        tables = {128: sana.ASPECT_RATIO_4096_BIN, 64: sana.ASPECT_RATIO_2048_BIN, 32: sana.ASPECT_RATIO_1024_BIN,
                  16: sana.ASPECT_RATIO_512_BIN}
        return tables.get(int(pipe.transformer.config.sample_size))

    def call_kwargs(self, pipe: Any, height: int, width: int) -> dict:
        return {
            "use_resolution_binning": self.bins(pipe) is not None,
            "max_sequence_length": tokenizer_length(pipe.tokenizer, 300),
            "clean_caption": False,
        }
