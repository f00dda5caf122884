"""Training smoke test on the tiny config: both stages run, losses are finite, outputs load back."""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers import DiffusionPipeline
from safetensors import safe_open

from subspacelens.organism.build import OrganismConfig
from subspacelens.organism.build import build_pipeline
from subspacelens.organism import train
from subspacelens.organism.evaluate import CNNClassifier, Evaluation, accuracy_against_steps, accuracy_summary
from subspacelens.organism.train import (
    LOG_NAME, TrainConfig, _min_snr_weight, _schedule, loss_weight, prediction_target, subject_prompts, train_organism,
    use_prediction,
)
from subspacelens.prompts import load_prompt_set

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


def test_evaluation_logs_snapshots_held_out_samples_of_both_models_and_saves_the_annotator(tmp_path):
    evaluation = Evaluation(seeds=(10_000,), snapshot_seeds=(10_001,), snapshot_every=2,
                            annotator_seeds=(20_000, 20_001), fresh_seeds=(30_000,))
    smoke = TrainConfig.from_dict({**SMOKE.to_dict(), "steps": 4, "hierarchy": "nested"})
    record = train_organism(tmp_path, OrganismConfig.tiny(), smoke, seed=0, log=None, name="organism-s0",
                            evaluation=evaluation)
    saved = json.loads((tmp_path / "organism-s0" / LOG_NAME).read_text())
    assert saved == json.loads(json.dumps(record))
    e = saved["evaluation"]
    assert [snap["step"] for snap in e["snapshots"]] == [2, 4]
    assert all(snap["seed"] == [10_001] * 25 for snap in e["snapshots"])
    for model in ("trained", "random_init"):
        assert e[model]["seed"] == [10_000] * 25 and len(e[model]["predicted"]) == 25
    assert len(e["annotator"]["fresh"]["predicted"]) == 25
    assert e["sampling"] == {"num_inference_steps": 20, "guidance_scale": 4.5}
    assert saved["wall_seconds"]["snapshots"] > 0 and "evaluation" in saved["wall_seconds"]
    curve = accuracy_against_steps(saved, load_prompt_set("v2").category_of, list(subject_prompts()))
    assert curve["step"].tolist() == [2, 2, 4, 4] and curve["evaluation"].tolist() == ["snapshot"] * 2 + ["final"] * 2
    assert curve["n"].tolist() == [25] * 4 and set(curve["level"]) == {"subject", "category"}
    assert (tmp_path / "organism-s0-random-init" / "model_index.json").exists()
    assert not list(tmp_path.glob(".*partial")), "the staging folder is removed"
    annotator = CNNClassifier.load(tmp_path / "organism-s0" / "annotator")
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "organism-s0")
    assert pipe.scheduler.config.prediction_type == "epsilon"
    images = torch.zeros(3, 3, 16, 16).numpy()
    assert len(annotator.predict(images)) == 3


def test_a_failed_training_leaves_the_organism_already_there(tmp_path, monkeypatch):
    train_organism(tmp_path, OrganismConfig.tiny(), SMOKE, seed=0, log=None, name="organism-s0")
    before = {path: path.read_bytes() for path in sorted((tmp_path / "organism-s0").rglob("*")) if path.is_file()}
    saved, save = [], train.save_organism

    def save_then_fail_on_the_twin(pipe, folder, half=True):
        if saved:
            raise OSError("disk full")
        saved.append(save(pipe, folder, half))

    monkeypatch.setattr(train, "save_organism", save_then_fail_on_the_twin)
    with pytest.raises(OSError, match="disk full"):
        train_organism(tmp_path, OrganismConfig.tiny(), SMOKE, seed=1, log=None, name="organism-s0")
    assert saved, "the trained pipeline was written before the failure"
    after = {path: path.read_bytes() for path in sorted((tmp_path / "organism-s0").rglob("*")) if path.is_file()}
    assert after == before


def test_accuracy_summary_has_wilson_intervals_per_subject_rates_and_a_confusion_matrix():
    subjects = ["lion", "tiger", "sushi"]
    category_of = {"lion": "animals", "tiger": "animals", "sushi": "food"}
    record = {"subject": ["lion", "lion", "tiger", "sushi"], "predicted": ["lion", "tiger", "tiger", "lion"]}
    summary = accuracy_summary(record, category_of, subjects)
    assert summary["subject"]["rate"] == 0.5 and summary["subject"]["n"] == 4
    assert summary["subject"]["low"] < 0.5 < summary["subject"]["high"]
    assert summary["category"]["rate"] == 0.75
    assert summary["per_subject"].tolist() == [0.5, 1.0, 0.0]
    assert summary["confusion"].loc["lion", "tiger"] == 1 and summary["confusion"].loc["sushi", "sushi"] == 0
    assert summary["confusion"].shape == (3, 3) and summary["confusion"].to_numpy().sum() == 4
    with pytest.raises(ValueError, match="predictions"):
        accuracy_summary({"subject": ["lion"], "predicted": []}, category_of, subjects)


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


def test_train_config_round_trip_and_defaults_unchanged():
    from subspacelens.organism.train import TrainConfig

    cfg = TrainConfig(hierarchy="nested", ema_decay=0.999, timestep_sampling="logit-normal", logit_mean=0.3)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    default = TrainConfig()
    assert (default.hierarchy, default.ema_decay, default.timestep_sampling) == ("factorial", None, "uniform")
    assert (default.lr, default.batch_size, default.warmup_steps, default.snr_gamma) == (1e-3, 32, 100, 5.0)


