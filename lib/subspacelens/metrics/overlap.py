r"""Overlap of class subspaces: mean squared cosine of the principal angles between class bases.

For class j let :math:`U_j` (d×k_j) hold the top-k_j left singular vectors of :math:`Z_j`. The overlap is

.. math::

    O_{ij} = \frac{\|U_i^\top U_j\|_F^2}{\min(k_i, k_j)} \in [0, 1],

1 when one subspace contains the other, 0 when they are orthogonal. Random subspaces of dimensions
:math:`k_i, k_j` in :math:`\mathbb R^d` have :math:`\mathbb E\|U_i^\top U_j\|_F^2 = k_i k_j / d`, so the
chance level is :math:`\min(\max(k_i, k_j)/d,\ 1)`.

Everything is read from the Gram :math:`G = Z^\top Z`: if the class block is
:math:`G_{jj} = V_j\Lambda_j V_j^\top` then :math:`U_j = Z_j V_j \Lambda_j^{-1/2}` (top k_j columns), so
:math:`U_i^\top U_j = \Lambda_i^{-1/2} V_i^\top G_{ij} V_j \Lambda_j^{-1/2}` needs no product with Z.
"""

from dataclasses import dataclass

import numpy as np

from ._checks import as_fraction, as_positive_int
from .gram import gather_entries, principal_blocks
from .labels import labelled_gram

RANK_TOLERANCE = 1e-10
"""Class directions whose Gram eigenvalue is below this fraction of the class's largest are numerically
absent: :math:`\\Lambda^{-1/2}` would amplify rounding noise into a spurious basis vector."""


@dataclass(frozen=True)
class SubspaceOverlap:
    """Pairwise overlaps of class subspaces.

    ``matrix`` (…, K, K): :math:`O_{ij}`, ones on the diagonal; ``classes`` (K,): sorted labels;
    ``ranks`` (…, K): the basis sizes k_j; ``chance`` (…, K, K): :math:`\\min(\\max(k_i,k_j)/d, 1)`.
    """

    matrix: np.ndarray
    classes: np.ndarray
    ranks: np.ndarray
    chance: np.ndarray

    @property
    def mean_offdiagonal(self):
        """Mean of ``matrix`` over pairs i ≠ j, shape ``(...)``: the per-layer summary the chapters plot."""
        return mean_offdiagonal(self.matrix)

    @property
    def chance_mean_offdiagonal(self):
        """The same mean of the chance levels: the reference line for ``mean_offdiagonal``."""
        return mean_offdiagonal(self.chance)


def mean_offdiagonal(matrix):
    """Mean over the off-diagonal entries of a stack of K×K matrices (K ≥ 2), shape ``matrix.shape[:-2]``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    n_classes = matrix.shape[-1]
    if matrix.ndim < 2 or matrix.shape[-2] != n_classes or n_classes < 2:
        raise ValueError(f"matrix: expected a stack of K×K matrices with K >= 2, got shape {matrix.shape}")
    off_diagonal_sum = matrix.sum(axis=(-2, -1)) - np.einsum("...ii->...", matrix)
    return off_diagonal_sum / (n_classes * (n_classes - 1))


def class_ranks(eigenvalues, rank, energy):
    """Basis size k_j from each class's descending Gram eigenvalues (…, K, n).

    ``rank`` fixes k_j = rank; otherwise k_j is the smallest k whose top-k eigenvalues hold ``energy`` of
    the class's squared Frobenius norm (the eigenvalue sum). Either way k_j is capped at the class's
    numerical rank (see ``RANK_TOLERANCE``).
    """
    numerical_rank = (eigenvalues > RANK_TOLERANCE * eigenvalues[..., :1]).sum(axis=-1)
    if rank is not None:
        return np.minimum(rank, numerical_rank)
    cumulative = np.cumsum(eigenvalues, axis=-1)
    by_energy = 1 + (cumulative < energy * cumulative[..., -1:]).sum(axis=-1)
    return np.minimum(by_energy, numerical_rank)


def overlap_from_gram(G, partition, rank=None, energy=0.9, index=None):
    r"""Overlap matrix (…, K, K) and ranks (…, K) of the classes of ``partition``, read from the Gram ``G``.

    ``index`` (default ``partition.index``) may carry extra leading axes (resamples); padded entries are
    masked out. Class bases come from the eigendecomposition of each class block (see module docstring).
    """
    index = partition.index if index is None else index
    mask = partition.mask
    blocks = principal_blocks(G, index) * (mask[:, :, None] & mask[:, None, :])
    eigenvalues, eigenvectors = np.linalg.eigh(blocks)
    eigenvalues = np.maximum(eigenvalues[..., ::-1], 0.0)  # descending
    eigenvectors = eigenvectors[..., ::-1]
    ranks = class_ranks(eigenvalues, rank, energy)
    kept = np.arange(index.shape[-1]) < ranks[..., None]
    inverse_sqrt = np.where(kept, 1.0 / np.sqrt(np.where(kept, eigenvalues, 1.0)), 0.0)
    # U_j = Z_j W_j with W_j = V_j Λ_j^{-1/2} restricted to the kept columns and the real (unpadded) rows.
    W = eigenvectors * inverse_sqrt[..., None, :] * mask[:, :, None]
    cross_blocks = gather_entries(G, index[..., :, None, :, None], index[..., None, :, None, :])  # G_ij (…,K,K,n,n)
    cosines = W[..., :, None, :, :].swapaxes(-1, -2) @ cross_blocks @ W[..., None, :, :, :]
    squared_norms = np.square(cosines).sum(axis=(-2, -1))
    matrix = squared_norms / np.minimum(ranks[..., :, None], ranks[..., None, :])
    return np.clip(matrix, 0.0, 1.0), ranks  # clip: rounding only


def subspace_overlap(Z, labels, rank=None, energy=0.9, *, center=False, normalize=False):
    r"""Pairwise subspace overlap of the classes of ``labels`` in ``Z`` (``(..., d, N)``).

    ``rank=k`` fixes every basis size to k (capped at the class's numerical rank); otherwise each class
    keeps the fewest top singular directions holding ``energy`` (in (0, 1]) of its squared Frobenius norm.
    Every class needs at least 2 samples. Returns a :class:`SubspaceOverlap`.
    """
    if rank is not None:
        rank = as_positive_int("rank", rank)
    energy = as_fraction("energy", energy, closed_right=True)
    Z, partition, G = labelled_gram(Z, labels, center=center, normalize=normalize, min_class_size=2)
    matrix, ranks = overlap_from_gram(G, partition, rank, energy)
    chance = np.minimum(np.maximum(ranks[..., :, None], ranks[..., None, :]) / Z.shape[-2], 1.0)
    return SubspaceOverlap(matrix=matrix, classes=partition.classes, ranks=ranks, chance=chance)
