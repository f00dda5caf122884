"""The organism's pipeline builder: deterministic, config-only, survives a save/load round trip."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import DiffusionPipeline, PixArtAlphaPipeline

from subspacelens.organism.build import OrganismConfig, build_pipeline, prompt_vocabulary
from subspacelens.prompts import load_prompt_set

TINY = OrganismConfig.tiny()
CALL = dict(num_inference_steps=2, guidance_scale=4.5, output_type="latent", use_resolution_binning=False,
            clean_caption=False)


def _latents(pipe, prompt="a lion", seed=0):
    return pipe(prompt, generator=torch.Generator().manual_seed(seed), **CALL).images


@pytest.fixture(scope="module")
def tiny_pipe():
    return build_pipeline(TINY, seed=0)


def test_builder_is_deterministic_under_seed(tiny_pipe):
    same = build_pipeline(TINY, seed=0)
    other = build_pipeline(TINY, seed=1)
    for name in ("transformer", "text_encoder", "vae"):
        a, b, c = (getattr(p, name).state_dict() for p in (tiny_pipe, same, other))
        assert all(torch.equal(a[k], b[k]) for k in a), name
        assert not all(torch.equal(a[k], c[k]) for k in a), name


def test_builder_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_pipeline(TINY, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_tokenizer_covers_every_prompt_and_appends_eos(tiny_pipe):
    tok = tiny_pipe.tokenizer
    unk = tok.convert_tokens_to_ids("[UNK]")
    for name in ("v1", "v2"):
        for prompt in load_prompt_set(name).samples["prompt"].unique():
            ids = tok(prompt).input_ids
            assert unk not in ids, prompt
            assert ids[-1] == tok.eos_token_id == 1
    assert tok("").input_ids == [1]
    assert tok("A Lion").input_ids == tok("a lion").input_ids
    assert tok.pad_token_id == 0
    assert "lion" in prompt_vocabulary()


def test_save_load_round_trip(tiny_pipe, tmp_path):
    tiny_pipe.save_pretrained(tmp_path, safe_serialization=True)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == "PixArtAlphaPipeline"
    assert index["transformer"] == ["diffusers", "PixArtTransformer2DModel"]
    assert list((tmp_path / "transformer").glob("*.safetensors"))
    loaded = DiffusionPipeline.from_pretrained(tmp_path)
    assert isinstance(loaded, PixArtAlphaPipeline)
    assert type(loaded.tokenizer) is type(tiny_pipe.tokenizer)
    assert loaded.tokenizer("a bowl of ramen").input_ids == tiny_pipe.tokenizer("a bowl of ramen").input_ids
    loaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(_latents(loaded), _latents(tiny_pipe))


def test_pipeline_runs_with_cfg_and_decodes(tiny_pipe):
    latents = _latents(tiny_pipe)
    assert latents.shape == (1, TINY.vae_latent_channels, TINY.sample_size, TINY.sample_size)
    image = tiny_pipe("a lion", generator=torch.Generator().manual_seed(0), **(CALL | {"output_type": "np"})).images
    assert image.shape == (1, TINY.image_size, TINY.image_size, 3)


def test_resolution_binning_fails_loudly_for_organism_sizes(tiny_pipe):
    with pytest.raises(ValueError, match="sample size"):
        tiny_pipe("a lion", num_inference_steps=1, output_type="latent")


def test_config_checks_geometry():
    with pytest.raises(ValueError, match="image_size"):
        OrganismConfig(image_size=64)
    assert OrganismConfig.default().num_layers >= 12
