"""Training the organism: first a small VAE on the procedural images, then the transformer (DDPM).

The recipe is PixArt-α's, shrunk:

* the **text encoder is frozen** at its random initialisation — it plays the role of PixArt's frozen,
  pre-trained T5: a fixed map from prompt to token embeddings that the transformer learns to read;
* the **VAE** is trained first (reconstruction + a small KL term, as in latent diffusion) and then frozen;
  its latents are standardised per channel (folded into its 1×1 quant convs, see ``standardise_latents``), the
  per-channel version of setting ``scaling_factor`` to ``1 / std`` as SD/PixArt's 0.18215 was chosen;
* the **transformer** is trained with the standard DDPM epsilon objective (or, with ``prediction="v_prediction"``, the
  velocity, and the sampler told so; Min-SNR-γ weighted either way) under the pipeline's own
  noise schedule (``DDPMScheduler.from_config(pipe.scheduler.config)``: same betas, same 1000 steps), with the
  caption replaced by the empty prompt's embedding 10% of the time (classifier-free guidance dropout:
  the pipeline's default negative prompt is ``""``), AdamW, warm-up then cosine decay.

Everything is seeded; on the same machine and thread count the run is bit-reproducible.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import diffusers
import numpy as np
import torch
import torch.nn.functional as F
import transformers
from diffusers import AutoencoderKL, DDPMScheduler, PixArtAlphaPipeline

from subspacelens.organism.build import OrganismConfig, build_pipeline
from subspacelens.organism.evaluate import SAMPLING, Evaluation, fit_classifier, held_out_predictions
from subspacelens.organism.images import make_image_set
from subspacelens.prompts import load_prompt_set

Logger = Callable[[str], None]
LOG_NAME = "training_log.json"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings for both stages (the model sizes live in ``OrganismConfig``)."""

    vae_steps: int = 300
    vae_batch_size: int = 32
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-4
    steps: int = 2500
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    p_uncond: float = 0.1  # classifier-free-guidance caption dropout
    snr_gamma: float | None = 5.0  # Min-SNR-γ loss weighting (Hang et al. 2023); None: the plain ε-MSE
    snr_floor: float | None = None  # x0-space weight clamp(SNR, floor, γ): 1.0 ~ v-loss at high noise; None: off
    images_per_subject: int = 400
    hierarchy: str = "factorial"  # the procedural data set: images.HIERARCHIES
    ema_decay: float | None = None  # None: no EMA; else the EMA of the weights (with warm-up) is what is saved
    timestep_sampling: str = "uniform"  # or "logit-normal": t / T = sigmoid(N(logit_mean, logit_std)), as SD3
    logit_mean: float = 0.0
    logit_std: float = 1.0
    prediction: str = "epsilon"  # what the transformer predicts: PREDICTIONS (the sampler is told the same)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def nested(cls) -> TrainConfig:
        """The recipe that teaches the 28-block organism the nested subjects (issue 7's pilots, ``pilots/RESULTS.md``).

        v-prediction gives the x₀ error a weight of about 1 at high noise, where the ε objective's weight (SNR)
        vanishes and the sampler fixes an image's layout; EMA weights with a higher learning rate and 3,500 steps.
        """
        return cls(steps=3500, lr=2e-3, warmup_steps=50, ema_decay=0.999, hierarchy="nested", prediction="v_prediction")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of ``to_dict``; keys a newer config added take their defaults (old logs load)."""
        return cls(**d)


def _schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to zero (a short run needs no EMA)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _optimiser(params, lr: float, weight_decay: float, steps: int, warmup: int):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, steps, warmup))
    return opt, sched


PREDICTIONS = ("epsilon", "v_prediction")
"""Training targets (diffusers' ``prediction_type`` names): the noise ε (PixArt-α's), or the velocity
:math:`v = \\sqrt{\\bar\\alpha}\\,\\epsilon - \\sqrt{1-\\bar\\alpha}\\,x_0` (Salimans & Ho 2022)."""


def prediction_target(
    x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor, prediction: str
) -> torch.Tensor:
    """What the transformer is trained to output for ``x_t = √ᾱ x0 + √(1-ᾱ) ε``: ε, or v = √ᾱ ε − √(1-ᾱ) x0."""
    _check_prediction("prediction", prediction)
    if prediction == "epsilon":
        return noise
    return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0


def _check_prediction(name: str, prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"{name}: unknown {prediction!r}; known: {PREDICTIONS}")


def loss_weight(alpha_bar: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    r"""Per-sample weight of the target's MSE, Min-SNR-γ for either target: an x0 error weighs
    :math:`\min(\mathrm{SNR}, γ)` in both, so the weight divides out what the target's MSE already puts on it
    (SNR for ε, ``_min_snr_weight``; SNR + 1 for v). ``snr_gamma=None``: the plain MSE of either.

    The two objectives then differ in what the network outputs, not in how much each timestep counts. That
    matters at high noise, where the first sampling steps fix a sample's layout: the sampler's clean estimate
    is :math:`(x_t - \sqrt{1-\bar\alpha}\,\hat\epsilon)/\sqrt{\bar\alpha}` from ε, an error amplified
    1/√ᾱ ≈ 160 times at t = 999, and :math:`\sqrt{\bar\alpha}\,x_t - \sqrt{1-\bar\alpha}\,\hat v` from v,
    whose error passes unamplified.
    """
    if cfg.prediction != "v_prediction":
        return _min_snr_weight(alpha_bar, cfg.snr_gamma, cfg.snr_floor)
    if cfg.snr_gamma is None:  # the plain v-MSE, as None gives the plain ε-MSE
        return torch.ones_like(alpha_bar)
    snr = alpha_bar / (1 - alpha_bar)
    return snr.clamp(max=cfg.snr_gamma) / (snr + 1)


def sample_timesteps(b: int, T: int, cfg: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """``b`` training timesteps in ``[0, T)``: uniform (DDPM), or logit-normal (SD3's density, mid-noise heavy)."""
    if cfg.timestep_sampling == "uniform":
        return torch.randint(0, T, (b,), generator=generator)
    if cfg.timestep_sampling == "logit-normal":
        u = torch.sigmoid(cfg.logit_mean + cfg.logit_std * torch.randn(b, generator=generator))
        return (u * T).long().clamp(0, T - 1)
    raise ValueError(f"unknown timestep_sampling {cfg.timestep_sampling!r}; known: 'uniform', 'logit-normal'")


class EMA:
    """Exponential moving average of parameters, ``decay`` warmed up as ``min(decay, (1 + n) / (10 + n))``."""

    def __init__(self, params: list[torch.nn.Parameter], decay: float) -> None:
        self.params, self.decay, self.n = params, decay, 0
        self.shadow = [p.detach().clone() for p in params]

    @torch.no_grad()
    def update(self) -> None:
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        self.n += 1
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - d)

    @torch.no_grad()
    def copy_to(self, params: list[torch.nn.Parameter] | None = None) -> None:
        for p, s in zip(params or self.params, self.shadow):
            p.copy_(s)


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
    """``steps`` index batches drawn with replacement-free epochs, reproducible from ``generator``."""
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        batch, order = order[:batch_size], order[batch_size:]
        yield batch


