r"""Subspaces to intervene on, estimated from the activation cache on seeds held out from the evaluation.

The cache holds each block's token-mean activation per sample (``DESIGN.md``). For one block,
:func:`block_matrix` stacks the chosen seeds' samples of the cached steps of one branch into ``Z``
``(d, N)`` (one column per sample and step). From ``Z``:

* :func:`between_class_basis` — where classes differ: the top-``k`` principal directions of the centred
  class means (the span the lens' ΔR rewards);
* :func:`mean_difference` — :math:`\mu_B - \mu_A`, the steering direction from class A to class B;
* :func:`natural_span` — the principal subspace holding a share of the natural activations' energy, and
  :func:`restrict_to_span` — a basis projected into it (the check for dormant directions).

:func:`split_seeds` splits the cache's ``seed`` coordinate: bases on the first seeds, evaluation on the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from subspacelens.analysis import labels_of


def split_seeds(ds, n_basis: int) -> tuple[list[int], list[int]]:
    """The cache's seeds, sorted: the first ``n_basis`` estimate bases, the others are held out for evaluation."""
    seeds = sorted(int(s) for s in np.unique(ds["seed"].values))
    if isinstance(n_basis, bool) or not isinstance(n_basis, int) or not 1 <= n_basis < len(seeds):
        raise ValueError(f"n_basis: {n_basis!r} must leave held-out seeds; the cache has {len(seeds)} seeds")
    return seeds[:n_basis], seeds[n_basis:]


def block_matrix(ds, layer: int, seeds: Sequence[int], scheme: str, *, branch: str = "cond",
                 steps: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(Z, labels)``: block ``layer``'s activations of the samples with ``seeds`` at the cached ``steps``
    (default all) of ``branch``, as ``Z`` ``(d, N·steps)`` float64 with one label (``scheme``) per column."""
    if layer not in ds["layer"].values:
        raise ValueError(f"layer: {layer!r} not in the cache's layers {ds['layer'].values.tolist()}")
    chosen = np.isin(ds["seed"].values, np.asarray(seeds))
    if not chosen.any():
        raise ValueError(f"seeds: none of {list(seeds)} is in the cache")
    sub = ds["activations"].isel(sample=np.flatnonzero(chosen)).sel(layer=layer, branch=branch)
    if steps is not None:
        sub = sub.sel(step=list(steps))
    labels = labels_of(ds.isel(sample=np.flatnonzero(chosen)), scheme)
    Z = np.asarray(sub.transpose("feature", "step", "sample").values, dtype=np.float64)
    d, n_steps, n = Z.shape
    return Z.reshape(d, n_steps * n), np.tile(labels, n_steps)


def _top_directions(M: np.ndarray, rank: int, name: str) -> np.ndarray:
    d, n = M.shape
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= d:
        raise ValueError(f"rank: {rank!r} is not in 1..d = {d}")
    U, s, _ = np.linalg.svd(M, full_matrices=False)
    available = int((s > s.max() * 1e-10).sum()) if s.size else 0
    if rank > available:
        raise ValueError(f"rank: {rank} exceeds the {available} directions {name} spans")
    return U[:, :rank]


def between_class_basis(Z: np.ndarray, labels, rank: int) -> np.ndarray:
    r"""Top-``rank`` principal directions of the class means: left singular vectors of
    :math:`M = [\mu_1 - \mu, \dots, \mu_K - \mu]` (``(d, K)``, :math:`\mu` the mean of the class means).
    ``rank`` ≤ K − 1, the dimension the centred means span."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    means = np.stack([Z[:, labels == c].mean(axis=1) for c in classes], axis=1)
    return _top_directions(means - means.mean(axis=1, keepdims=True), rank, f"the {len(classes)} centred class means")


def mean_difference(Z: np.ndarray, labels, source, target) -> np.ndarray:
    r""":math:`\mu_{\mathrm{target}} - \mu_{\mathrm{source}}` ``(d,)``: adding it to a sample of ``source``
    moves it by the difference of the two class means."""
    labels = np.asarray(labels)
    for name, value in (("source", source), ("target", target)):
        if not (labels == value).any():
            raise ValueError(f"{name}: class {value!r} not among the labels {sorted(set(labels.tolist()))}")
    return Z[:, labels == target].mean(axis=1) - Z[:, labels == source].mean(axis=1)


def natural_span(Z: np.ndarray, energy: float = 0.99) -> np.ndarray:
    r"""The smallest principal subspace of the centred natural activations holding ``energy`` of their
    variance: the first :math:`r` left singular vectors with :math:`\sum_{i\le r}\sigma_i^2 \ge`
    ``energy`` :math:`\cdot\sum_i \sigma_i^2`."""
    if not 0 < energy <= 1:
        raise ValueError(f"energy: {energy!r} is not in (0, 1]")
    centred = Z - Z.mean(axis=1, keepdims=True)
    U, s, _ = np.linalg.svd(centred, full_matrices=False)
    share = np.cumsum(s**2) / np.sum(s**2)
    return U[:, : int(np.searchsorted(share, energy - 1e-12) + 1)]


def restrict_to_span(basis: np.ndarray, span: np.ndarray) -> np.ndarray:
    r"""An orthonormal basis of :math:`V V^\top \operatorname{span}(U)`, the part of the subspace inside the
    span ``V``: left singular vectors of :math:`VV^\top U` with non-negligible singular values
    (the rank drops when ``U`` has directions orthogonal to ``V``)."""
    if basis.shape[0] != span.shape[0]:
        raise ValueError(f"span: width {span.shape[0]} differs from the basis' {basis.shape[0]}")
    projected = span @ (span.T @ basis)
    U, s, _ = np.linalg.svd(projected, full_matrices=False)
    return U[:, s > 1e-8 * max(1.0, s.max(initial=0.0))]
