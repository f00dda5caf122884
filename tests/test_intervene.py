"""Interventions (`subspacelens.intervene`): hooks, the edits' algebra, bases, readouts, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspacelens.capture import PixArtAdapter, TraceBlocks
from subspacelens.intervene import (EditBlocks, OffManifold, add_direction, as_edit, between_class_basis, keep_only,
                                    mean_difference, natural_span, paired_patch, patch, project_out, random_basis,
                                    restrict_to_span, seed_interval, seed_resamples)

PROMPTS = ["a lion", "sushi", "a pizza"]
OTHER = ["an octopus", "a lion", "sushi"]


def _generate(pipe, prompts=PROMPTS, steps=3, seeds=(0, 1, 2)):
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    return pipe(list(prompts), num_inference_steps=steps, guidance_scale=4.5, generator=generators,
                output_type="latent", **PixArtAdapter().call_kwargs(pipe, 16, 16)).images


def _hooks(module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def _tokens(pipe, layer, prompts, edits=None, seeds=(0, 1, 2)):
    """The block's (edited) output tokens at every step and branch: {(step, branch): (n, T, d)}."""
    from contextlib import nullcontext

    editing = EditBlocks(pipe, edits) if edits else nullcontext()
    with editing, TraceBlocks(pipe, [layer], reduction="tokens") as trace:
        _generate(pipe, prompts, seeds=seeds)
    return {k[1:]: v for k, v in trace.cache.items()}


def test_identity_edit_is_bit_identical(tiny_pipe):
    plain = _generate(tiny_pipe)
    with EditBlocks(tiny_pipe, {f"blocks.{i}": (lambda x, ctx: x) for i in range(2)}):
        edited = _generate(tiny_pipe)
    assert torch.equal(plain, edited)


def test_hooks_removed_on_exit_and_on_error(tiny_pipe):
    before = _hooks(tiny_pipe.transformer)
    with EditBlocks(tiny_pipe, {"blocks.1": lambda x, ctx: x}):
        assert _hooks(tiny_pipe.transformer) > before
    assert _hooks(tiny_pipe.transformer) == before

    def fail(x, ctx):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), EditBlocks(tiny_pipe, {"blocks.0": fail}):
        _generate(tiny_pipe)
    assert _hooks(tiny_pipe.transformer) == before


def test_context_carries_step_timestep_and_branch_and_restrictions_hold(tiny_pipe):
    seen = []

    def spy(x, ctx):
        seen.append((ctx.layer, ctx.step, ctx.branch, ctx.timestep))
        return x

    with EditBlocks(tiny_pipe, {1: spy}, steps=[0, 2], branches=["cond"]):
        _generate(tiny_pipe)
    assert [(layer, step, branch) for layer, step, branch, _ in seen] == [(1, 0, "cond"), (1, 2, "cond")]
    timesteps = list(tiny_pipe.scheduler.timesteps)
    assert [t for *_, t in seen] == [float(timesteps[0]), float(timesteps[2])]


def test_project_out_of_the_full_space_makes_the_block_output_independent_of_the_prompt(tiny_pipe):
    d = tiny_pipe.transformer.config.num_attention_heads * tiny_pipe.transformer.config.attention_head_dim
    centre = torch.linspace(-1, 1, d)
    edit = {0: as_edit(project_out, basis=np.eye(d), center=centre)}
    plain_a, plain_b = _tokens(tiny_pipe, 0, PROMPTS), _tokens(tiny_pipe, 0, OTHER)
    assert not torch.allclose(plain_a[2, "cond"], plain_b[2, "cond"])
    a, b = _tokens(tiny_pipe, 0, PROMPTS, edit), _tokens(tiny_pipe, 0, OTHER, edit)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0)
        torch.testing.assert_close(a[key], centre.expand_as(a[key]), atol=1e-5, rtol=0)


def test_patch_of_the_full_space_reproduces_the_source_block_output(tiny_pipe):
    d = 32
    targets, sources = ["a lion", "sushi"], ["a pizza", "an octopus"]
    seeds = (3, 4)
    source_run = _tokens(tiny_pipe, 1, sources, seeds=seeds)
    patched = _tokens(tiny_pipe, 1, targets + sources, {1: paired_patch(np.eye(d), 2)}, seeds=seeds + seeds)
    for key, value in source_run.items():
        torch.testing.assert_close(patched[key][:2], value, atol=1e-5, rtol=1e-5)  # targets became the sources
        torch.testing.assert_close(patched[key][2:], value, atol=1e-5, rtol=1e-5)  # sources ran unedited


def test_edit_algebra_on_random_tokens():
    rng = np.random.default_rng(0)
    x, src = (torch.as_tensor(rng.standard_normal((4, 5, 12))) for _ in range(2))
    U = random_basis(12, 3, seed=1)
    P = torch.as_tensor(U @ U.T)
    c = torch.as_tensor(rng.standard_normal(12))
    out = project_out(x, U, center=c)
    torch.testing.assert_close(out @ P, c.expand_as(x) @ P)
    torch.testing.assert_close(out - out @ P, x - x @ P)
    kept = keep_only(x, U, center=c)
    torch.testing.assert_close(kept @ P, x @ P)
    torch.testing.assert_close(kept - kept @ P, c.expand_as(x) - c.expand_as(x) @ P)
    patched = patch(x, src, U)
    torch.testing.assert_close(patched @ P, src @ P)
    torch.testing.assert_close(patched - patched @ P, x - x @ P)
    rows = torch.as_tensor(rng.standard_normal((4, 12)))
    torch.testing.assert_close(add_direction(x, rows, 0.5) - x, 0.5 * rows[:, None, :].expand_as(x))


