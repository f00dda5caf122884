"""Every supported family end to end on tiny offline pipelines: adapter, capture, resume, shards, CFG.

The pipelines (``tiny_families.py``) are the real diffusers classes (PixArt-Σ, SANA, SD3, Flux) at d = 32
with random weights; each capture below (12 prompts, 3 steps) takes well under a second.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tiny_families import FAMILIES

import subspacelens.cache as cache_mod
from subspacelens.cache import cache_status, merge_shards, open_cache
from subspacelens.capture import BlockOutputError, TraceBlocks, adapter_for, random_init_twin, run_capture

NAMES = list(FAMILIES)
PROMPTS = ["a lion", "sushi"]


@pytest.fixture(scope="module")
def pipes():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {name: family.build() for name, family in FAMILIES.items()}
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def config_of(tiny_config):
    """The capture of the tiny prompt set (12 samples, 3 batches) for a family, with its unconditional branch."""

    def make(name, **overrides):
        family = FAMILIES[name]
        return tiny_config.with_(**({"model": f"tiny-{name}", "height": family.size, "width": family.size} | family.extra | overrides))

    return make


@pytest.fixture(scope="module")
def references(pipes, config_of, tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {name: run_capture(config_of(name), root / f"{name}.zarr", pipeline=pipes[name], progress=False) for name in NAMES}


def _call(pipe, name, **kw):
    family = FAMILIES[name]
    adapter = adapter_for(pipe)
    generators = [torch.Generator().manual_seed(i) for i in range(len(PROMPTS))]
    kwargs = dict(adapter.call_kwargs(pipe, family.size, family.size), height=family.size, width=family.size,
                  num_inference_steps=2, output_type="latent", negative_prompt="", generator=generators)
    return pipe(PROMPTS, **(kwargs | family.extra | kw)).images


@pytest.mark.parametrize("name", NAMES)
def test_capture_layout_matches_the_family(name, pipes, references):
    family, pipe = FAMILIES[name], pipes[name]
    ds = open_cache(references[name])
    assert ds.sizes["layer"] == family.num_blocks == ds.attrs["num_layers_total"]
    assert ds.block_kind.values.tolist() == list(family.block_kinds)
    assert ds.sizes["feature"] == 32
    assert ds.branch.values.tolist() == ["uncond", "cond"]
    assert ds.attrs["guidance_mode"] == ("true-cfg" if name == "flux" else "cfg")
    assert ds.latents.shape == (12, 4, 8, 8)
    assert not np.isnan(ds.activations.values).any()
    adapter = adapter_for(pipe)
    expected = adapter.timesteps(pipe, 3, family.size, family.size)
    np.testing.assert_allclose(ds.timestep.values, [expected[0], expected[2]], rtol=1e-3)
    assert adapter.num_tokens(pipe, family.size, family.size) == family.num_tokens


@pytest.mark.parametrize("name", NAMES)
def test_step0_uncond_is_identical_across_prompts_with_one_seed(name, references):
    """At step 0 the unconditional branch sees the seed's noise and the empty prompt only: the same for every
    subject; the conditional branch differs (so the comparison can fail)."""
    step0 = open_cache(references[name]).activations.isel(step=0).load()
    for seed in (0, 1, 2):
        rows = step0.isel(sample=(step0.seed == seed).values)
        uncond, cond = rows.sel(branch="uncond").values, rows.sel(branch="cond").values
        np.testing.assert_allclose(uncond, np.broadcast_to(uncond[:1], uncond.shape), rtol=1e-5, atol=1e-6)
        assert np.abs(cond - cond[:1]).max() > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_image_tokens_write_back_through_replace_image_tokens(name, pipes):
    """Replacing a block's image tokens by themselves changes nothing; by zeros changes the denoiser output."""
    pipe = pipes[name]
    adapter = adapter_for(pipe)
    base = _call(pipe, name)
    for layer, block in enumerate(adapter.blocks(pipe)):
        for scale, changes in ((1.0, False), (0.0, True)):
            hook = lambda m, a, k, out, s=scale: adapter.replace_image_tokens(out, adapter.image_tokens(out) * s)  # noqa: E731
            handle = block.register_forward_hook(hook, with_kwargs=True)
            try:
                edited = _call(pipe, name)
            finally:
                handle.remove()
            assert (not torch.equal(edited, base)) == changes, (layer, scale)


