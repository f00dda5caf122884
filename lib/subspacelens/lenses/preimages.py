"""Preimages: the samples that load most on a subspace or a latent, from a nearest-neighbour index.

As in the seed's preimage app, a subspace (or a latent: a one-dimensional code axis) is read through the
coordinates of every sample in it. The query is the sample with the largest load (norm of its
coordinates); its preimages are the query and its nearest neighbours in that subspace, from
``sklearn.neighbors.NearestNeighbors`` (exact search: at a few thousand samples it answers in
milliseconds, so an approximate index such as faiss would add a dependency and no speed that matters).
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from ..metrics._checks import as_positive_int

__all__ = ["preimages"]


def preimages(coordinates, n=8, *, query=None) -> np.ndarray:
    """Indices of ``n`` samples: the query (default: the sample of largest load) and its nearest neighbours.

    ``coordinates`` is ``N × k`` (samples in a subspace, or a latent's activations as ``N × 1``). The query
    comes first, its neighbours by increasing distance.
    """
    X = np.asarray(coordinates, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"coordinates: expected a finite N × k array, got shape {X.shape}")
    n = as_positive_int("n", n)
    if n > len(X):
        raise ValueError(f"n: {n} preimages asked from {len(X)} samples")
    if query is None:
        query = int(np.argmax(np.linalg.norm(X, axis=1)))
    elif not 0 <= int(query) < len(X):
        raise ValueError(f"query: expected a sample index in [0, {len(X)}), got {query!r}")
    index = NearestNeighbors(n_neighbors=n).fit(X)
    neighbours = index.kneighbors(X[[int(query)]], return_distance=False)[0]
    return np.concatenate([[int(query)], neighbours[neighbours != int(query)]])[:n]
