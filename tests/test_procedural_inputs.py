"""Procedural inputs: the denoiser sees known images forward-noised, and the cache records their ground truth."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from subspacelens.cache import open_cache
from subspacelens.capture import run_capture
from subspacelens.capture.procedural import (
    ProceduralInputs,
    check_variance_preserving,
    encode_images,
    procedural_samples,
    token_grid_fraction,
)
from subspacelens.organism.images import make_image_set


def _denoiser_inputs(pipe):
    """A pre-hook that records every latent input of the denoiser (after the pre-hooks registered before it)."""
    seen = []

    def hook(module, args, kwargs):
        seen.append((args[0].detach().clone(), float(kwargs["timestep"].flatten()[0])))

    return seen, pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)


def _generate(pipe, prompts, seeds):
    return pipe(prompts, generator=[torch.Generator().manual_seed(s) for s in seeds], num_inference_steps=3,
                guidance_scale=4.5, output_type="latent", use_resolution_binning=False, clean_caption=False)


def test_every_call_sees_the_clean_latents_forward_noised_with_the_samplers_own_starting_noise(tiny_pipe):
    prompts, seeds = ["a lion", "sushi"], [3, 4]
    seen, handle = _denoiser_inputs(tiny_pipe)
    with handle:
        _generate(tiny_pipe, prompts, seeds)
    starting_noise = seen[0][0][:2]
    samples = make_image_set([0], size=16, hierarchy="nested")
    images = samples.images[[list(samples.subjects).index("lion"), list(samples.subjects).index("sushi")]]
    clean = encode_images(tiny_pipe, images)
    with ProceduralInputs(tiny_pipe) as hook:
        hook.use(clean)
        seen, handle = _denoiser_inputs(tiny_pipe)  # runs after the hook: sees what the denoiser gets
        with handle:
            _generate(tiny_pipe, prompts, seeds)
    assert len(seen) == 3
    alphas = tiny_pipe.scheduler.alphas_cumprod.double()
    for latent, t in seen:
        a = alphas[int(t)]
        want = (a.sqrt() * clean.double() + (1 - a).sqrt() * starting_noise.double()).float()
        torch.testing.assert_close(latent, want.repeat(2, 1, 1, 1), rtol=0, atol=1e-6)
    assert not tiny_pipe.transformer._forward_pre_hooks, "the hook is removed on exit"


def test_a_procedural_capture_records_nuisance_masks_and_clean_latents(tiny_pipe, tiny_config, tmp_path):
    config = tiny_config.with_(seeds=2, token_layers=[0], token_steps=[2])
    generated = open_cache(run_capture(config, tmp_path / "generated.zarr", pipeline=tiny_pipe, progress=False))
    ds = open_cache(run_capture(config, tmp_path / "procedural.zarr", pipeline=tiny_pipe, progress=False,
                                inputs="procedural", hierarchy="nested"))
    samples, images, masks = procedural_samples(ds[["subject", "seed"]].to_dataframe()[["subject", "seed"]], 16,
                                                "nested")
    for name in ("position_x", "position_y", "scale", "background_phase"):
        np.testing.assert_array_equal(ds[name].values, samples[name].to_numpy(dtype=float))
    assert ds["colour"].values.tolist() == samples["colour"].tolist()
    np.testing.assert_array_equal(ds["token_foreground"].values, token_grid_fraction(masks, 16))
    assert 0 < ds["token_foreground"].values.mean() < 1
    np.testing.assert_allclose(ds.latents.values, encode_images(tiny_pipe, images).numpy(), rtol=0, atol=1e-6)
    assert ds.attrs["inputs"] == "procedural" and ds.attrs["hierarchy"] == "nested"
    assert ds.attrs["config_hash"] != generated.attrs["config_hash"]
    assert "inputs" not in generated.attrs and "colour" not in generated.coords
    assert not np.allclose(ds.activations.values, generated.activations.values)
    assert not tiny_pipe.transformer._forward_pre_hooks


def test_token_grid_fraction_pools_pixels_onto_the_token_grid_in_raster_order():
    masks = np.zeros((1, 4, 4), np.float32)
    masks[0, :2, 2:] = 1  # the top-right quarter
    masks[0, 3, 0] = 1  # one pixel of the bottom-left token
    np.testing.assert_array_equal(token_grid_fraction(masks, 4), [[0, 1, 0.25, 0]])
    with pytest.raises(ValueError, match="10 tokens"):
        token_grid_fraction(masks, 10)


@pytest.mark.parametrize("overrides, match", [
    ({"inputs": "images"}, "inputs: must be one of"),
    ({"inputs": "procedural"}, "hierarchy: with inputs 'procedural'"),
    ({"inputs": "procedural", "hierarchy": "flat"}, "hierarchy: with inputs 'procedural'"),
    ({"hierarchy": "nested"}, "hierarchy: only with inputs 'procedural'"),
])
def test_bad_inputs_are_refused_by_name_and_nothing_is_written(tiny_pipe, tiny_config, tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        run_capture(tiny_config, tmp_path / "bad.zarr", pipeline=tiny_pipe, progress=False, **overrides)
    assert not (tmp_path / "bad.zarr").exists()


def test_a_subject_without_a_procedural_image_and_a_flow_matching_scheduler_are_refused(tiny_pipe, tiny_config,
                                                                                          tmp_path):
    prompts = tmp_path / "unicorns.yaml"
    prompts.write_text('name: unicorns\ntemplate: "{subject}"\nseeds: 1\ncategories:\n  myths: [a unicorn, a lion]\n')
    with pytest.raises(ValueError, match="unknown subject 'unicorn'"):
        run_capture(tiny_config, tmp_path / "bad.zarr", pipeline=tiny_pipe, progress=False, inputs="procedural",
                    hierarchy="nested", prompt_set=str(prompts))
    assert not (tmp_path / "bad.zarr").exists()
    flow = types.SimpleNamespace(scheduler=types.SimpleNamespace())
    with pytest.raises(ValueError, match="SimpleNamespace has none"):
        check_variance_preserving(flow)