def test_timestep_sampling_uniform_is_the_old_draw_and_logit_normal_favours_mid_noise():
    from subspacelens.organism.train import TrainConfig, sample_timesteps

    t = sample_timesteps(64, 1000, TrainConfig(), torch.Generator().manual_seed(0))
    assert torch.equal(t, torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(0)))
    ln = sample_timesteps(20000, 1000, TrainConfig(timestep_sampling="logit-normal"), torch.Generator().manual_seed(0))
    assert ln.min() >= 0 and ln.max() <= 999
    assert ((ln > 250) & (ln < 750)).float().mean() > 0.6
    with pytest.raises(ValueError, match="timestep_sampling"):
        sample_timesteps(2, 1000, TrainConfig(timestep_sampling="cubic"), torch.Generator())


def test_ema_tracks_and_is_what_training_leaves_in_the_model(tmp_path):
    from subspacelens.organism.train import EMA

    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMA([p], decay=0.9)
    with torch.no_grad():
        p.fill_(1.0)
    ema.update()  # warm-up: decay min(0.9, 1/10) = 0.1
    torch.testing.assert_close(ema.shadow[0], torch.full((3,), 0.9))
    ema.copy_to()
    torch.testing.assert_close(p.detach(), torch.full((3,), 0.9))

    cfg = TrainConfig(**(SMOKE.to_dict() | {"ema_decay": 0.99, "hierarchy": "nested", "steps": 3}))
    record = train_organism(tmp_path, OrganismConfig.tiny(), cfg, seed=0, log=None)
    assert record["train_config"]["ema_decay"] == 0.99 and len(record["losses"]) == 3

    # the model ends holding the EMA (not the last raw) weights
    from subspacelens.organism.build import build_pipeline
    from subspacelens.organism.train import encode_captions, train_transformer

    pipe = build_pipeline(OrganismConfig.tiny(), seed=0)
    captions = encode_captions(pipe, ["a lion", "a tiger"], 16)
    null = encode_captions(pipe, [""], 16)
    latents = torch.randn(8, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    seen = {}

    def grab(step, ema):
        seen["raw"] = [p.detach().clone() for p in pipe.transformer.parameters() if p.requires_grad]
        seen["ema"] = [s.clone() for s in ema.shadow]

    cfg = TrainConfig(steps=3, batch_size=4, warmup_steps=1, ema_decay=0.5)
    train_transformer(pipe, latents, torch.tensor([0, 1] * 4), captions, null, cfg, seed=0, on_step=grab)
    final = [p.detach() for p in pipe.transformer.parameters() if p.requires_grad]
    assert all(torch.equal(f, e) for f, e in zip(final, seen["ema"]))
    assert not all(torch.equal(f, r) for f, r in zip(final, seen["raw"]))


def test_snr_floor_raises_the_high_noise_weight_only():
    alpha_bar = torch.tensor([1e-4, 0.1, 0.5, 0.99])
    snr = alpha_bar / (1 - alpha_bar)
    w = _min_snr_weight(alpha_bar, 5.0, floor=1.0)
    torch.testing.assert_close(w[:2], 1 / snr[:2])  # x0-space weight 1 below SNR 1
    torch.testing.assert_close(w[2:], _min_snr_weight(alpha_bar, 5.0)[2:])


def test_a_v_prediction_target_is_what_the_sampler_turns_back_into_the_clean_latents():
    """The velocity the transformer learns is the one DPM-Solver++ reads: converting it back at x_t gives x0."""
    pipe = build_pipeline(OrganismConfig.tiny())
    use_prediction(pipe, "v_prediction")
    scheduler = pipe.scheduler
    assert scheduler.config.prediction_type == "v_prediction"
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 4, 8, 8, generator=gen)
    scheduler.set_timesteps(20)
    t = scheduler.timesteps[3]
    alpha_bar = scheduler.alphas_cumprod[t]
    xt = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
    scheduler._step_index = 3  # convert_model_output reads the sigma of the current step
    recovered = scheduler.convert_model_output(prediction_target(x0, noise, alpha_bar, "v_prediction"), sample=xt)
    torch.testing.assert_close(recovered, x0, rtol=1e-4, atol=1e-4)
    assert torch.equal(prediction_target(x0, noise, alpha_bar, "epsilon"), noise)
    with pytest.raises(ValueError, match="prediction: unknown 'x0'"):
        use_prediction(pipe, "x0")


def test_v_loss_weight_is_min_snr_over_snr_plus_one_and_epsilon_keeps_its_weight():
    alpha_bar = torch.tensor([0.999, 0.5, 1e-4])
    snr = alpha_bar / (1 - alpha_bar)
    v = loss_weight(alpha_bar, TrainConfig(prediction="v_prediction", snr_gamma=5.0))
    torch.testing.assert_close(v, snr.clamp(max=5.0) / (snr + 1))
    torch.testing.assert_close(loss_weight(alpha_bar, TrainConfig()), _min_snr_weight(alpha_bar, 5.0))
    assert v[2] < 1e-3 and v[1] == pytest.approx(0.5)  # x0 weight min(SNR, γ), as for ε: only the output differs
