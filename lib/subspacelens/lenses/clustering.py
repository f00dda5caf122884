r"""The sample-side lens: cluster the images by the subspace their activations lie near (k-subspaces).

K-subspace clustering (Bradley & Mangasarian 2000; Vidal 2011) alternates two steps until no sample moves:
fit to every cluster :math:`j` the affine subspace :math:`\mu_j + \mathrm{span}(U_j)` of its top ``rank``
principal directions, then move every sample to the cluster whose subspace leaves the smallest residual
:math:`\lVert (I - U_jU_j^\top)(z - \mu_j) \rVert^2`. It starts from ``sklearn``'s k-means. The clusters are
scored against each known factor by the adjusted Rand index and the normalised mutual information
(``sklearn.metrics``): 1 when the clusters are the factor's classes, ≈ 0 for an unrelated partition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ..metrics._checks import as_positive_int, as_samples

__all__ = ["cluster_agreement", "k_subspaces"]


def _residuals(X, assignment, n_clusters, rank):
    """``N × n_clusters`` squared residuals of every sample to every cluster's affine rank-``rank`` subspace."""
    out = np.full((X.shape[0], n_clusters), np.inf)
    for j in range(n_clusters):
        members = X[assignment == j]
        if len(members) == 0:
            continue
        centre = members.mean(axis=0)
        basis = np.linalg.svd(members - centre, full_matrices=False)[2][:rank].T  # d × r
        offset = X - centre
        out[:, j] = (offset**2).sum(axis=1) - ((offset @ basis) ** 2).sum(axis=1)
    return out


def _refine(X, assignment, n_clusters, rank, n_iter):
    """Alternate fitting and reassigning from ``assignment``; returns the labels and their total residual."""
    for _ in range(n_iter):
        residuals = _residuals(X, assignment, n_clusters, rank)
        updated = residuals.argmin(axis=1)
        for j in np.setdiff1d(np.arange(n_clusters), updated):  # restart an emptied cluster
            updated[np.argmax(residuals[np.arange(len(X)), updated])] = j
        if np.array_equal(updated, assignment):
            break
        assignment = updated
    residuals = _residuals(X, assignment, n_clusters, rank)
    return assignment, float(residuals[np.arange(len(X)), assignment].sum())


def k_subspaces(Z, n_clusters, *, rank=2, n_init=10, n_iter=50, seed=0) -> np.ndarray:
    """Cluster labels (``N`` ints in ``0 … n_clusters − 1``) of the columns of ``Z`` (``d × N``) by k-subspaces.

    ``rank`` is the dimension of every cluster's affine subspace (``0``: plain k-means); at most ``n_iter``
    reassignments from each of ``n_init`` k-means starts (seeds ``seed, seed + 1, …``), keeping the labels of
    smallest total residual: classes that share a mean and differ only in their subspace give k-means
    arbitrary starts, and k-subspaces has local minima. A cluster that empties restarts at the worst-fit sample.
    """
    Z = as_samples(Z, min_samples=2)
    if Z.ndim != 2:
        raise ValueError(f"Z: expected one slice of shape (d, N), got shape {Z.shape}")
    n_clusters = as_positive_int("n_clusters", n_clusters)
    if n_clusters > Z.shape[1]:
        raise ValueError(f"n_clusters: {n_clusters} clusters for N = {Z.shape[1]} samples")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < Z.shape[0]:
        raise ValueError(f"rank: expected an integer in [0, d) = [0, {Z.shape[0]}), got {rank!r}")
    n_iter, n_init = as_positive_int("n_iter", n_iter), as_positive_int("n_init", n_init)
    X = Z.T
    fits = [_refine(X, KMeans(n_clusters, n_init=1, random_state=seed + start).fit_predict(X), n_clusters, rank, n_iter)
            for start in range(n_init)]
    return min(fits, key=lambda fit: fit[1])[0]


def cluster_agreement(clusters, factors, *, n_bins=4) -> pd.DataFrame:
    """ARI and NMI of ``clusters`` against every factor (``{name: Factor}``); continuous factors in ``n_bins`` bins."""
    clusters = np.asarray(clusters)
    rows = {}
    for name, factor in factors.items():
        classes = factor.classes(n_bins)
        if len(classes) != len(clusters):
            raise ValueError(f"factors: {name!r} has {len(classes)} samples, clusters {len(clusters)}")
        rows[name] = {"ARI": adjusted_rand_score(classes, clusters), "NMI": normalized_mutual_info_score(classes, clusters)}
    return pd.DataFrame(rows).T
