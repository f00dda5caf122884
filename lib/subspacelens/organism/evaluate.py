"""Did the organism learn its subjects? Sample it, and classify the samples with a nearest-centroid rule.

The book's analyses assume that the trained model *knows* the 25 subjects; this module measures that
instead of assuming it. A nearest-centroid classifier is fitted on procedural training images (the
ground truth of what each subject looks like) and asked which subject each *generated* image shows.
Its accuracy on fresh procedural images is the ceiling; chance is 1/25 for subjects, 1/5 for categories.

The classifier works on 4×4-average-pooled pixels: pooling keeps colour, background texture and the rough
layout (what distinguishes the subjects) and discards pixel noise and exact edges (what the seed varies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import PixArtAlphaPipeline

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
