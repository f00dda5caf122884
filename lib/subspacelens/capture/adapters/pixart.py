"""PixArt-α and PixArt-Σ (``PixArtTransformer2DModel``)."""

from __future__ import annotations

from typing import Any

from subspacelens.capture.adapters.base import SingleStreamAdapter, tokenizer_length


class PixArtAdapter(SingleStreamAdapter):
    """PixArt-α and PixArt-Σ: both use ``PixArtTransformer2DModel`` with ``transformer_blocks``.

    Blocks see image tokens only (text enters by cross-attention), so a block's output
    ``(batch, (H/p)·(W/p), d)`` *is* the image-token grid, in raster order. With guidance on, the
    pipeline stacks ``[uncond, cond]`` along the batch axis, unconditional half first. Both pipelines bin
    the requested size to an aspect-ratio table chosen by the latent side ``sample_size`` (Σ adds the
    2048-px table for 256).
    """

    family = "PixArt"
    #: Latent sides (``transformer.config.sample_size``) for which the pipelines ship aspect-ratio bins.
    BINNED_SAMPLE_SIZES = {"PixArtAlphaPipeline": {32, 64, 128}, "PixArtSigmaPipeline": {32, 64, 128, 256}}

    def matches(self, pipe: Any) -> bool:
        return type(getattr(pipe, "transformer", None)).__name__ == "PixArtTransformer2DModel"

    def bins(self, pipe: Any) -> dict | None:
        from diffusers.pipelines.pixart_alpha import pipeline_pixart_alpha as alpha
        from diffusers.pipelines.pixart_alpha import pipeline_pixart_sigma as sigma

        side = int(pipe.transformer.config.sample_size)
        if side not in self.BINNED_SAMPLE_SIZES.get(type(pipe).__name__, set()):
            return None
        return {256: sigma.ASPECT_RATIO_2048_BIN, 128: alpha.ASPECT_RATIO_1024_BIN, 64: alpha.ASPECT_RATIO_512_BIN,
                32: alpha.ASPECT_RATIO_256_BIN}[side]

    def call_kwargs(self, pipe: Any, height: int, width: int) -> dict:
        # T5 prompts are padded to max_sequence_length; never beyond what the tokenizer was built for
        # (the organism's tokenizer knows 16 tokens, PixArt's default is 120).
        return {
            "use_resolution_binning": self.bins(pipe) is not None,
            "max_sequence_length": tokenizer_length(pipe.tokenizer, 120),
            "clean_caption": False,
        }
