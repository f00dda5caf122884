"""Hooks (`subspacelens.capture`): values, CFG split, step bookkeeping, cleanup, loading errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspacelens.cache import open_cache
from subspacelens.capture import (
    ModelNotFoundError,
    PixArtAdapter,
    TraceBlocks,
    adapter_for,
    load_pipeline,
    parse_layers,
    parse_steps,
    run_capture,
    run_with_cache,
)

PROMPTS = ["a lion", "sushi", "a pizza"]


def _generate(pipe, prompts=PROMPTS, guidance_scale=4.5, steps=3, seed0=0, **kw):
    generators = [torch.Generator().manual_seed(seed0 + i) for i in range(len(prompts))]
    return pipe(
        prompts,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        generator=generators,
        output_type="latent",
        **PixArtAdapter().call_kwargs(pipe, 16, 16),
        **kw,
    )


def _all_hooks(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def _manual_blocks(transformer, kwargs):
    """PixArtTransformer2DModel.forward written out up to the blocks: every block's output."""
    x = kwargs["hidden_states"]
    mask = kwargs["encoder_attention_mask"]
    bias = ((1 - mask.to(x.dtype)) * -10000.0).unsqueeze(1)
    batch = x.shape[0]
    h = transformer.pos_embed(x)
    t, _ = transformer.adaln_single(
        kwargs["timestep"], kwargs["added_cond_kwargs"], batch_size=batch, hidden_dtype=h.dtype
    )
    enc = transformer.caption_projection(kwargs["encoder_hidden_states"]).view(batch, -1, h.shape[-1])
    outs = []
    for block in transformer.transformer_blocks:
        h = block(h, encoder_hidden_states=enc, encoder_attention_mask=bias, timestep=t)
        outs.append(h)
    return outs


def test_captured_outputs_equal_a_manual_forward(tiny_pipe):
    calls = []

    def record_inputs(module, args, kwargs):
        calls.append({"hidden_states": args[0] if args else kwargs["hidden_states"], **kwargs})

    handle = tiny_pipe.transformer.register_forward_pre_hook(record_inputs, with_kwargs=True)
    try:
        with TraceBlocks(tiny_pipe, "all", None, reduction="tokens") as trace:
            _generate(tiny_pipe)
    finally:
        handle.remove()
    assert len(calls) == 3
    cache = trace.cache
    with torch.no_grad():
        for step, kwargs in enumerate(calls):
            manual = _manual_blocks(tiny_pipe.transformer, kwargs)
            for layer, out in enumerate(manual):
                uncond, cond = out.chunk(2)
                torch.testing.assert_close(cache[f"blocks.{layer}", step, "uncond"], uncond, rtol=0, atol=0)
                torch.testing.assert_close(cache[f"blocks.{layer}", step, "cond"], cond, rtol=0, atol=0)
                assert trace.timesteps[step] == float(kwargs["timestep"][0])


def test_mean_is_the_token_mean_and_tokens_are_extra(tiny_pipe):
    with TraceBlocks(tiny_pipe, [0, 1], [0, 2], token_layers=["blocks.1"], token_steps=[2]) as trace:
        _generate(tiny_pipe)
    cache = trace.cache
    assert cache["blocks.1", 2, "cond"].shape == (3, 32)
    tokens = cache["blocks.1", 2, "cond", "tokens"]
    assert tokens.shape == (3, 16, 32)  # 8x8 latent / patch 2 = 4x4 tokens
    torch.testing.assert_close(tokens.mean(1), cache["blocks.1", 2, "cond"])
    assert ("blocks.0", 2, "cond", "tokens") not in cache
    assert {k[1] for k in cache} == {0, 2}  # step 1 not kept


