"""Build the model organism: a PixArt-α-architecture pipeline, randomly initialised, from configs only.

Real PixArt-α weights cannot be downloaded here, so the default book studies a small model with the
*same diffusers classes* (``PixArtTransformer2DModel`` with adaLN-single, ``PixArtAlphaPipeline``, a
T5 encoder, an ``AutoencoderKL``, PixArt-α's DPM-Solver++ scheduler). Everything a capture hook
touches (``transformer.transformer_blocks[i]``, the CFG batch layout, the scheduler's timesteps) is
therefore laid out exactly as in the real model; only the sizes differ.

Two deliberate departures from PixArt-α, both forced by the size:

* ``out_channels == in_channels``: PixArt-α predicts a learned variance in a second half of the output
  channels that ``PixArtAlphaPipeline`` discards (it keeps ``noise_pred.chunk(2, dim=1)[0]`` when
  ``out_channels // 2 == in_channels``). The organism is trained on epsilon only, so it has no such half.
* ``sample_size`` (the latent side) is not one of 32/64/128: the pipeline's resolution binning only
  knows those, so it raises ``ValueError("Invalid sample size")`` unless called with
  ``use_resolution_binning=False`` — a loud failure instead of a silent resize to 256 px.

The tokenizer is a word-level ``tokenizers`` model over every word of the prompt sets, wrapped as a
``transformers`` fast tokenizer so that ``save_pretrained``/``DiffusionPipeline.from_pretrained`` round-trip it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

from subspacelens.prompts import load_prompt_set

PAD, EOS, UNK = "<pad>", "</s>", "[UNK]"
SPECIAL_TOKENS = (PAD, EOS, UNK)  # ids 0, 1, 2: T5's pad_token_id=0, eos_token_id=1
VOCAB_PROMPT_SETS = ("v1", "v2")

# PixArt-α's scheduler_config.json (PixArt-alpha/PixArt-XL-2-512x512), written out because it cannot be fetched.
PIXART_ALPHA_SCHEDULER = {
    "algorithm_type": "dpmsolver++",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "solver_order": 2,
    "solver_type": "midpoint",
    "steps_offset": 0,
    "thresholding": False,
    "timestep_spacing": "linspace",
    "use_karras_sigmas": False,
}


def _split(text: str) -> list[str]:
    """The tokenizer's own normalise + pre-tokenise, so the vocabulary matches what it will see."""
    return [piece for piece, _ in _pre_tokenizer().pre_tokenize_str(_normalizer().normalize_str(text))]


def _normalizer() -> normalizers.Normalizer:
    return normalizers.Lowercase()


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    # Whitespace splits on \w+|[^\w\s]+, i.e. on spaces and punctuation alike.
    return pre_tokenizers.Whitespace()


def prompt_vocabulary(prompt_sets: tuple[str, ...] = VOCAB_PROMPT_SETS) -> tuple[str, ...]:
    """Every word of the given prompt sets, sorted (so the ids do not depend on file order)."""
    words: set[str] = set()
    for name in prompt_sets:
        for prompt in load_prompt_set(name).samples["prompt"].unique():
            words.update(_split(prompt))
    return tuple(sorted(words))


