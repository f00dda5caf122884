"""Did the organism learn its subjects? Sample it, and classify the samples with an annotator.

The book's analyses assume that the trained model *knows* the 25 subjects; this module measures that
instead of assuming it. An annotator is fitted on procedural images (the ground truth of what each subject
looks like) and asked which subject each *generated* image shows. Its accuracy on fresh procedural images is
the ceiling; chance is 1/25 for subjects, 1/5 for categories.

Two annotators: ``NearestCentroid`` on 4×4-average-pooled pixels (enough when a subject is a colour: pooling
keeps colour, background texture and rough layout and discards pixel noise and exact edges), and
``CNNClassifier``, a small CNN that reads silhouettes (the nested hierarchy, where colour is a nuisance).
``held_out_predictions`` samples every subject at seeds never used in training; ``accuracy_summary`` turns
its record into accuracies with Wilson intervals, per-subject accuracies and a confusion matrix.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from diffusers import PixArtAlphaPipeline
from safetensors.torch import load_file, save_file
from scipy.stats import binomtest

SAMPLING = {"num_inference_steps": 20, "guidance_scale": 4.5}  # the capture chapter's defaults (the blog's)


def generate(
    pipe: PixArtAlphaPipeline,
    prompts: list[str],
    seeds: list[int],
    *,
    num_inference_steps: int = SAMPLING["num_inference_steps"],
    guidance_scale: float = SAMPLING["guidance_scale"],
    batch_size: int = 125,
) -> np.ndarray:
    """One image per ``(prompt, seed)`` pair, as ``(N, 3, H, W)`` in [-1, 1] like the training images.

    Each sample has its own ``torch.Generator`` seeded with its seed, so a sample does not depend on the
    batch it was generated in.
    """
    if len(prompts) != len(seeds):
        raise ValueError(f"prompts and seeds must have the same length, got {len(prompts)} and {len(seeds)}")
    out = []
    for i in range(0, len(prompts), batch_size):
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds[i : i + batch_size]]
        images = pipe(
            list(prompts[i : i + batch_size]),
            generator=gens,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            use_resolution_binning=False,
            clean_caption=False,
            output_type="np",
        ).images
        out.append(images.transpose(0, 3, 1, 2) * 2 - 1)
    return np.concatenate(out).astype(np.float32)


def features(images: np.ndarray, pool: int = 4) -> np.ndarray:
    """``(N, 3, H, W)`` -> ``(N, 3 * H/pool * W/pool)`` average-pooled pixels, float64."""
    n, c, h, w = images.shape
    if h % pool or w % pool:
        raise ValueError(f"pool={pool} must divide the image size {h}x{w}")
    pooled = images.reshape(n, c, h // pool, pool, w // pool, pool).mean(axis=(3, 5))
    return pooled.reshape(n, -1).astype(np.float64)


@dataclass(frozen=True)
class NearestCentroid:
    """Class means of pooled training images; ``predict`` returns the label of the closest mean (ℓ2)."""

    classes: np.ndarray
    centroids: np.ndarray

    @classmethod
    def fit(cls, images: np.ndarray, labels) -> NearestCentroid:
        labels = np.asarray(labels)
        if len(labels) != len(images):
            raise ValueError(f"labels has {len(labels)} entries for {len(images)} images")
        x = features(images)
        classes = np.unique(labels)
        return cls(classes, np.stack([x[labels == c].mean(axis=0) for c in classes]))

    def predict(self, images: np.ndarray) -> np.ndarray:
        x = features(images)
        d2 = ((x[:, None, :] - self.centroids[None]) ** 2).sum(axis=-1)
        return self.classes[d2.argmin(axis=1)]


def accuracy(predicted, truth) -> float:
    """Fraction of positions where ``predicted`` equals ``truth``."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    return float((predicted == truth).mean())


def subject_and_category_accuracy(
    classifier: NearestCentroid, images: np.ndarray, subjects, category_of: dict[str, str]
) -> dict[str, float]:
    """Subject accuracy (chance 1/25) and category accuracy of the predicted subject's category (chance 1/5)."""
    predicted = classifier.predict(images)
    to_category = np.vectorize(category_of.get)
    return {
        "subject": accuracy(predicted, subjects),
        "category": accuracy(to_category(predicted), to_category(np.asarray(subjects))),
        "subject_chance": 1 / len(classifier.classes),
        "category_chance": 1 / len(set(category_of.values())),
    }