def test_cfg_split_matches_separate_cond_and_uncond_runs(tiny_pipe):
    """At step 0 every run starts from the same noise, so the CFG run's branches must equal a
    guidance-off run of the prompts (cond) and of the empty prompt (uncond)."""
    _, both = run_with_cache(tiny_pipe, PROMPTS, layers="all", steps=[0], guidance_scale=4.5,
                             num_inference_steps=3, output_type="latent",
                             generator=[torch.Generator().manual_seed(i) for i in range(3)],
                             **PixArtAdapter().call_kwargs(tiny_pipe, 16, 16))
    assert {k[2] for k in both} == {"uncond", "cond"}
    with TraceBlocks(tiny_pipe, "all", [0], cfg=False) as cond_only:
        _generate(tiny_pipe, guidance_scale=1.0)
    with TraceBlocks(tiny_pipe, "all", [0], cfg=False) as uncond_only:
        _generate(tiny_pipe, prompts=[""] * 3, guidance_scale=1.0)
    assert {k[2] for k in cond_only.cache} == {"cond"}
    for layer in range(2):
        name = f"blocks.{layer}"
        torch.testing.assert_close(both[name, 0, "cond"], cond_only.cache[name, 0, "cond"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(both[name, 0, "uncond"], uncond_only.cache[name, 0, "cond"], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(both[name, 0, "cond"], both[name, 0, "uncond"])


def test_steps_restart_with_each_generation_and_match_the_scheduler(tiny_pipe):
    with TraceBlocks(tiny_pipe, [1], [0, 2]) as trace:
        _generate(tiny_pipe, prompts=["a lion"])
        _generate(tiny_pipe, prompts=["sushi", "a pizza"])
    tiny_pipe.scheduler.set_timesteps(3)
    assert trace.timesteps == {i: float(t) for i, t in enumerate(tiny_pipe.scheduler.timesteps)}
    assert sorted({(r.step, r.branch) for r in trace.records}) == [(0, "cond"), (0, "uncond"), (2, "cond"), (2, "uncond")]
    assert trace.cache["blocks.1", 0, "cond"].shape == (3, 32)  # concatenated over the two calls


def test_values_are_detached_cpu_in_the_chosen_dtype(tiny_pipe):
    with TraceBlocks(tiny_pipe, [0], [0], dtype=torch.float16) as trace:
        _generate(tiny_pipe)
    value = trace.records[0].value
    assert value.dtype == torch.float16 and value.device.type == "cpu" and not value.requires_grad


def test_hooks_are_removed_on_exit_and_after_an_exception(tiny_pipe):
    before = _all_hooks(tiny_pipe.transformer)
    with TraceBlocks(tiny_pipe, "all", None) as trace:
        assert _all_hooks(tiny_pipe.transformer) == before + 3  # 2 blocks + the step pre-hook
    assert _all_hooks(tiny_pipe.transformer) == before

    def exploding_sink(record):
        raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        with TraceBlocks(tiny_pipe, "all", None, sink=exploding_sink):
            _generate(tiny_pipe)
    assert _all_hooks(tiny_pipe.transformer) == before
    with pytest.raises(ValueError):
        with TraceBlocks(tiny_pipe, "all", None):
            tiny_pipe(["a lion"], num_inference_steps=0)  # generation itself fails
    assert _all_hooks(tiny_pipe.transformer) == before
    assert trace._handles == []


def test_wrong_cfg_layout_is_reported(tiny_pipe):
    with pytest.raises(RuntimeError, match="CFG branches"):
        with TraceBlocks(tiny_pipe, [0], [0], cfg=True):
            _generate(tiny_pipe, prompts=["a lion"], guidance_scale=1.0)


def test_parse_layers_and_steps():
    assert parse_layers("all", 4) == [0, 1, 2, 3]
    assert parse_layers(["blocks.3", 0, -1], 4) == [0, 3]
    assert parse_layers(2, 4) == [2]
    for bad in (4, [-5], "blocks.x", [1.5], [], "first"):
        with pytest.raises(ValueError, match="layers"):
            parse_layers(bad, 4)
    assert parse_steps([6, 0, 6], 20) == [0, 6]
    assert parse_steps(None, 20) is None
    for bad in ([20], [-1], [], [True]):
        with pytest.raises(ValueError, match="steps"):
            parse_steps(bad, 20)


def test_adapter_describes_pixart(tiny_pipe):
    adapter = adapter_for(tiny_pipe)
    assert isinstance(adapter, PixArtAdapter)
    assert adapter.hidden_size(tiny_pipe) == 32
    assert adapter.native_size(tiny_pipe) == (16, 16)
    assert adapter.cfg_layout == ("uncond", "cond")
    # sample_size 8 has no aspect-ratio bins: binning off so the default parameters run
    assert adapter.call_kwargs(tiny_pipe, 16, 16)["use_resolution_binning"] is False
    assert adapter.num_tokens(tiny_pipe, 16, 16) == 16
    with pytest.raises(ValueError, match="no ModelAdapter"):
        adapter_for(object())


def test_missing_models_fail_at_once_with_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="no such folder"):
        load_pipeline(tmp_path / "nowhere" / "organism")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="model_index.json"):
        load_pipeline(tmp_path / "empty")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFoundError, match=r"PixArt-alpha/PixArt-XL-2-512x512.*huggingface-cli download"):
        load_pipeline("PixArt-alpha/PixArt-XL-2-512x512")