@dataclass(frozen=True)
class OrganismConfig:
    """All sizes of the organism. ``default()`` is the book's model, ``tiny()`` the one tests build."""

    # transformer (PixArtTransformer2DModel); hidden size = heads * head_dim
    num_layers: int = 12
    num_attention_heads: int = 4
    attention_head_dim: int = 16
    patch_size: int = 2
    sample_size: int = 16  # latent side
    # text encoder (T5EncoderModel), frozen at its random initialisation
    text_d_model: int = 64
    text_num_layers: int = 2
    text_num_heads: int = 4
    text_d_ff: int = 128
    max_length: int = 16  # tokens the organism's prompts are padded to in training (prompts are <= 6 tokens)
    # VAE (AutoencoderKL)
    vae_block_out_channels: tuple[int, ...] = (16, 32)
    vae_latent_channels: int = 4
    vae_norm_num_groups: int = 8
    # data
    image_size: int = 32
    vocabulary: tuple[str, ...] = field(default_factory=prompt_vocabulary)

    def __post_init__(self) -> None:
        factor = 2 ** (len(self.vae_block_out_channels) - 1)
        if self.sample_size * factor != self.image_size:
            raise ValueError(
                f"image_size={self.image_size} must equal sample_size * 2**(len(vae_block_out_channels) - 1)"
                f" = {self.sample_size * factor}"
            )
        if self.sample_size % self.patch_size:
            raise ValueError(f"patch_size={self.patch_size} must divide sample_size={self.sample_size}")

    @property
    def hidden_size(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def num_tokens(self) -> int:
        """Image tokens per sample seen by every transformer block."""
        return (self.sample_size // self.patch_size) ** 2

    @classmethod
    def default(cls) -> OrganismConfig:
        return cls()

    @classmethod
    def deep(cls) -> OrganismConfig:
        """PixArt-α's depth, 28 blocks (block i is PixArt-α's block i), at the default width (for ``TrainConfig.nested()``)."""
        return cls(num_layers=28)

    @classmethod
    def tiny(cls) -> OrganismConfig:
        """A seconds-fast variant for tests: 2 blocks, hidden 32, 16 px images, 8×8 latents."""
        return cls(
            num_layers=2,
            num_attention_heads=2,
            attention_head_dim=16,
            sample_size=8,
            text_d_model=16,
            text_num_layers=1,
            text_num_heads=2,
            text_d_ff=32,
            vae_block_out_channels=(8, 16),
            image_size=16,
        )

    def to_dict(self) -> dict:
        return asdict(self) | {"vocabulary": list(self.vocabulary), "vae_block_out_channels": list(self.vae_block_out_channels)}

    @classmethod
    def from_dict(cls, d: dict) -> OrganismConfig:
        """Inverse of ``to_dict`` (a training log's ``organism_config``)."""
        return cls(**{**d, "vocabulary": tuple(d["vocabulary"]),
                      "vae_block_out_channels": tuple(d["vae_block_out_channels"])})


def build_tokenizer(config: OrganismConfig) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: lower-cased, split on whitespace and punctuation, ``</s>`` appended like T5's."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + tuple(config.vocabulary))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = _pre_tokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, vocab[EOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=config.max_length,
        padding_side="right",
    )


def build_text_encoder(config: OrganismConfig, vocab_size: int) -> T5EncoderModel:
    """A small T5 encoder; dropout 0 so that the frozen encoder is a deterministic function of the prompt."""
    t5 = T5Config(
        vocab_size=vocab_size,
        d_model=config.text_d_model,
        d_kv=config.text_d_model // config.text_num_heads,
        d_ff=config.text_d_ff,
        num_layers=config.text_num_layers,
        num_heads=config.text_num_heads,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        is_encoder_decoder=False,
    )
    return T5EncoderModel(t5).eval()


def build_vae(config: OrganismConfig) -> AutoencoderKL:
    n = len(config.vae_block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(config.vae_block_out_channels),
        layers_per_block=1,
        latent_channels=config.vae_latent_channels,
        norm_num_groups=config.vae_norm_num_groups,
        sample_size=config.image_size,
        scaling_factor=1.0,  # set to 1/std of the latents once the VAE is trained
        force_upcast=False,
        mid_block_add_attention=False,  # 16x16 self-attention would triple the VAE's cost for no visible gain
    ).eval()


def build_transformer(config: OrganismConfig) -> PixArtTransformer2DModel:
    return PixArtTransformer2DModel(
        num_attention_heads=config.num_attention_heads,
        attention_head_dim=config.attention_head_dim,
        in_channels=config.vae_latent_channels,
        out_channels=config.vae_latent_channels,
        num_layers=config.num_layers,
        cross_attention_dim=config.hidden_size,
        sample_size=config.sample_size,
        patch_size=config.patch_size,
        norm_type="ada_norm_single",
        use_additional_conditions=False,
        caption_channels=config.text_d_model,
    ).eval()


def build_scheduler() -> DPMSolverMultistepScheduler:
    return DPMSolverMultistepScheduler(**PIXART_ALPHA_SCHEDULER)


def build_pipeline(config: OrganismConfig | None = None, seed: int = 0) -> PixArtAlphaPipeline:
    """A randomly initialised organism pipeline; bit-identical for the same ``(config, seed)``.

    Each component is initialised under its own ``torch.manual_seed(seed + k)`` so that changing one
    component's size does not reshuffle the others. The global RNG state is restored afterwards.
    Call it as ``pipe(prompt, use_resolution_binning=False, ...)`` (see the module docstring).
    """
    config = config or OrganismConfig.default()
    state = torch.random.get_rng_state()
    try:
        tokenizer = build_tokenizer(config)
        torch.manual_seed(seed)
        text_encoder = build_text_encoder(config, vocab_size=len(tokenizer))
        torch.manual_seed(seed + 1)
        vae = build_vae(config)
        torch.manual_seed(seed + 2)
        transformer = build_transformer(config)
    finally:
        torch.random.set_rng_state(state)
    pipe = PixArtAlphaPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=build_scheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
