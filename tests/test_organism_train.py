"""Training smoke test on the tiny config: both stages run, losses are finite, outputs load back."""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers import DiffusionPipeline
from safetensors import safe_open

from subspacelens.organism.build import OrganismConfig
from subspacelens.organism.train import LOG_NAME, TrainConfig, _min_snr_weight, _schedule, train_organism

SMOKE = TrainConfig(vae_steps=2, vae_batch_size=8, steps=2, batch_size=8, warmup_steps=1, images_per_subject=2)


def test_two_step_training_writes_both_pipelines_and_the_log(tmp_path):
    record = train_organism(tmp_path, OrganismConfig.tiny(), SMOKE, seed=0, log=None)
    assert len(record["losses"]) == 2 and len(record["vae_losses"]) == 2
    assert all(math.isfinite(x) for x in record["losses"] + record["vae_losses"])
    saved = json.loads((tmp_path / "organism" / LOG_NAME).read_text())
    assert saved["seed"] == 0 and saved["organism_config"]["num_layers"] == 2 and "total" in saved["wall_seconds"]

    trained = DiffusionPipeline.from_pretrained(tmp_path / "organism")
    twin = DiffusionPipeline.from_pretrained(tmp_path / "organism-random-init")
    assert trained.vae.config.scaling_factor == twin.vae.config.scaling_factor == 1.0
    assert saved["latent_std_after"] == pytest.approx(1.0, abs=1e-3)
    for name in ("vae", "text_encoder"):
        a, b = getattr(trained, name).state_dict(), getattr(twin, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{name} must be shared by the twin"
    assert trained.transformer.dtype == trained.vae.dtype == trained.text_encoder.dtype == torch.float32
    with safe_open(next((tmp_path / "organism" / "transformer").glob("*.safetensors")), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16, "stored half precision"
    a, b = trained.transformer.state_dict(), twin.transformer.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a), "the twin's transformer is the untrained one"


def test_training_is_deterministic(tmp_path):
    first = train_organism(tmp_path / "a", OrganismConfig.tiny(), SMOKE, seed=3, log=None)
    second = train_organism(tmp_path / "b", OrganismConfig.tiny(), SMOKE, seed=3, log=None)
    assert first["losses"] == second["losses"] and first["vae_losses"] == second["vae_losses"]


def test_learning_rate_schedule_warms_up_then_decays_to_zero():
    assert _schedule(0, 100, 10) == 0.1
    assert _schedule(9, 100, 10) == 1.0
    assert _schedule(100, 100, 10) == 0.0


def test_min_snr_weight_keeps_noisy_steps_and_damps_clean_ones():
    alpha_bar = torch.tensor([0.01, 0.5, 0.99])
    w = _min_snr_weight(alpha_bar, 5.0)
    assert w[0] == 1.0 and w[1] == 1.0 and w[2] < 0.1
    assert torch.equal(_min_snr_weight(alpha_bar, None), torch.ones(3))