def train_vae(vae: AutoencoderKL, images: np.ndarray, cfg: TrainConfig, seed: int, log: Logger | None = None) -> list[float]:
    """Fit the VAE to ``images`` (N, 3, H, W) in [-1, 1]; returns the loss per step. Leaves it in eval mode."""
    x_all = torch.from_numpy(images)
    gen = torch.Generator().manual_seed(seed)
    vae.train()
    opt, sched = _optimiser(vae.parameters(), cfg.vae_lr, 0.0, cfg.vae_steps, min(50, cfg.vae_steps))
    losses = []
    for step, idx in enumerate(_batches(len(x_all), cfg.vae_batch_size, cfg.vae_steps, gen)):
        x = x_all[idx]
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
        recon = vae.decode(z).sample
        loss = F.mse_loss(recon, x) + cfg.vae_kl_weight * posterior.kl().mean() / x[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log and (step % 100 == 0 or step == cfg.vae_steps - 1):
            log(f"vae step {step:5d} loss {loss.item():.4f}")
    vae.eval().requires_grad_(False)
    return losses


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Posterior means of ``images`` (unscaled); the mean rather than a sample keeps the data set fixed."""
    chunks = [vae.encode(torch.from_numpy(images[i : i + batch_size])).latent_dist.mean for i in range(0, len(images), batch_size)]
    return torch.cat(chunks)


@torch.no_grad()
def standardise_latents(vae: AutoencoderKL, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold a per-channel affine map into the VAE so its latents are zero-mean, unit-variance per channel.

    A freshly trained small VAE has latent channels with different means and scales (here up to 3×
    apart). ``PixArtAlphaPipeline`` only knows one global ``scaling_factor``, so the diffusion model
    would see shifted, unequal channels, and its errors on the narrow channels would be amplified on
    decoding (visible as colour casts). Rescaling ``quant_conv``'s mean (and log-variance) outputs and
    absorbing the inverse into ``post_quant_conv`` changes no reconstruction, and lets ``scaling_factor = 1``.
    Returns the per-channel mean and std that were removed; ``latents`` are the VAE's unscaled means.
    """
    mu, sigma = latents.mean(dim=(0, 2, 3)), latents.std(dim=(0, 2, 3))
    c = len(mu)
    q, pq = vae.quant_conv, vae.post_quant_conv
    q.weight[:c] /= sigma.view(c, 1, 1, 1)
    q.bias[:c] = (q.bias[:c] - mu) / sigma
    q.bias[c:] -= 2 * sigma.log()
    pq.bias += (pq.weight[:, :, 0, 0] * mu).sum(dim=1)
    pq.weight *= sigma.view(1, c, 1, 1)
    vae.register_to_config(scaling_factor=1.0)
    return mu, sigma


@torch.no_grad()
def encode_captions(pipe: PixArtAlphaPipeline, prompts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-T5 embeddings and attention masks, through the pipeline's own ``encode_prompt``.

    Padding length does not change the embedding of the real tokens (T5 and the transformer's cross-attention
    both mask padding), so training at ``max_length`` matches sampling at the pipeline's default 120.
    """
    embeds, mask, _, _ = pipe.encode_prompt(
        prompts, do_classifier_free_guidance=False, device=torch.device("cpu"), clean_caption=False,
        max_sequence_length=max_length,
    )
    return embeds, mask


def train_transformer(
    pipe: PixArtAlphaPipeline,
    latents: torch.Tensor,
    caption_index: torch.Tensor,
    captions: tuple[torch.Tensor, torch.Tensor],
    null_caption: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    seed: int,
    log: Logger | None = None,
    on_step: Callable[[int, EMA | None], None] | None = None,
) -> list[float]:
    """DDPM training of ``pipe.transformer`` on scaled ``latents`` to predict ``cfg.prediction``; returns loss per step.

    ``caption_index[i]`` picks the row of ``captions`` (embeddings, mask) that belongs to latent ``i``;
    with probability ``cfg.p_uncond`` a sample gets ``null_caption`` (the embedding of ``""``) instead.
    With ``cfg.ema_decay`` the model ends holding the EMA weights. ``on_step(step, ema)`` is called after each
    optimiser step (for snapshots); the model is in train mode and holds the raw weights then.
    """
    _check_prediction("cfg.prediction", cfg.prediction)
    model = pipe.transformer
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    alphas_cumprod = noise_scheduler.alphas_cumprod
    T = noise_scheduler.config.num_train_timesteps
    embeds, mask = captions
    null_embeds, null_mask = null_caption
    gen = torch.Generator().manual_seed(seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = _optimiser(params, cfg.lr, cfg.weight_decay, cfg.steps, cfg.warmup_steps)
    ema = EMA(params, cfg.ema_decay) if cfg.ema_decay is not None else None
    no_cond = {"resolution": None, "aspect_ratio": None}
    losses = []
    for step, idx in enumerate(_batches(len(latents), cfg.batch_size, cfg.steps, gen)):
        x0 = latents[idx]
        b = len(idx)
        noise = torch.randn(x0.shape, generator=gen)
        t = sample_timesteps(b, T, cfg, gen)
        a = alphas_cumprod[t].view(b, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        drop = (torch.rand(b, generator=gen) < cfg.p_uncond).view(b, 1, 1)
        e = torch.where(drop, null_embeds.expand(b, -1, -1), embeds[caption_index[idx]])
        m = torch.where(drop.view(b, 1), null_mask.expand(b, -1), mask[caption_index[idx]])
        pred = model(xt, encoder_hidden_states=e, encoder_attention_mask=m, timestep=t,
                     added_cond_kwargs=no_cond, return_dict=False)[0]
        target = prediction_target(x0, noise, a, cfg.prediction)
        per_sample = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * loss_weight(a.view(b), cfg)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update()
        losses.append(loss.item())
        if log and (step % 50 == 0 or step == cfg.steps - 1):
            log(f"transformer step {step:5d} loss {loss.item():.4f}")
        if on_step is not None:
            on_step(step, ema)
    if ema is not None:
        ema.copy_to()
    model.eval()
    return losses


def _min_snr_weight(alpha_bar: torch.Tensor, gamma: float | None, floor: float | None = None) -> torch.Tensor:
    """Min-SNR-γ weights for ε-prediction, ``min(SNR, γ) / SNR`` with ``SNR = ᾱ / (1 - ᾱ)``.

    The plain ε-MSE spends most of its gradient on nearly clean inputs; a short run then never learns the
    high-noise steps that fix an image's colours and layout (its first sampling steps). The weights keep
    the ε objective and its optimum, and only shift effort towards noisy timesteps.

    In x0 terms the ε-MSE weighs an x0 error by SNR, so at high noise (SNR ≪ 1, where a sample's layout is
    decided) what the caption says barely enters the loss. ``floor`` raises that x0-space weight to
    ``clamp(SNR, floor, γ)`` (ε-space ``clamp(SNR, floor, γ) / SNR``); ``floor = 1`` is about the v-prediction loss
    (x0 weight SNR + 1) at high noise.
    """
    snr = alpha_bar / (1 - alpha_bar)
    if gamma is None and floor is None:
        return torch.ones_like(alpha_bar)
    w = snr if gamma is None else snr.clamp(max=gamma)
    if floor is not None:
        w = w.clamp(min=floor) if gamma is None else torch.maximum(w, torch.full_like(w, floor))
    return w / snr


def use_prediction(pipe: PixArtAlphaPipeline, prediction: str) -> None:
    """Tell the pipeline's sampler what its transformer predicts (saved with it, so ``from_pretrained`` knows)."""
    _check_prediction("prediction", prediction)
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=prediction)


class Stopwatch:
    """Wall-clock and process-CPU seconds per named stage, for the training log.

    Both are kept because the machine may be shared: wall time is what a reader waits, CPU time what the
    training costs regardless of other load.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    def __call__(self, name: str):
        watch = self

        class _Timer:
            def __enter__(self):
                self.start, self.cpu = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                watch.seconds[name] = round(time.perf_counter() - self.start, 2)
                watch.cpu_seconds[name] = round(time.process_time() - self.cpu, 2)

        return _Timer()


def subject_prompts(prompt_set: str = "v2") -> dict[str, str]:
    """Subject label -> the bare prompt the book uses for it (``"lion" -> "a lion"``)."""
    samples = load_prompt_set(prompt_set).samples
    return dict(zip(samples["subject"], samples["prompt"]))


def save_organism(pipe: PixArtAlphaPipeline, folder: str | Path, half: bool = True) -> Path:
    """``save_pretrained`` with safetensors, so that ``DiffusionPipeline.from_pretrained(folder)`` loads it.

    With ``half`` the transformer and VAE weights are stored in float16 (halving the committed size); diffusers
    loads them back as float32 unless asked otherwise, and the in-memory pipeline is rounded the same way so
    that it equals what was saved. The text encoder stays float32: ``transformers`` would keep it float16 on
    loading, and it is tiny.
    """
    folder = Path(folder)
    stored = (pipe.transformer, pipe.vae) if half else ()
    for module in stored:
        module.to(torch.float16)
    try:
        pipe.save_pretrained(folder, safe_serialization=True)
    finally:
        for module in stored:
            module.to(torch.float32)
    return folder


def random_init_twin(trained: PixArtAlphaPipeline, config: OrganismConfig, seed: int) -> PixArtAlphaPipeline:
    """The control: the transformer exactly as it was before training, every other component the trained one's."""
    fresh = build_pipeline(config, seed=seed)
    twin = PixArtAlphaPipeline(
        tokenizer=trained.tokenizer,
        text_encoder=trained.text_encoder,
        vae=trained.vae,
        transformer=fresh.transformer,
        scheduler=trained.scheduler,
    )
    twin.set_progress_bar_config(disable=True)
    return twin


def train_organism(
    out: str | Path,
    config: OrganismConfig | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    num_threads: int = 1,
    log: Logger | None = print,
    name: str = "organism",
    evaluation: Evaluation | None = None,
) -> dict:
    """The whole recipe: data, VAE, latents, frozen-T5 captions, DDPM training; saves both pipelines and the log.

    Writes ``out/<name>/`` (trained), ``out/<name>-random-init/`` (its twin) and ``out/<name>/training_log.json``.
    ``num_threads`` is fixed (and logged) because CPU float reductions depend on it; one thread is also the
    faster choice on a shared 2-core machine.

    With ``evaluation`` the log also holds what the model renders at held-out seeds (``evaluate.Evaluation``): a
    CNN annotator is fitted and saved in ``out/<name>/annotator/``, the EMA weights are sampled every
    ``snapshot_every`` steps, and the trained model and its twin once at the end (``held_out_predictions``
    records). Snapshot time is logged apart from the transformer's training time.
    """
    config = config or OrganismConfig.default()
    train_cfg = train_cfg or TrainConfig()
    out = Path(out)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    watch = Stopwatch()
    evaluated: dict = {}
    try:
        with watch("total"):
            pipe = build_pipeline(config, seed=seed)
            use_prediction(pipe, train_cfg.prediction)
            with watch("data"):
                data = make_image_set(range(train_cfg.images_per_subject), size=config.image_size,
                                      hierarchy=train_cfg.hierarchy)
            with watch("vae"):
                vae_losses = train_vae(pipe.vae, data.images, train_cfg, seed=seed, log=log)
            with watch("latents"):
                mu, sigma = standardise_latents(pipe.vae, encode_latents(pipe.vae, data.images))
                latents = encode_latents(pipe.vae, data.images) * pipe.vae.config.scaling_factor
                prompts = subject_prompts()
                subjects = list(prompts)
                captions = encode_captions(pipe, [prompts[s] for s in subjects], config.max_length)
                null_caption = encode_captions(pipe, [""], config.max_length)
                caption_index = torch.tensor([subjects.index(s) for s in data.subjects])
            on_step = None
            if evaluation is not None:
                with watch("annotator"):
                    annotator, evaluated["annotator"] = _fit_annotator(evaluation, config, train_cfg, pipe)
                snapshot = _Snapshots(pipe, annotator, prompts, evaluation, log)
                on_step = snapshot if evaluation.snapshot_every else None
            with watch("transformer"):
                losses = train_transformer(pipe, latents, caption_index, captions, null_caption, train_cfg, seed=seed,
                                           log=log, on_step=on_step)
            twin = random_init_twin(pipe, config, seed)
            if evaluation is not None:
                with watch("evaluation"):
                    evaluated["snapshots"] = snapshot.records
                    evaluated["trained"] = held_out_predictions(pipe, annotator, prompts, evaluation.seeds)
                    evaluated["random_init"] = held_out_predictions(twin, annotator, prompts, evaluation.seeds)
            # Saved into a staging folder and moved into place only once the log is written, so a failed or
            # interrupted run leaves an earlier organism of the same name as it was.
            staging = out / f".{name}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            with watch("save"):
                save_organism(pipe, staging / name)
                save_organism(twin, staging / f"{name}-random-init")
                if evaluation is not None:
                    annotator.save(staging / name / "annotator")
    finally:
        torch.set_num_threads(previous_threads)
    if evaluation is not None:
        watch.seconds["snapshots"], watch.cpu_seconds["snapshots"] = snapshot.seconds, snapshot.cpu_seconds
        watch.seconds["transformer"] = round(watch.seconds["transformer"] - snapshot.seconds, 2)
        watch.cpu_seconds["transformer"] = round(watch.cpu_seconds["transformer"] - snapshot.cpu_seconds, 2)
    record = {
        "name": name,
        "seed": seed,
        "num_threads": num_threads,
        "organism_config": config.to_dict(),
        "train_config": train_cfg.to_dict(),
        "vae_latent_mean_removed": [round(float(x), 5) for x in mu],
        "vae_latent_std_removed": [round(float(x), 5) for x in sigma],
        "latent_std_after": round(float(latents.std()), 5),
        "wall_seconds": watch.seconds,
        "cpu_seconds": watch.cpu_seconds,
        "vae_losses": [round(x, 6) for x in vae_losses],
        "losses": [round(x, 6) for x in losses],
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__},
    }
    if evaluation is not None:
        record["evaluation"] = {"settings": evaluation.to_dict(), "sampling": dict(SAMPLING), **evaluated}
    (staging / name / LOG_NAME).write_text(json.dumps(record, indent=1))
    for folder in (name, f"{name}-random-init"):
        shutil.rmtree(out / folder, ignore_errors=True)
        (staging / folder).rename(out / folder)
    staging.rmdir()
    return record


