"""Teacher forcing (`subspacelens.capture.teacher_forcing`): the twin sees the trained model's inputs, the
generation is unchanged, nothing stays hooked, identical weights reproduce the trained cache, bad twins fail."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from subspacelens.cache import open_cache
from subspacelens.capture import PixArtAdapter, TeacherForcing, TraceBlocks, load_twin, model_fingerprint, run_capture

PROMPTS = ["a lion", "sushi"]


def _generate(pipe, steps=3):
    generators = [torch.Generator().manual_seed(i) for i in range(len(PROMPTS))]
    return pipe(PROMPTS, num_inference_steps=steps, guidance_scale=4.5, generator=generators, output_type="latent",
                **PixArtAdapter().call_kwargs(pipe, 16, 16)).images


def _hook_count(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


@pytest.fixture(scope="module")
def random_twin(tiny_pipe):
    return load_twin("random-init", tiny_pipe, seed=7)


@pytest.fixture(scope="module")
def same_weights_folder(tiny_pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("twin") / "same"
    tiny_pipe.transformer.save_pretrained(folder / "transformer")
    return folder


def _record_calls(module, calls):
    def hook(_module, args, kwargs):
        names = ("hidden_states", "encoder_hidden_states", "timestep")  # PixArt's positional order
        calls.append({k: v.clone() if torch.is_tensor(v) else v for k, v in {**dict(zip(names, args)), **kwargs}.items()})
    return module.register_forward_pre_hook(hook, with_kwargs=True)


def test_the_twin_sees_every_input_of_every_call_and_the_generation_is_unchanged(tiny_pipe, random_twin):
    plain = _generate(tiny_pipe)
    trained_calls, twin_calls = [], []
    handles = [_record_calls(tiny_pipe.transformer, trained_calls), _record_calls(random_twin, twin_calls)]
    try:
        with TeacherForcing(tiny_pipe, random_twin) as forcing, \
                TraceBlocks(tiny_pipe, [0], None) as trained, TraceBlocks(forcing.twin_pipe, [0], None) as twin:
            forced = _generate(tiny_pipe)
    finally:
        for handle in handles:
            handle.remove()
    assert torch.equal(plain, forced)  # bit-identical images
    assert len(trained_calls) == len(twin_calls) == 3
    for a, b in zip(trained_calls, twin_calls):
        assert a.keys() == b.keys()
        for key in ("hidden_states", "timestep", "encoder_hidden_states", "encoder_attention_mask"):
            assert torch.equal(a[key], b[key]), key
        assert a["added_cond_kwargs"] == b["added_cond_kwargs"]
    assert trained.timesteps == twin.timesteps
    key = ("blocks.0", 2, "cond")
    assert not torch.allclose(trained.cache[key], twin.cache[key])  # other weights, other block outputs


def test_hooks_are_removed_on_exit_and_when_generation_raises(tiny_pipe, random_twin):
    before = _hook_count(tiny_pipe.transformer), _hook_count(random_twin)
    with TeacherForcing(tiny_pipe, random_twin):
        assert _hook_count(tiny_pipe.transformer) == before[0] + 1
    assert (_hook_count(tiny_pipe.transformer), _hook_count(random_twin)) == before

    def explode(*_):
        raise RuntimeError("boom")

    handle = random_twin.transformer_blocks[0].register_forward_hook(explode)
    try:
        with pytest.raises(RuntimeError, match="boom"), TeacherForcing(tiny_pipe, random_twin) as forcing, \
                TraceBlocks(forcing.twin_pipe, [1], [0]):
            _generate(tiny_pipe)
    finally:
        handle.remove()
    assert (_hook_count(tiny_pipe.transformer), _hook_count(random_twin)) == before


def test_random_init_is_seeded_and_leaves_the_global_rng_alone(tiny_pipe, random_twin):
    state = torch.random.get_rng_state()
    again = load_twin("random-init", tiny_pipe, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b in zip(again.state_dict().values(), random_twin.state_dict().values()):
        assert torch.equal(a, b)
    other = load_twin("random-init", tiny_pipe, seed=8)
    assert not torch.equal(other.pos_embed.proj.weight, random_twin.pos_embed.proj.weight)


def test_a_twin_with_the_same_weights_reproduces_the_trained_cache(tiny_pipe, tiny_config, same_weights_folder, tmp_path):
    config = tiny_config.with_(seeds=1)
    plain = open_cache(run_capture(config, tmp_path / "plain.zarr", pipeline=tiny_pipe, progress=False))
    forced = open_cache(run_capture(config, tmp_path / "forced.zarr", pipeline=tiny_pipe, progress=False,
                                    twin=str(same_weights_folder)))
    np.testing.assert_array_equal(forced.activations.values, plain.activations.values)
    np.testing.assert_array_equal(forced.latents.values, plain.latents.values)
    assert forced.attrs["teacher_forced"] is True and plain.attrs["teacher_forced"] is False
    assert forced.attrs["twin"] == str(same_weights_folder)
    assert forced.attrs["twin_fingerprint"] == model_fingerprint(tiny_pipe, PixArtAdapter())
    assert forced.attrs["config_hash"] != plain.attrs["config_hash"]

    random = open_cache(run_capture(config, tmp_path / "random.zarr", pipeline=tiny_pipe, progress=False,
                                    twin="random-init", twin_seed=3))
    np.testing.assert_array_equal(random.latents.values, plain.latents.values)  # the trained model drives
    assert not np.allclose(random.activations.values, plain.activations.values)
    assert random.attrs["twin_fingerprint"] != forced.attrs["twin_fingerprint"]
    assert random.attrs["config_hash"] != forced.attrs["config_hash"]


def test_bad_twins_are_refused_naming_twin(tiny_pipe, tiny_config, tmp_path):
    from subspacelens.organism import OrganismConfig
    from subspacelens.organism.build import build_transformer

    with pytest.raises(ValueError, match=r"^twin: .*no such folder"):
        load_twin(tmp_path / "nowhere", tiny_pipe)
    tiny_pipe.vae.save_pretrained(tmp_path / "vae" / "transformer")
    with pytest.raises(ValueError, match=r"^twin: .* holds a AutoencoderKL, the trained denoiser is a PixArtTransformer2DModel"):
        load_twin(tmp_path / "vae", tiny_pipe)
    narrow = build_transformer(dataclasses.replace(OrganismConfig.tiny(), attention_head_dim=8))
    narrow.save_pretrained(tmp_path / "narrow" / "transformer")
    with pytest.raises(ValueError, match=r"^twin: .* has 2 blocks of width 16; the trained denoiser has 2 blocks of width 32"):
        load_twin(tmp_path / "narrow", tiny_pipe)
    out = tmp_path / "x.zarr"
    for bad in (3, ""):
        with pytest.raises(ValueError, match=r"^twin: must be None"):
            run_capture(tiny_config, out, pipeline=tiny_pipe, progress=False, twin=bad)
    with pytest.raises(ValueError, match=r"^twin_seed: must be an int"):
        run_capture(tiny_config, out, pipeline=tiny_pipe, progress=False, twin="random-init", twin_seed=-1)
    with pytest.raises(ValueError, match=r"^twin: .*no such folder"):
        run_capture(tiny_config, out, pipeline=tiny_pipe, progress=False, twin=str(tmp_path / "nowhere"))
    assert not out.exists()
