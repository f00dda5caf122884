"""Pilot loop for issue 7: train an organism variant on one core, then measure whether it renders its subjects.

One run = (cached) VAE on the procedural images, DDPM training of the transformer with the given recipe, then
on held-out seeds (10000 and up):

* sample accuracy: 25 subjects × ``--eval-seeds`` seeds, 20 steps, at CFG 4.5 and CFG 1.0, scored by the CNN
  annotator (``evaluate.fit_classifier(kind="cnn")``, fitted on fresh procedural images);
* the "diffusion classifier": for held-out procedural images, the prompt (of 25) with the lowest ε-loss,
  summed over a few timesteps with shared noise: does the model know the subjects, independently of sampling?
* optional snapshots (``--snapshots``): the same sample accuracy (CFG 4.5, fewer samples) during training.

Writes ``pilots/runs/<name>.json`` (config, CPU seconds per stage, every figure) and ``<name>.png`` (samples:
rows = subjects, columns = seeds, CFG 4.5 left block, CFG 1.0 right block).

    PYTHONPATH=lib OMP_NUM_THREADS=1 .venv/bin/python pilots/organism_pilot.py --name base --steps 2500
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler

from subspacelens.organism import evaluate as ev
from subspacelens.organism.build import OrganismConfig, build_pipeline
from subspacelens.organism.images import make_image_set, traits
from subspacelens.organism.train import (
    PREDICTIONS, TrainConfig, encode_captions, encode_latents, prediction_target, standardise_latents, subject_prompts,
    train_transformer, train_vae, use_prediction,
)
from subspacelens.prompts import load_prompt_set

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
CACHE = Path("/tmp/organism_pilot_cache")
DATA_TAG = ""


def cpu() -> float:
    return time.process_time()


def get_vae_and_latents(pipe, config, tcfg, log):
    """Train the VAE (or load it from the cache: it does not depend on the transformer recipe)."""
    tag = "" if DATA_TAG == "s0.24-0.32-c0.38-0.62" else "-" + DATA_TAG
    key = f"{tcfg.hierarchy}{tag}-n{tcfg.images_per_subject}-vae{tcfg.vae_steps}-img{config.image_size}-seed0"
    path = CACHE / f"{key}.pt"
    data = make_image_set(range(tcfg.images_per_subject), size=config.image_size, hierarchy=tcfg.hierarchy)
    t0 = cpu()
    if path.exists():
        pipe.vae.load_state_dict(torch.load(path))
        pipe.vae.register_to_config(scaling_factor=1.0)
        pipe.vae.eval().requires_grad_(False)
        cached = True
    else:
        train_vae(pipe.vae, data.images, tcfg, seed=0, log=log)
        standardise_latents(pipe.vae, encode_latents(pipe.vae, data.images))
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(pipe.vae.state_dict(), path)
        cached = False
    latents = encode_latents(pipe.vae, data.images) * pipe.vae.config.scaling_factor
    return data, latents, cached, cpu() - t0


@torch.no_grad()
def diffusion_classifier(pipe, latents, truth_idx, captions, prediction, timesteps=(200, 400, 600, 800), seed=0):
    """Per image, the caption index with the lowest summed MSE of the model's target (``prediction``) over
    ``timesteps`` (same noise for all prompts)."""
    model = pipe.transformer
    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    ac = sched.alphas_cumprod
    embeds, mask = captions
    k = len(embeds)
    gen = torch.Generator().manual_seed(seed)
    no_cond = {"resolution": None, "aspect_ratio": None}
    scores = torch.zeros(len(latents), k)
    per_t = torch.zeros(len(timesteps), len(latents), k)
    for i, x0 in enumerate(latents):
        for j, t in enumerate(timesteps):
            noise = torch.randn(x0.shape, generator=gen)
            a = ac[t]
            xt = (a.sqrt() * x0 + (1 - a).sqrt() * noise).expand(k, -1, -1, -1)
            pred = model(xt, encoder_hidden_states=embeds, encoder_attention_mask=mask,
                         timestep=torch.full((k,), t), added_cond_kwargs=no_cond, return_dict=False)[0]
            per_t[j, i] = ((pred - prediction_target(x0, noise, a, prediction)) ** 2).mean(dim=(1, 2, 3))
            scores[i] += per_t[j, i]
    pred_idx = scores.argmin(dim=1)
    by_t = {int(t): float((per_t[j].argmin(dim=1) == truth_idx).float().mean()) for j, t in enumerate(timesteps)}
    return float((pred_idx == truth_idx).float().mean()), pred_idx, by_t


def sample_accuracy(pipe, clf, subjects, prompts, category_of, seeds, cfg_scale):
    ps = [prompts[s] for s in subjects for _ in seeds]
    ss = [sd for _ in subjects for sd in seeds]
    truth = [s for s in subjects for _ in seeds]
    images = ev.generate(pipe, ps, ss, guidance_scale=cfg_scale)
    acc = ev.subject_and_category_accuracy(clf, images, truth, category_of)
    pred = clf.predict(images)
    # how many distinct predicted subjects per (category, seed): 1 = "all siblings rendered the same"
    return acc, images, pred


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--hierarchy", default="nested")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=16)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ema", type=float, default=None)
    ap.add_argument("--ts", default="uniform")
    ap.add_argument("--logit-mean", type=float, default=0.0)
    ap.add_argument("--logit-std", type=float, default=1.0)
    ap.add_argument("--snr", default="5.0", help="Min-SNR gamma, or 'none'")
    ap.add_argument("--snr-floor", type=float, default=None)
    ap.add_argument("--p-uncond", type=float, default=0.1)
    ap.add_argument("--images-per-subject", type=int, default=400)
    ap.add_argument("--eval-seeds", type=int, default=8)
    ap.add_argument("--dc-images", type=int, default=100)
    ap.add_argument("--prediction", default="epsilon", choices=PREDICTIONS)
    ap.add_argument("--snapshots", default="", help="comma-separated steps to evaluate (CFG 4.5, 4 seeds)")
    ap.add_argument("--scale-range", default=None, help="nested object radius range, e.g. 0.32,0.40")
    ap.add_argument("--centre-range", default=None, help="nested object centre range, e.g. 0.42,0.58")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from subspacelens.organism import images as im
    if args.scale_range:
        im.NESTED_SCALE = tuple(float(v) for v in args.scale_range.split(","))
    if args.centre_range:
        im.NESTED_CENTRE = tuple(float(v) for v in args.centre_range.split(","))
    global DATA_TAG
    DATA_TAG = f"s{im.NESTED_SCALE[0]}-{im.NESTED_SCALE[1]}-c{im.NESTED_CENTRE[0]}-{im.NESTED_CENTRE[1]}"
    t_start = cpu()
    log = lambda m: print(m, flush=True)  # noqa: E731

    config = OrganismConfig(num_layers=args.layers, num_attention_heads=args.heads,
                            attention_head_dim=args.head_dim, patch_size=args.patch)
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, warmup_steps=args.warmup,
                       ema_decay=args.ema, timestep_sampling=args.ts, logit_mean=args.logit_mean,
                       logit_std=args.logit_std, snr_gamma=None if args.snr == "none" else float(args.snr),
                       snr_floor=args.snr_floor,
                       p_uncond=args.p_uncond, prediction=args.prediction,
                       images_per_subject=args.images_per_subject, hierarchy=args.hierarchy)
    pipe = build_pipeline(config, seed=0)
    use_prediction(pipe, args.prediction)
    data, latents, vae_cached, vae_cpu = get_vae_and_latents(pipe, config, tcfg, log)
    prompts = subject_prompts()
    subjects = list(prompts)
    captions = encode_captions(pipe, [prompts[s] for s in subjects], config.max_length)
    null_caption = encode_captions(pipe, [""], config.max_length)
    caption_index = torch.tensor([subjects.index(s) for s in data.subjects])
    category_of = load_prompt_set("v2").category_of

    t0 = cpu()
    tag = "" if DATA_TAG == "s0.24-0.32-c0.38-0.62" else "-" + DATA_TAG
    clf_path = CACHE / f"annotator-{args.hierarchy}{tag}.pt"
    if clf_path.exists():
        clf = torch.load(clf_path, weights_only=False)
    else:
        clf = ev.fit_classifier(make_image_set(range(20000, 20200), hierarchy=args.hierarchy), kind="cnn")
        torch.save(clf, clf_path)
    fresh = make_image_set(range(30000, 30020), hierarchy=args.hierarchy)
    clf_acc = ev.subject_and_category_accuracy(clf, fresh.images, fresh.subjects, category_of)
    with torch.no_grad():
        recon = pipe.vae.decode(encode_latents(pipe.vae, fresh.images)).sample.numpy()
    recon_acc = ev.subject_and_category_accuracy(clf, recon, fresh.subjects, category_of)
    clf_cpu = cpu() - t0
    log(f"annotator on VAE reconstructions: {recon_acc}")
    log(f"annotator: {clf_acc} ({clf_cpu:.0f} CPU-s)")

    snap_steps = {int(s) for s in args.snapshots.split(",") if s}
    snapshots = []
    snap_cpu = [0.0]
    model = pipe.transformer
    params = [p for p in model.parameters() if p.requires_grad]

    def on_step(step, ema):
        if step + 1 not in snap_steps:
            return
        t1 = cpu()
        raw = [p.detach().clone() for p in params]
        if ema is not None:
            ema.copy_to()
        model.eval()
        acc, _, _ = sample_accuracy(pipe, clf, subjects, prompts, category_of, list(range(10000, 10004)), 4.5)
        with torch.no_grad():
            for p, r in zip(params, raw):
                p.copy_(r)
        model.train()
        snapshots.append({"step": step + 1, "subject": acc["subject"], "category": acc["category"]})
        snap_cpu[0] += cpu() - t1
        log(f"snapshot {snapshots[-1]}")

    t0 = cpu()
    losses = train_transformer(pipe, latents, caption_index, captions, null_caption, tcfg, seed=0, log=log,
                               on_step=on_step if snap_steps else None)
    train_cpu = cpu() - t0 - snap_cpu[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(pipe.transformer.state_dict(), CACHE / f"transformer-{args.name}.pt")

    t0 = cpu()
    seeds = list(range(10000, 10000 + args.eval_seeds))
    results = {}
    grids = []
    for g in (4.5, 1.0):
        acc, images, pred = sample_accuracy(pipe, clf, subjects, prompts, category_of, seeds, g)
        p = pred.reshape(25, len(seeds))
        distinct = float(np.mean([len(set(p[c * 5:(c + 1) * 5, j])) for c in range(5) for j in range(len(seeds))]))
        results[f"cfg{g}"] = {"subject": acc["subject"], "category": acc["category"],
                              "distinct_predictions_per_category_seed": distinct}
        grids.append(images.reshape(25, len(seeds), 3, 32, 32))
        log(f"CFG {g}: {results[f'cfg{g}']}")
    sample_cpu = cpu() - t0

    t0 = cpu()
    held = make_image_set(range(10000, 10000 + max(1, args.dc_images // 25)), hierarchy=args.hierarchy)
    held_lat = encode_latents(pipe.vae, held.images) * pipe.vae.config.scaling_factor
    truth_idx = torch.tensor([subjects.index(s) for s in held.subjects])
    dc_acc, dc_pred, dc_by_t = diffusion_classifier(pipe, held_lat, truth_idx, captions, args.prediction,
                                                    timesteps=(100, 300, 500, 700, 900))
    dc_cat = float(np.mean([category_of[subjects[i]] == category_of[s] for i, s in zip(dc_pred.tolist(), held.subjects)]))
    dc_cpu = cpu() - t0
    log(f"diffusion classifier: subject {dc_acc:.3f} category {dc_cat:.3f} by t {dc_by_t} ({dc_cpu:.0f} CPU-s)")

    RUNS.mkdir(exist_ok=True)
    record = {
        "name": args.name, "args": vars(args), "organism_config": {k: v for k, v in config.to_dict().items() if k != "vocabulary"},
        "train_config": tcfg.to_dict(), "vae_cached": vae_cached, "data_tag": DATA_TAG,
        "cpu_seconds": {"vae_and_latents": round(vae_cpu, 1), "annotator": round(clf_cpu, 1),
                        "transformer": round(train_cpu, 1), "snapshots": round(snap_cpu[0], 1),
                        "sampling_eval": round(sample_cpu, 1), "diffusion_classifier": round(dc_cpu, 1),
                        "total": round(cpu() - t_start, 1)},
        "annotator_fresh": clf_acc, "annotator_vae_recon": recon_acc, "samples": results, "snapshots": snapshots,
        "diffusion_classifier": {"subject": dc_acc, "category": dc_cat, "n": len(held_lat), "subject_by_t": dc_by_t},
        "final_loss_mean_last100": float(np.mean(losses[-100:])),
    }
    (RUNS / f"{args.name}.json").write_text(json.dumps(record, indent=1))
    # sample sheet: 25 rows, seeds × (CFG 4.5 | CFG 1.0)
    from PIL import Image
    img = np.concatenate([grids[0], np.ones_like(grids[0][:, :1]), grids[1]], axis=1)  # (25, 2n+1, 3, 32, 32)
    sheet = ((img.transpose(0, 3, 1, 4, 2).reshape(25 * 32, -1, 3) + 1) / 2).clip(0, 1)
    Image.fromarray((sheet * 255).astype(np.uint8)).save(RUNS / f"{args.name}.png")
    log(json.dumps(record["cpu_seconds"]))


if __name__ == "__main__":
    main()