def test_a_saved_pipeline_folder_loads_with_safetensors(tiny_pipe, tmp_path):
    tiny_pipe.save_pretrained(tmp_path / "organism")
    assert list((tmp_path / "organism").rglob("*.safetensors"))
    pipe = load_pipeline(tmp_path / "organism")
    with TraceBlocks(pipe, [1], [2]) as a:
        _generate(pipe)
    with TraceBlocks(tiny_pipe, [1], [2]) as b:
        _generate(tiny_pipe)
    torch.testing.assert_close(a.cache["blocks.1", 2, "cond"], b.cache["blocks.1", 2, "cond"])


def test_a_local_path_with_a_typo_says_no_such_folder_before_the_hub_advice(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFoundError, match=r"^model 'data/modles': no such folder \S+/data/modles "
                       r"\(in \S+/data: did you mean 'models'\?\)\. As a hub id it is not available"):
        load_pipeline("data/modles")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_cuda_fails_before_the_model_loads(tiny_config, tmp_path):
    config = tiny_config.with_(model=str(tmp_path / "not-loaded"), device="cuda")
    with pytest.raises(ValueError, match=r"^device: 'cuda', but CUDA is not available on this machine"):
        run_capture(config, tmp_path / "x.zarr")
    with pytest.raises(ValueError, match=r"^device: 'cuda:0', but CUDA is not available"):
        load_pipeline(tmp_path / "not-loaded", device="cuda:0")
    with pytest.raises(ValueError, match=r"^device: 'gpu' is not a torch device"):
        run_capture(config.with_(device="gpu"), tmp_path / "x.zarr")
    assert not list(tmp_path.iterdir())


def test_prompts_outside_the_vocabulary_are_refused_or_warned_about(tiny_pipe, tiny_config, tmp_path):
    from subspacelens.capture import UnknownTokensWarning, unknown_words

    assert unknown_words(tiny_pipe.tokenizer, ["a giraffe", "a lion", "un café au lait"]) == {
        "a giraffe": ["giraffe"], "un café au lait": ["un", "café", "au", "lait"]}
    path = tmp_path / "zoo.yaml"
    path.write_text('name: zoo\ntemplate: "{subject}"\nseeds: 1\ncategories:\n  animals: [a giraffe, a zebra, a lion]\n')
    config = tiny_config.with_(prompt_set=str(path), batch_size=3)
    out = tmp_path / "zoo.zarr"
    with pytest.raises(ValueError, match=r"^prompts: 2 prompt\(s\) contain words .* \['giraffe', 'zebra'\].*allow_unknown_tokens"):
        run_capture(config, out, pipeline=tiny_pipe, progress=False)
    assert not out.exists()
    with pytest.warns(UnknownTokensWarning, match=r"\['giraffe', 'zebra'\]"):
        run_capture(config.with_(allow_unknown_tokens=True), out, pipeline=tiny_pipe, progress=False)
    ds = open_cache(out)
    # what the refusal protects against: both read as [UNK], so their activations are identical
    np.testing.assert_array_equal(ds.activations.isel(sample=0).values, ds.activations.isel(sample=1).values)