@pytest.mark.parametrize("name", NAMES)
def test_guidance_off_and_distilled_runs_store_cond_only(name, pipes, config_of, tmp_path):
    # Flux: the default run is guidance-distilled (true_cfg_scale 1); the others: guidance_scale 1.
    overrides = {"true_cfg_scale": 1.0} if name == "flux" else {"guidance_scale": 1.0}
    out = run_capture(config_of(name, **overrides, seeds=1), tmp_path / "c.zarr", pipeline=pipes[name], progress=False)
    ds = open_cache(out)
    assert ds.branch.values.tolist() == ["cond"]
    assert ds.attrs["guidance_mode"] == ("distilled" if name == "flux" else "none")


def test_true_cfg_is_only_for_families_with_separate_calls(pipes, config_of, tmp_path):
    with pytest.raises(ValueError, match="true_cfg_scale: 4.0 .*SanaPipeline batches it"):
        run_capture(config_of("sana", true_cfg_scale=4.0), tmp_path / "x.zarr", pipeline=pipes["sana"])
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("name", NAMES)
def test_two_shards_merge_to_the_single_run_store(name, pipes, config_of, references, tmp_path):
    from test_cache import assert_same_store

    shards = [
        run_capture(config_of(name, shard_index=i, num_shards=2), tmp_path / f"s{i}.zarr", pipeline=pipes[name], progress=False)
        for i in range(2)
    ]
    assert_same_store(references[name], merge_shards(shards, tmp_path / "merged.zarr"))


def _paced_capture(config, out, pipe):
    """The capture in a forked child, slowed down after each batch so that the kill lands mid-capture."""
    write = cache_mod.CacheWriter.write_batch

    def paced(self, *args, **kwargs):
        write(self, *args, **kwargs)
        time.sleep(0.5)

    cache_mod.CacheWriter.write_batch = paced
    try:
        run_capture(config, out, pipeline=pipe, progress=False)
    finally:
        os._exit(0)


@pytest.mark.parametrize("name", NAMES)
def test_resume_after_sigkill_gives_the_uninterrupted_store(name, pipes, config_of, references, tmp_path):
    """A capture process killed (SIGKILL) after its first batch resumes into the uninterrupted store. The
    process is a fork of this one (the pipeline already built), so the test costs no interpreter start."""
    from test_cache import assert_same_store

    out = tmp_path / "killed.zarr"
    proc = multiprocessing.get_context("fork").Process(target=_paced_capture, args=(config_of(name), out, pipes[name]))
    proc.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.is_alive():
        if out.exists() and list((out / "progress").glob("batch-*.json")):
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL, "the capture finished before it could be killed"
    assert 1 <= cache_status(out)["done"] < 3
    assert_same_store(references[name], run_capture(config_of(name), out, pipeline=pipes[name], progress=False))


@pytest.mark.parametrize("name", NAMES)
def test_random_init_twin_reinitialises_only_the_denoiser(name, pipes):
    pipe = pipes[name]
    twin, again = random_init_twin(pipe, seed=3), random_init_twin(pipe, seed=3)
    assert type(twin) is type(pipe) and twin.transformer.config == pipe.transformer.config
    for key, component in pipe.components.items():
        if key != "transformer":
            assert twin.components[key] is component, key
    trained, fresh, same = (dict(p.transformer.named_parameters()) for p in (pipe, twin, again))
    assert any(not torch.equal(trained[k], fresh[k]) for k in trained)
    assert all(torch.equal(fresh[k], same[k]) for k in fresh)
    assert not torch.equal(_call(twin, name), _call(pipe, name))


