r"""Scores that put the lenses side by side: how much of each known factor a subspace or a latent carries,
and how much the subspaces of different lenses share.

* :func:`probe_r2`: a cross-validated linear probe from a subspace's coordinates to a factor (one-hot
  classes, or the standardised value), scored by :math:`R^2 = 1 - \sum (y - \hat y)^2 / \sum (y - \bar y)^2`
  over every target column: the share of the factor's variance the subspace predicts linearly
  (≈ 0 or below for a subspace that carries none of it).
* :func:`latent_auc`: for every latent and every class of every factor the area under the ROC curve of
  the latent's activation as a detector of that class (Mann–Whitney from ranks; 0.5 = chance). A latent's
  best-matching factor is the one of its best class.
* :func:`label_subspace`: the subspace a factor's labels define — the span of its centred class means,
  weighted by class size, truncated to ``energy`` of their spread (the between-class subspace of LDA).
* :func:`basis_overlap`: mean ``cos²`` of the principal angles between two subspaces, over ``min(k_a, k_b)``
  angles (containment, the convention of :mod:`subspacelens.metrics.overlap`) or ``max(k_a, k_b)`` angles
  (``strict``: 1 only for the same subspace; the planted-recovery criterion).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.linalg import orth
from scipy.stats import rankdata
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_predict

from ..metrics._checks import as_fraction, as_positive_int, as_samples

__all__ = ["atom_recovery", "atom_span", "basis_overlap", "best_factor", "best_overlaps", "label_subspace", "latent_auc", "probe_r2", "probe_table"]

PROBE_RIDGE = 1e-3
"""Ridge penalty of the probe, relative to the coordinates' mean variance: only guards against singular
designs; the probe is otherwise ordinary least squares."""


def probe_r2(coordinates, factor, *, n_folds=5, seed=0) -> float:
    """Cross-validated R² of a linear probe from ``coordinates`` (``N × k``) to ``factor`` (a :class:`Factor`)."""
    X = np.asarray(coordinates, dtype=np.float64)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"coordinates: expected a finite N × k array, got shape {X.shape}")
    y = factor.target()
    if len(y) != len(X):
        raise ValueError(f"factor: {factor.name!r} has {len(y)} samples, coordinates {len(X)}")
    alpha = PROBE_RIDGE * float(X.var(axis=0).mean() or 1.0) * len(X)
    folds = KFold(as_positive_int("n_folds", n_folds), shuffle=True, random_state=seed)
    # a one-column target comes back as a vector: without the reshape, y - predicted would broadcast to N × N
    predicted = cross_val_predict(Ridge(alpha=alpha), X, y, cv=folds).reshape(y.shape)
    return float(1.0 - ((y - predicted) ** 2).sum() / ((y - y.mean(axis=0)) ** 2).sum())


def probe_table(coordinates, factors, **kw) -> pd.DataFrame:
    """:func:`probe_r2` of every subspace (``{name: N × k}``) for every factor (``{name: Factor}``): rows × factors."""
    return pd.DataFrame({name: {f: probe_r2(X, factor, **kw) for f, factor in factors.items()}
                         for name, X in coordinates.items()}).T


def latent_auc(codes, factors) -> pd.DataFrame:
    """AUC of every latent (rows of ``codes``, ``m × N``) as a detector of every class of every factor.

    Returns a frame with one row per latent and a column per ``(factor, class)``; continuous factors enter
    through their quantile bins. AUC = (rank sum of the class's samples − n₊(n₊+1)/2) / (n₊ n₋), ties averaged.
    """
    codes = np.asarray(codes, dtype=np.float64)
    ranks = rankdata(codes, axis=1)
    columns = {}
    for name, factor in factors.items():
        classes = factor.classes()
        labels = np.unique(factor.values) if factor.kind == "categorical" else np.arange(classes.max() + 1)
        onehot = (classes[:, None] == np.arange(len(labels))).astype(np.float64)
        positives = onehot.sum(axis=0)
        auc = (ranks @ onehot - positives * (positives + 1) / 2) / (positives * (len(classes) - positives))
        for j, label in enumerate(labels):
            columns[(name, str(label))] = auc[:, j]
    return pd.DataFrame(columns)


def best_factor(auc) -> pd.DataFrame:
    """Each latent's best-matching factor, class and AUC, and its best AUC in every factor (from :func:`latent_auc`)."""
    per_factor = auc.T.groupby(level=0, sort=False).max().T
    best_column = auc.to_numpy().argmax(axis=1)
    out = pd.DataFrame({
        "factor": [auc.columns[i][0] for i in best_column],
        "class": [auc.columns[i][1] for i in best_column],
        "auc": auc.to_numpy().max(axis=1),
    }, index=auc.index)
    return out.join(per_factor.add_prefix("auc_"))


def label_subspace(Z, labels, *, energy=0.9) -> np.ndarray:
    """Orthonormal basis (``d × r``) of the between-class subspace of ``labels`` in the columns of ``Z`` (``d × N``).

    The columns :math:`\\sqrt{N_j}(\\mu_j - \\mu)` of the centred class means span it; the basis keeps the top
    left singular vectors that hold ``energy`` of their squared norm (``r ≤ K − 1``).
    """
    Z = as_samples(Z)
    energy = as_fraction("energy", energy, closed_right=True)
    labels = np.asarray(labels)
    if labels.shape != (Z.shape[1],):
        raise ValueError(f"labels: expected {Z.shape[1]} labels, got shape {labels.shape}")
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError("labels: need at least 2 classes for a between-class subspace")
    mean = Z.mean(axis=1, keepdims=True)
    means = np.stack([Z[:, codes == j].mean(axis=1) for j in range(len(classes))], axis=1)
    U, s, _ = np.linalg.svd((means - mean) * np.sqrt(counts), full_matrices=False)
    share = np.cumsum(s**2) / (s**2).sum()
    return U[:, : int(np.searchsorted(share, energy - 1e-12) + 1)]


def atom_span(decoder, latents) -> np.ndarray:
    """Orthonormal basis of the span of the decoder atoms ``decoder[:, latents]`` (``d × r``, ``r`` their rank)."""
    latents = np.asarray(latents, dtype=int)
    if latents.size == 0:
        return np.zeros((decoder.shape[0], 0))
    return orth(decoder[:, latents])


def basis_overlap(A, B, *, strict=False) -> float:
    """Mean ``cos²`` of the principal angles between the column spaces of orthonormal ``A`` and ``B``.

    ``‖AᵀB‖²_F / min(k_a, k_b)`` (containment), or ``/ max(k_a, k_b)`` with ``strict`` (equality). NaN when
    either is empty.
    """
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise ValueError(f"A, B: expected bases of one space (d × k), got shapes {A.shape} and {B.shape}")
    sizes = (A.shape[1], B.shape[1])
    if min(sizes) == 0:
        return float("nan")
    return float(np.linalg.norm(A.T @ B) ** 2 / (max(sizes) if strict else min(sizes)))


def best_overlaps(reference, found, *, strict=True) -> np.ndarray:
    """For every basis of ``reference`` the largest :func:`basis_overlap` with any basis of ``found``.

    With ``strict`` (default) a planted subspace counts as recovered only by a found subspace of its own
    dimension lying on it.
    """
    return np.array([max(basis_overlap(A, B, strict=strict) for B in found) for A in reference])


def atom_recovery(dictionary, decoder) -> np.ndarray:
    """For every planted atom (column of ``dictionary``) the largest cosine with a decoder atom (unit columns)."""
    dictionary = np.asarray(dictionary, dtype=np.float64)
    planted = dictionary / np.linalg.norm(dictionary, axis=0)
    return (planted.T @ np.asarray(decoder, dtype=np.float64)).max(axis=1)