def test_random_basis_is_orthonormal_and_uniform():
    U = random_basis(16, 4, seed=0)
    np.testing.assert_allclose(U.T @ U, np.eye(4), atol=1e-12)
    # Uniform subspaces: E‖Pe₁‖² = k/d.
    mean_energy = np.mean([np.sum(random_basis(16, 4, seed=s)[0] ** 2) for s in range(400)])
    assert abs(mean_energy - 4 / 16) < 0.03


def test_bases_recover_planted_structure():
    rng = np.random.default_rng(0)
    d, per = 10, 200
    labels = np.repeat(["a", "b", "c"], per)
    means = {"a": np.eye(d)[0] * 5, "b": np.eye(d)[1] * 5, "c": np.zeros(d)}
    Z = np.stack([means[label] for label in labels], axis=1) + 0.1 * rng.standard_normal((d, 3 * per))
    U = between_class_basis(Z, labels, 2)
    assert np.sum(U[:2] ** 2) > 1.99  # the span of e1, e2
    np.testing.assert_allclose(mean_difference(Z, labels, "c", "a"), means["a"], atol=0.05)
    Z[5:] = 0  # natural activations never use directions 5..9
    span = natural_span(Z, 0.999)
    assert np.allclose(span[5:], 0)
    mixed = np.linalg.qr(np.stack([np.eye(d)[0] + np.eye(d)[7], np.eye(d)[8]], axis=1))[0]
    inside = restrict_to_span(mixed, span)
    assert inside.shape[1] == 1 and np.allclose(np.abs(inside[:, 0]), np.eye(d)[0], atol=1e-4)


def test_off_manifold_and_seed_intervals():
    rng = np.random.default_rng(0)
    natural, held = rng.standard_normal((2000, 6)), rng.standard_normal((2000, 6))
    model = OffManifold.fit(natural, held, quantile=0.95)
    assert abs(model.score(rng.standard_normal((4000, 6))).mean() - 0.05) < 0.015
    assert model.score(rng.standard_normal((100, 6)) + 6).mean() == 1.0
    subjects = np.repeat(["a", "b"], 50)
    values = np.r_[np.ones(50), np.zeros(50)]
    mean, low, high = seed_interval(values, seed_resamples(subjects, 100))
    assert mean == low == high == 0.5  # resampling seeds within subjects keeps each subject's weight


@pytest.mark.parametrize("build, name", [
    (lambda pipe: EditBlocks(pipe, {"blocks.9": lambda x, c: x}), "edits"),
    (lambda pipe: EditBlocks(pipe, {"mlp.0": lambda x, c: x}), "edits"),
    (lambda pipe: EditBlocks(pipe, {}), "edits"),
    (lambda pipe: EditBlocks(pipe, {0: lambda x, c: x}, branches=["negative"]), "branches"),
])
def test_bad_hook_points_are_refused(tiny_pipe, build, name):
    with pytest.raises(ValueError, match=name):
        build(tiny_pipe)


def test_bad_edit_arguments_name_themselves(tiny_pipe):
    x = torch.zeros(2, 4, 32)
    with pytest.raises(ValueError, match="basis.*width 16"):
        project_out(x, random_basis(16, 2))
    with pytest.raises(ValueError, match="basis"):  # raised during generation, hooks still removed
        with EditBlocks(tiny_pipe, {0: as_edit(project_out, basis=random_basis(16, 2))}):
            _generate(tiny_pipe)
    assert _hooks(tiny_pipe.transformer) == 0
    with pytest.raises(ValueError, match="strength"):
        add_direction(x, torch.ones(32), float("nan"))
    with pytest.raises(ValueError, match="rank"):
        random_basis(32, 33)
    with pytest.raises(ValueError, match="rank"):
        between_class_basis(np.ones((32, 6)), ["a", "b", "c"] * 2, 33)
    with pytest.raises(ValueError, match="rank"):
        between_class_basis(np.random.default_rng(0).standard_normal((32, 6)), ["a", "b", "c"] * 2, 3)  # K - 1 = 2
    with pytest.raises(ValueError, match="basis.*orthonormal"):
        keep_only(x, np.ones((32, 2)))


def test_by_step_runs_the_edit_of_the_nearest_anchor(tiny_pipe):
    from subspacelens.intervene import by_step

    used = []
    anchors = {0: lambda x, ctx: used.append((ctx.step, 0)) or x, 2: lambda x, ctx: used.append((ctx.step, 2)) or x}
    with EditBlocks(tiny_pipe, {0: by_step(anchors)}, branches=["cond"]):
        _generate(tiny_pipe)
    assert used == [(0, 0), (1, 0), (2, 2)]  # step 1 is as near to both: the earlier anchor