def _fit_annotator(evaluation: Evaluation, config: OrganismConfig, train_cfg: TrainConfig, pipe: PixArtAlphaPipeline):
    """The CNN annotator and its accuracy on fresh images and on the VAE's reconstructions of them (the ceiling
    a sample can reach through this VAE)."""
    def images(seeds):
        return make_image_set(seeds, size=config.image_size, hierarchy=train_cfg.hierarchy)

    annotator = fit_classifier(images(evaluation.annotator_seeds), kind="cnn")
    fresh = images(evaluation.fresh_seeds)
    with torch.no_grad():
        reconstructed = pipe.vae.decode(encode_latents(pipe.vae, fresh.images)).sample.numpy()
    record = {
        "fresh": {"subject": fresh.subjects.tolist(), "predicted": annotator.predict(fresh.images).tolist()},
        "vae_reconstructions": {"subject": fresh.subjects.tolist(), "predicted": annotator.predict(reconstructed).tolist()},
    }
    return annotator, record


class _Snapshots:
    """``on_step`` for ``train_transformer``: every ``snapshot_every`` steps, sample the EMA weights (or the raw
    ones without EMA) at the snapshot seeds, then put the raw weights back; keeps its own time."""

    def __init__(self, pipe, annotator, prompts, evaluation: Evaluation, log: Logger | None) -> None:
        self.pipe, self.annotator, self.prompts, self.evaluation, self.log = pipe, annotator, prompts, evaluation, log
        self.records: list[dict] = []
        self.seconds = self.cpu_seconds = 0.0

    @torch.no_grad()
    def __call__(self, step: int, ema: EMA | None) -> None:
        if (step + 1) % self.evaluation.snapshot_every:
            return
        start, cpu = time.perf_counter(), time.process_time()
        model = self.pipe.transformer
        raw = [p.detach().clone() for p in model.parameters() if p.requires_grad]
        if ema is not None:
            ema.copy_to()
        model.eval()
        record = held_out_predictions(self.pipe, self.annotator, self.prompts, self.evaluation.snapshot_seeds)
        for p, r in zip((p for p in model.parameters() if p.requires_grad), raw):
            p.copy_(r)
        model.train()
        self.records.append({"step": step + 1, **record})
        if self.log:
            hits = np.mean(np.asarray(record["subject"]) == np.asarray(record["predicted"]))
            self.log(f"snapshot at step {step + 1}: subject accuracy {hits:.3f}")
        self.seconds = round(self.seconds + time.perf_counter() - start, 2)
        self.cpu_seconds = round(self.cpu_seconds + time.process_time() - cpu, 2)