def test_unknown_families_fail_at_once_naming_the_pipeline(tiny_config, tmp_path):
    class UNet2DConditionModel(torch.nn.Module):
        pass

    class StableDiffusionPipeline(SimpleNamespace):
        pass

    pipe = StableDiffusionPipeline(unet=UNet2DConditionModel())
    with pytest.raises(ValueError, match=r"no ModelAdapter for StableDiffusionPipeline \(denoiser UNet2DConditionModel\)"
                       r".*PixArtAdapter.*SanaAdapter.*SD3Adapter.*FluxAdapter"):
        run_capture(tiny_config, tmp_path / "x.zarr", pipeline=pipe)
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("name", ["sd3", "flux"])
def test_an_unreadable_block_output_names_the_block(name, pipes):
    pipe = pipes[name]
    block = adapter_for(pipe).blocks(pipe)[1]
    handle = block.register_forward_hook(lambda m, a, out: out[1])  # a single tensor where a pair belongs
    try:
        with pytest.raises(BlockOutputError, match=rf"blocks\.1 \({type(block).__name__}\): .*expected \(encoder_hidden_states"):
            with TraceBlocks(pipe, "all", cfg=False):
                _call(pipe, name, **({"true_cfg_scale": 1.0} if name == "flux" else {"guidance_scale": 1.0}))
    finally:
        handle.remove()


def test_tokens_of_the_wrong_width_name_the_block(pipes):
    pipe = pipes["sana"]
    block = adapter_for(pipe).blocks(pipe)[2]
    handle = block.register_forward_hook(lambda m, a, out: out[..., :8])
    try:
        with pytest.raises(BlockOutputError, match=r"blocks\.2 \(SanaTransformerBlock\).*expected \(batch, tokens, 32\)"):
            with TraceBlocks(pipe, [2], cfg=False):
                _call(pipe, "sana", guidance_scale=1.0)
    finally:
        handle.remove()


def test_flux_true_cfg_calls_are_named_by_the_pipelines_cache_context(pipes, references):
    """The uncond branch of a true-CFG capture is the call with the negative prompt: at step 0 it equals the
    cond branch of a distilled run on the empty prompt with the same seed (swapped names would fail)."""
    pipe = pipes["flux"]
    step0 = open_cache(references["flux"]).activations.isel(step=0)
    generators = [torch.Generator().manual_seed(0)]
    kwargs = dict(adapter_for(pipe).call_kwargs(pipe, 16, 16), height=16, width=16, num_inference_steps=3,
                  output_type="latent", generator=generators, guidance_scale=4.5)  # the references' guidance
    with TraceBlocks(pipe, "all", [0], cfg=False) as trace:
        pipe([""], **kwargs)
    first = int(np.flatnonzero(step0.seed.values == 0)[0])
    for layer in range(FAMILIES["flux"].num_blocks):
        empty = trace.cache[f"blocks.{layer}", 0, "cond"][0].numpy()
        np.testing.assert_allclose(step0.sel(branch="uncond", layer=layer).values[first], empty, rtol=1e-5, atol=1e-6)
        assert np.abs(step0.sel(branch="cond", layer=layer).values[first] - empty).max() > 1e-4


def test_the_cache_context_wrapper_is_removed_like_the_hooks(pipes):
    pipe = pipes["flux"]
    hooks = lambda: sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in pipe.transformer.modules())  # noqa: E731
    before = hooks()
    with pytest.raises(RuntimeError, match="boom"):
        with TraceBlocks(pipe, "all", cfg=True) as trace:
            assert "cache_context" in pipe.transformer.__dict__ and trace.per_call
            raise RuntimeError("boom")
    assert "cache_context" not in pipe.transformer.__dict__ and hooks() == before
    with TraceBlocks(pipe, "all", cfg=True):
        with pytest.raises(RuntimeError, match=r"cache_context\('other'\).*one of \('uncond', 'cond'\)"):
            with pipe.transformer.cache_context("other"):
                pipe.transformer(**_flux_inputs(pipe))


def _flux_inputs(pipe):
    """Random inputs of the tiny Flux transformer's forward: 16 packed image tokens, 4 text tokens."""
    config = pipe.transformer.config
    return dict(hidden_states=torch.randn(1, 16, config.in_channels), encoder_hidden_states=torch.randn(1, 4, 32),
                pooled_projections=torch.randn(1, 16), timestep=torch.tensor([0.5]), guidance=torch.tensor([3.5]),
                img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(4, 3), return_dict=False)
