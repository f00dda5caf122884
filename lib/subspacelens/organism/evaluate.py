"""Did the organism learn its subjects? Sample it, and classify the samples with a nearest-centroid rule.

The book's analyses assume that the trained model *knows* the 25 subjects; this module measures that
instead of assuming it. A nearest-centroid classifier is fitted on procedural training images (the
ground truth of what each subject looks like) and asked which subject each *generated* image shows.
Its accuracy on fresh procedural images is the ceiling; chance is 1/25 for subjects, 1/5 for categories.

The classifier works on 4×4-average-pooled pixels: pooling keeps colour, background texture and the rough
layout (what distinguishes the subjects) and discards pixel noise and exact edges (what the seed varies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
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