class _AnnotatorNet(torch.nn.Module):
    """Three conv stages (32→16→8→4 px) and a linear read-out: about 60k parameters."""

    def __init__(self, n_classes: int, width: int = 32) -> None:
        super().__init__()
        w = width
        layers: list[torch.nn.Module] = []
        for c_in, c_out in ((3, w), (w, 2 * w), (2 * w, 2 * w)):
            layers += [torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.BatchNorm2d(c_out), torch.nn.ReLU(),
                       torch.nn.MaxPool2d(2)]
        self.features = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(2 * w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).amax(dim=(2, 3)))


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-image brightness/contrast/colour shifts, extra pixel noise and random blur: what samples differ by."""
    b = len(x)
    gain = 1 + 0.25 * (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1)
    shift = 0.25 * (torch.rand(b, 3, 1, 1, generator=gen) * 2 - 1)
    x = x * gain + shift + 0.08 * torch.rand(b, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    blur = torch.rand(b, generator=gen) < 0.3
    if blur.any():
        k = torch.tensor([0.25, 0.5, 0.25])
        k2 = (k[:, None] * k[None]).expand(3, 1, 3, 3)
        x[blur] = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), k2, groups=3)
    return x


@dataclass
class CNNClassifier:
    """A small CNN annotator: ``predict(images)`` returns subject names, like ``NearestCentroid``."""

    classes: np.ndarray
    net: torch.nn.Module

    @classmethod
    def fit(cls, images: np.ndarray, labels, *, epochs: int = 6, batch_size: int = 64, lr: float = 3e-3,
            seed: int = 0, augment: bool = True) -> CNNClassifier:
        labels = np.asarray(labels)
        if len(labels) != len(images):
            raise ValueError(f"labels has {len(labels)} entries for {len(images)} images")
        classes = np.unique(labels)
        y_all = torch.from_numpy(np.searchsorted(classes, labels))
        x_all = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        gen = torch.Generator().manual_seed(seed)
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        net = _AnnotatorNet(len(classes))
        torch.random.set_rng_state(state)
        steps = epochs * math.ceil(len(x_all) / batch_size)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(x_all), generator=gen)
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                x = _augment(x_all[idx].clone(), gen) if augment else x_all[idx]
                loss = F.cross_entropy(net(x), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        return cls(classes, net)

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        logits = torch.cat([self.net(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        return self.classes[logits.argmax(dim=1).numpy()]

    def save(self, folder: str | Path) -> Path:
        """``folder/annotator.safetensors`` (the weights) and ``folder/annotator.json`` (the class names)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, folder / "annotator.safetensors")
        (folder / "annotator.json").write_text(json.dumps({"classes": self.classes.tolist()}, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> CNNClassifier:
        folder = Path(folder)
        classes = np.asarray(json.loads((folder / "annotator.json").read_text())["classes"])
        net = _AnnotatorNet(len(classes))
        net.load_state_dict(load_file(folder / "annotator.safetensors"))
        return cls(classes, net.eval())


def fit_classifier(image_set, kind: str = "centroid", **kwargs):
    """A subject classifier fitted on ``image_set`` (an ``images.ImageSet``): ``.predict(images)`` -> subject names.

    ``kind="centroid"`` (the default): ``NearestCentroid`` on pooled pixels, enough when subject = colour
    (the factorial hierarchy). ``kind="cnn"``: ``CNNClassifier``, a small CNN trained with augmentation, which
    reads silhouettes (the nested hierarchy, where colour is a nuisance). ``kwargs`` go to ``CNNClassifier.fit``.
    """
    if kind == "centroid":
        return NearestCentroid.fit(image_set.images, image_set.subjects)
    if kind == "cnn":
        return CNNClassifier.fit(image_set.images, image_set.subjects, **kwargs)
    raise ValueError(f"unknown classifier kind {kind!r}; known: 'centroid', 'cnn'")


#: What a trained organism must reach on held-out samples (issue 7): shares of samples the annotator reads as
#: the prompted subject and as its category; the annotator itself must read fresh procedural images this well.
FLOORS = {"subject": 0.90, "category": 0.95}
ANNOTATOR_FLOOR = 0.98

HELD_OUT_SEEDS = tuple(range(10_000, 10_008))  # never drawn in training (training images use seeds 0 … 399)


@dataclass(frozen=True)
class Evaluation:
    """What ``train.train_organism`` measures besides the loss, on seeds that no training image used.

    The annotator is a ``CNNClassifier`` fitted on ``annotator_seeds`` and checked on ``fresh_seeds``; the trained
    model and its twin are sampled at ``seeds`` after training, and the EMA weights at ``snapshot_seeds`` every
    ``snapshot_every`` steps (accuracy against training steps).
    """

    seeds: tuple[int, ...] = HELD_OUT_SEEDS
    snapshot_seeds: tuple[int, ...] = HELD_OUT_SEEDS[:4]
    snapshot_every: int | None = 500
    annotator_seeds: tuple[int, ...] = tuple(range(20_000, 20_200))
    fresh_seeds: tuple[int, ...] = tuple(range(30_000, 30_020))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def held_out_predictions(pipe: PixArtAlphaPipeline, annotator, subject_prompts: dict[str, str],
                         seeds=HELD_OUT_SEEDS, **sampling) -> dict[str, list]:
    """Sample every subject at every seed (``generate``'s sampling settings unless ``sampling`` says otherwise)
    and annotate the samples: ``{"subject", "seed", "predicted"}`` lists, one entry per sample (JSON-ready)."""
    subjects = [s for s in subject_prompts for _ in seeds]
    sample_seeds = [int(seed) for _ in subject_prompts for seed in seeds]
    images = generate(pipe, [subject_prompts[s] for s in subjects], sample_seeds, **sampling)
    return {"subject": subjects, "seed": sample_seeds, "predicted": annotator.predict(images).tolist()}


def _rate(hits: np.ndarray) -> dict[str, float]:
    """A proportion with its 95 % Wilson interval."""
    k, n = int(hits.sum()), len(hits)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {"rate": k / n, "low": float(ci.low), "high": float(ci.high), "n": n}


def accuracy_summary(record: dict[str, list], category_of: dict[str, str], subjects: list[str]) -> dict:
    """From ``held_out_predictions``' record: subject and category accuracy (each a ``_rate``), per-subject
    accuracy (a Series in ``subjects`` order) and the confusion matrix (rows: prompted subject, columns: the
    annotator's reading, both in ``subjects`` order; counts)."""
    truth, predicted = np.asarray(record["subject"]), np.asarray(record["predicted"])
    if len(truth) != len(predicted):
        raise ValueError(f"record has {len(truth)} prompted subjects and {len(predicted)} predictions")
    to_category = np.vectorize(category_of.__getitem__)
    confusion = pd.crosstab(pd.Categorical(truth, subjects), pd.Categorical(predicted, subjects), dropna=False)
    confusion.index.name, confusion.columns.name = "prompted", "annotated"
    return {
        "subject": _rate(truth == predicted),
        "category": _rate(to_category(truth) == to_category(predicted)),
        "per_subject": pd.Series(truth == predicted).groupby(truth).mean().reindex(subjects),
        "confusion": confusion,
    }


def accuracy_against_steps(log: dict, category_of: dict[str, str], subjects: list[str]) -> pd.DataFrame:
    """One row per (evaluation, level) of a training log: its EMA snapshots before the last step and the final
    evaluation (at the last step, on ``Evaluation.seeds``), with ``step``, ``level`` ("subject" or
    "category"), ``rate``, ``low``, ``high`` (95 % Wilson) and ``n``."""
    evaluation = log["evaluation"]
    last = len(log["losses"])
    # a snapshot at the last step sees the same weights as the final evaluation, on fewer seeds
    points = [(snapshot["step"], "snapshot", snapshot) for snapshot in evaluation["snapshots"] if snapshot["step"] < last]
    points.append((last, "final", evaluation["trained"]))
    rows = []
    for step, kind, record in points:
        summary = accuracy_summary(record, category_of, subjects)
        rows += [{"seed": log["seed"], "step": step, "evaluation": kind, "level": level, **summary[level]}
                 for level in ("subject", "category")]
    return pd.DataFrame(rows)
