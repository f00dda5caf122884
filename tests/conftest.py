"""Shared fixtures: the tiny random PixArt pipeline (no network) and a small prompt set for captures."""

from __future__ import annotations

import textwrap

import pytest
import torch

# A few prompts from v2's vocabulary: 2 categories x 2 subjects x 3 seeds = 12 samples.
TINY_PROMPT_SET = textwrap.dedent(
    """\
    name: tiny
    description: test prompt set
    template: "{subject}"
    seeds: 3
    categories:
      animals: [a lion, an octopus]
      food: [sushi, a pizza]
    """
)


@pytest.fixture(scope="session")
def tiny_pipe():
    """``build_pipeline(OrganismConfig.tiny())``: 2 blocks, d=32, 16 px. One thread: on a loaded 2-core
    machine intra-op threading makes these tiny matmuls many times slower, and results must not depend
    on the thread count across the subprocesses the cache tests start."""
    from subspacelens.organism import OrganismConfig, build_pipeline

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_pipeline(OrganismConfig.tiny())
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_prompt_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "tiny.yaml"
    path.write_text(TINY_PROMPT_SET)
    return path


@pytest.fixture(scope="session")
def tiny_config(tiny_prompt_path):
    """A capture of the tiny prompt set: 3 steps, CFG on, 3 batches of 4 samples."""
    from subspacelens.capture import CaptureConfig

    return CaptureConfig(
        model="tiny-random-pixart",
        prompt_set=str(tiny_prompt_path),
        num_inference_steps=3,
        steps=[0, 2],
        batch_size=4,
    )
