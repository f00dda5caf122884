r"""What an intervention did: the image classifier's verdicts, intervals over seeds, and an off-manifold score.

* :func:`load_classifier` — an image classifier by name (:data:`CLASSIFIERS`): anything with
  ``predict(images) -> subject names`` works; the organism's is the CNN annotator saved with it
  (``annotator``), or the nearest-centroid rule of :mod:`subspacelens.organism.evaluate` (enough for an
  organism whose subjects are colours); a GPU user registers their own (e.g. a CLIP zero-shot classifier).
* :func:`outcomes` — per image: shows the prompted subject / its category / the patch source's subject.
* :func:`seed_interval` — mean over images and a percentile bootstrap interval that resamples the seeds of
  every subject (the images of one subject differ only by seed), paired across conditions.
* :class:`OffManifold` — Mahalanobis distance under the natural covariance (Ledoit–Wolf shrinkage) of a
  block's activations, and the share of edited samples beyond the natural ``quantile`` of that distance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf


def _nearest_centroid(image_size: int, n_reference: int = 100):
    from subspacelens.organism.evaluate import NearestCentroid
    from subspacelens.organism.images import make_image_set

    reference = make_image_set(range(n_reference), size=image_size)
    return NearestCentroid.fit(reference.images, reference.subjects)


def _annotator(image_size: int, model: str):
    """The CNN annotator ``train_organism`` fitted and saved with the organism in folder ``model`` (on images of
    that organism's size, which ``image_size`` is; its global pooling takes any size)."""
    from subspacelens.organism.evaluate import CNNClassifier
    from subspacelens.paths import resolve

    folder = resolve(model) / "annotator"
    if not (folder / "annotator.json").exists():
        raise ValueError(f"classifier 'annotator': {folder} holds no annotator (an organism trained with "
                         "train_organism(..., evaluation=Evaluation()) saves one)")
    return CNNClassifier.load(folder)


CLASSIFIERS: dict[str, Callable] = {"annotator": _annotator, "nearest-centroid": _nearest_centroid}
"""Classifier name -> ``factory(image_size, **options)`` returning an object with ``predict(images)``."""


def load_classifier(name: str, *, image_size: int, **options):
    """The classifier ``name`` for images of side ``image_size``: a key of :data:`CLASSIFIERS`, or
    ``"package.module:factory"`` (imported; how a GPU user brings their own). ``ValueError`` naming it otherwise."""
    if ":" in name:
        import importlib

        module, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"classifier: cannot import {name!r} ({error})") from None
        return factory(image_size, **options)
    if name not in CLASSIFIERS:
        raise ValueError(f"classifier: {name!r} is not one of {sorted(CLASSIFIERS)} nor 'module:factory'")
    return CLASSIFIERS[name](image_size, **options)


def outcomes(predicted, subjects, seeds, category_of: dict, sources=None) -> pd.DataFrame:
    """One row per image: ``subject``, ``seed``, ``predicted``, ``shows_subject``, ``shows_category``, and with
    ``sources`` (the subject whose activations were patched or steered towards) ``source`` and ``switched``."""
    predicted, subjects = np.asarray(predicted).astype(str), np.asarray(subjects).astype(str)
    if not len(predicted) == len(subjects) == len(seeds):
        raise ValueError(f"predicted, subjects, seeds: lengths {len(predicted)}, {len(subjects)}, {len(seeds)} differ")
    to_category = np.vectorize(lambda s: category_of.get(s, "?"))
    table = pd.DataFrame({"subject": subjects, "seed": np.asarray(seeds, dtype=int), "predicted": predicted,
                          "shows_subject": predicted == subjects,
                          "shows_category": to_category(predicted) == to_category(subjects)})
    if sources is not None:
        sources = np.asarray(sources).astype(str)
        table["source"] = sources
        table["switched"] = predicted == sources
    return table


def seed_resamples(subjects, n_boot: int, seed: int = 0) -> np.ndarray:
    """``(n_boot, N)`` image indices: each subject's images (its seeds) resampled with replacement."""
    subjects = np.asarray(subjects)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(subjects == s) for s in np.unique(subjects)]
    return np.stack([np.concatenate([rng.choice(g, size=len(g)) for g in groups]) for _ in range(n_boot)])


def seed_interval(values, resamples: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    r"""``(mean, low, high)`` of per-image ``values`` over images: the percentile interval of the mean over
    ``resamples`` (from :func:`seed_resamples`). Pass a paired difference of two conditions on the same
    prompts and seeds as ``values`` for the interval of the difference."""
    values = np.asarray(values, dtype=np.float64)
    boot = values[resamples].mean(axis=1)
    tail = 50 * (1 - level)
    return float(values.mean()), float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail))


@dataclass(frozen=True)
class OffManifold:
    r"""The natural activations of one block (and step) as a Gaussian: mean :math:`\mu`, Ledoit–Wolf
    shrunk covariance :math:`\Sigma`. ``distance(X)`` is :math:`\sqrt{(x-\mu)^\top\Sigma^{-1}(x-\mu)}`
    per row; ``threshold`` is the ``quantile`` of the distances of natural held-out samples, so on natural
    activations :meth:`score` is about ``1 - quantile``."""

    mean: np.ndarray
    precision: np.ndarray
    threshold: float

    @classmethod
    def fit(cls, natural: np.ndarray, held_out: np.ndarray, quantile: float = 0.99) -> OffManifold:
        """``natural`` ``(N, d)`` rows fit the Gaussian; ``held_out`` ``(M, d)`` natural rows set the threshold."""
        if not 0 < quantile < 1:
            raise ValueError(f"quantile: {quantile!r} is not in (0, 1)")
        estimate = LedoitWolf().fit(np.asarray(natural, dtype=np.float64))
        model = cls(estimate.location_, estimate.precision_, np.inf)
        return cls(model.mean, model.precision, float(np.quantile(model.distance(held_out), quantile)))

    def distance(self, X: np.ndarray) -> np.ndarray:
        centred = np.asarray(X, dtype=np.float64) - self.mean
        return np.sqrt(np.einsum("nd,de,ne->n", centred, self.precision, centred))

    def score(self, X: np.ndarray) -> np.ndarray:
        """Per row: 1.0 when beyond the natural threshold (off the manifold), else 0.0."""
        return (self.distance(X) > self.threshold).astype(np.float64)
