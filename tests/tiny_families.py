"""Tiny offline pipelines of every family the capture supports (random weights, built from configs).

Each builder returns a pipeline of the real diffusers class with a few blocks and d = 32, the organism's
word-level tokenizer (built locally with ``tokenizers``) and tiny text encoders from configs (T5, CLIP,
Gemma2), so a capture of a dozen prompts at 16 px runs in seconds on one CPU thread. ``FAMILIES`` maps a
name to the builder and what a capture of it must produce (block count, kinds, width, guidance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from diffusers import (
    AutoencoderDC,
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    PixArtSigmaPipeline,
    SanaPipeline,
    SanaTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, Gemma2Config, Gemma2Model

from subspacelens.organism import OrganismConfig, build_pipeline
from subspacelens.organism.build import build_text_encoder, build_tokenizer

SIZE = 16  # pixels: 8x8 latents with the 2x VAEs below
SANA_SIZE = 32  # SANA's pipeline wants multiples of 32 (8x8 latents with its 4x AutoencoderDC)
WIDTH = 32  # token width d of every tiny denoiser
TEXT_WIDTH = 32  # T5 / Gemma2 width (= joint_attention_dim / caption_channels)
CLIP_WIDTH = 16


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def _tokenizer():
    return build_tokenizer(OrganismConfig.tiny())


def _t5(tokenizer, seed: int):
    config = OrganismConfig.tiny()
    from dataclasses import replace

    return _seeded(seed, lambda: build_text_encoder(replace(config, text_d_model=TEXT_WIDTH, text_d_ff=64), len(tokenizer)))


def _clip(tokenizer, seed: int, with_projection: bool):
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=CLIP_WIDTH, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=tokenizer.model_max_length, projection_dim=CLIP_WIDTH,
        pad_token_id=0, bos_token_id=0, eos_token_id=1, hidden_act="gelu",
    )
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return _seeded(seed, lambda: cls(config))


def _vae_kl(latent_channels: int, seed: int, shift_factor: float | None):
    return _seeded(seed, lambda: AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
        latent_channels=latent_channels, norm_num_groups=8, sample_size=SIZE, scaling_factor=1.5,
        shift_factor=shift_factor, use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=False,
    ))


def pixart_sigma(seed: int = 0) -> PixArtSigmaPipeline:
    """The tiny organism's components in a ``PixArtSigmaPipeline`` (2 blocks, 16 tokens)."""
    alpha = build_pipeline(OrganismConfig.tiny(), seed=seed)
    pipe = PixArtSigmaPipeline(**alpha.components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sana(seed: int = 0) -> SanaPipeline:
    """3 SANA blocks over 64 image tokens, a 4x ``AutoencoderDC``, a one-layer Gemma2 text encoder.

    The pipeline wants sizes divisible by 32, so it runs at 32 px (8x8 latents) where the others run at 16.
    """
    tokenizer = _tokenizer()
    gemma = Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
        pad_token_id=0, eos_token_id=1, bos_token_id=2, attn_implementation="eager",
    )
    transformer = _seeded(seed + 2, lambda: SanaTransformer2DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=3,
        num_cross_attention_heads=2, cross_attention_head_dim=16, cross_attention_dim=WIDTH,
        caption_channels=TEXT_WIDTH, sample_size=SANA_SIZE // 4, patch_size=1,
    ))
    # AutoencoderDC: the widest stage (8) must be a multiple of the latent channels (4).
    vae = _seeded(seed + 1, lambda: AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2,
        encoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(8, 8, 8), decoder_block_out_channels=(8, 8, 8),
        encoder_qkv_multiscales=((), (), (5,)), decoder_qkv_multiscales=((), (), (5,)),
        encoder_layers_per_block=(1, 1, 1), decoder_layers_per_block=(1, 1, 1), downsample_block_type="conv",
        upsample_block_type="interpolate", decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41,
    ))
    pipe = SanaPipeline(
        tokenizer=tokenizer, text_encoder=_seeded(seed, lambda: Gemma2Model(gemma)), vae=vae,
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd3(seed: int = 0) -> StableDiffusion3Pipeline:
    """3 joint (MM-DiT) blocks over 16 image tokens (patch 2), two CLIPs and a T5."""
    tokenizer = _tokenizer()
    transformer = _seeded(seed + 2, lambda: SD3Transformer2DModel(
        sample_size=SIZE // 2, patch_size=2, in_channels=4, out_channels=4, num_layers=3, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=TEXT_WIDTH, caption_projection_dim=WIDTH,
        pooled_projection_dim=2 * CLIP_WIDTH, pos_embed_max_size=16,
    ))
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_vae_kl(4, seed + 1, shift_factor=0.06),
        text_encoder=_clip(tokenizer, seed, True), tokenizer=tokenizer,
        text_encoder_2=_clip(tokenizer, seed + 3, True), tokenizer_2=tokenizer,
        text_encoder_3=_t5(tokenizer, seed + 4), tokenizer_3=tokenizer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def flux(seed: int = 0, guidance_embeds: bool = True) -> FluxPipeline:
    """1 double-stream + 2 single-stream blocks over 16 packed tokens, guidance-distilled (like FLUX.1-dev)."""
    tokenizer = _tokenizer()
    transformer = _seeded(seed + 2, lambda: FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=TEXT_WIDTH, pooled_projection_dim=CLIP_WIDTH,
        guidance_embeds=guidance_embeds, axes_dims_rope=(4, 4, 8),
    ))
    pipe = FluxPipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        vae=_vae_kl(4, seed + 1, shift_factor=0.06),
        text_encoder=_clip(tokenizer, seed, False), tokenizer=tokenizer,
        text_encoder_2=_t5(tokenizer, seed + 3), tokenizer_2=tokenizer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@dataclass(frozen=True)
class Family:
    """A tiny family and what a capture of it must produce."""

    build: Callable[..., Any]
    num_blocks: int
    block_kinds: tuple[str, ...]
    num_tokens: int
    size: int  # pixels of the test captures (the native size of the tiny SANA, PixArt-Σ, SD3)
    extra: dict  # capture settings for a run with an unconditional branch (true_cfg_scale for Flux)


FAMILIES = {
    "pixart-sigma": Family(pixart_sigma, 2, ("cross",) * 2, 16, SIZE, {}),
    "sana": Family(sana, 3, ("cross",) * 3, 64, SANA_SIZE, {}),
    "sd3": Family(sd3, 3, ("joint",) * 3, 16, SIZE, {}),
    "flux": Family(flux, 3, ("double", "single", "single"), 16, SIZE, {"true_cfg_scale": 4.5}),
}
