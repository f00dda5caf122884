r"""Overlap of class subspaces: mean squared cosine of the principal angles between class bases.

For class j let :math:`U_j` (d×k_j) hold the top-k_j left singular vectors of :math:`Z_j`. The overlap is

.. math::

    O_{ij} = \frac{\|U_i^\top U_j\|_F^2}{\min(k_i, k_j)} \in [0, 1],

1 when one subspace contains the other, 0 when they are orthogonal. Random subspaces of dimensions
:math:`k_i, k_j` in :math:`\mathbb R^d` have :math:`\mathbb E\|U_i^\top U_j\|_F^2 = k_i k_j / d`, so the
chance level is :math:`\min(\max(k_i, k_j)/d,\ 1)`.

Two equivalent routes, picked by cost (:func:`class_overlaps`):

- *Gram route* (classes smaller than d, as PixArt-α's 20–100 images a class in d = 1152): if the class
  block is :math:`G_{jj} = V_j\Lambda_j V_j^\top` then :math:`U_j = Z_j V_j \Lambda_j^{-1/2}` (top k_j
  columns), so :math:`U_i^\top U_j = \Lambda_i^{-1/2} V_i^\top G_{ij} V_j \Lambda_j^{-1/2}` needs no
  product with Z; a relabelling or resample only re-indexes G.
- *Feature route* (d smaller than the biggest class, as the organism's 100 images a category in d = 64):
  :math:`U_j` are the top eigenvectors of the d×d class scatter :math:`S_j = Z_j Z_j^\top` (the same nonzero
  spectrum as :math:`G_{jj}`), and :math:`\|U_i^\top U_j\|_F^2 = \langle P_i, P_j\rangle` with the projections
  :math:`P_j = U_j U_j^\top`: K d×d factorisations instead of K n×n ones and K² n×n cross blocks.
"""

from dataclasses import dataclass

import numpy as np

from ._checks import as_fraction, as_positive_int
from ..stats.draws import permutation_indices
from .gram import chunk_slices, gather_entries, principal_blocks
from .labels import labelled_gram
from .transforms import as_center

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


def _double_centre(blocks, row_mask, col_mask):
    r""":math:`H_i C H_j` for blocks whose rows / columns are the (masked) members of classes i / j."""
    n_rows = row_mask.sum(axis=-1)[..., None, None]
    n_cols = col_mask.sum(axis=-1)[..., None, None]
    row_means = (blocks * col_mask[..., None, :]).sum(axis=-1, keepdims=True) / n_cols
    col_means = (blocks * row_mask[..., :, None]).sum(axis=-2, keepdims=True) / n_rows
    grand = (row_means * row_mask[..., :, None]).sum(axis=-2, keepdims=True) / n_rows
    centred = blocks - row_means - col_means + grand
    return centred * (row_mask[..., :, None] & col_mask[..., None, :])


def overlap_from_gram(G, partition, rank=None, energy=0.9, index=None, *, class_centred=False):
    r"""Overlap matrix (…, K, K) and ranks (…, K) of the classes of ``partition``, read from the Gram ``G``.

    ``index`` (default ``partition.index``) may carry extra leading axes (resamples, relabellings); padded
    entries are masked out. Class bases come from the eigendecomposition of each class block (see module
    docstring). ``class_centred`` subtracts every class's mean from its members first (blocks become
    :math:`H_i G_{ij} H_j`), so the subspaces are those of the within-class scatter, not of the class means.
    """
    index = partition.index if index is None else index
    mask = partition.mask
    blocks = principal_blocks(G, index) * (mask[:, :, None] & mask[:, None, :])
    if class_centred:
        blocks = _double_centre(blocks, mask, mask)
    eigenvalues, eigenvectors = np.linalg.eigh(blocks)
    eigenvalues = np.maximum(eigenvalues[..., ::-1], 0.0)  # descending
    eigenvectors = eigenvectors[..., ::-1]
    ranks = class_ranks(eigenvalues, rank, energy)
    kept = np.arange(index.shape[-1]) < ranks[..., None]
    inverse_sqrt = np.where(kept, 1.0 / np.sqrt(np.where(kept, eigenvalues, 1.0)), 0.0)
    # U_j = Z_j W_j with W_j = V_j Λ_j^{-1/2} restricted to the kept columns and the real (unpadded) rows.
    W = eigenvectors * inverse_sqrt[..., None, :] * mask[:, :, None]
    cross_blocks = gather_entries(G, index[..., :, None, :, None], index[..., None, :, None, :])  # G_ij (…,K,K,n,n)
    if class_centred:
        cross_blocks = _double_centre(cross_blocks, mask[:, None, :], mask[None, :, :])
    cosines = W[..., :, None, :, :].swapaxes(-1, -2) @ cross_blocks @ W[..., None, :, :, :]
    squared_norms = np.square(cosines).sum(axis=(-2, -1))
    matrix = squared_norms / np.minimum(ranks[..., :, None], ranks[..., None, :])
    return np.clip(matrix, 0.0, 1.0), ranks  # clip: rounding only


def overlap_from_columns(Z, partition, rank=None, energy=0.9, index=None, *, class_centred=False):
    r"""The feature route of :func:`overlap_from_gram`: the same ``(matrix, ranks)`` from the columns ``Z``.

    ``Z`` (…, d, N); ``index`` as for :func:`overlap_from_gram`. Class j's members are gathered (padding
    zeroed), optionally centred on their mean, and its basis is read from the eigenvectors of the d×d
    scatter :math:`S_j = Z_j Z_j^\top`; :math:`O_{ij} = \langle P_i, P_j\rangle / \min(k_i, k_j)`.
    """
    index = partition.index if index is None else index
    mask = partition.mask
    lead = Z.shape[:-2]
    members = np.take(Z, index, axis=-1)  # (…, d, *sets, K, n)
    members = np.moveaxis(members, len(lead), -2) * mask[:, None, :]  # (…, *sets, K, d, n)
    if class_centred:
        means = members.sum(axis=-1, keepdims=True) / partition.sizes[:, None, None]
        members = (members - means) * mask[:, None, :]
    scatter = members @ members.swapaxes(-1, -2)  # (…, K, d, d)
    eigenvalues, eigenvectors = np.linalg.eigh(scatter)
    eigenvalues = np.maximum(eigenvalues[..., ::-1], 0.0)  # descending
    ranks = class_ranks(eigenvalues, rank, energy)
    kept = np.arange(eigenvalues.shape[-1]) < ranks[..., None]
    bases = eigenvectors[..., ::-1] * kept[..., None, :]
    projections = bases @ bases.swapaxes(-1, -2)  # P_j (…, K, d, d)
    flat = projections.reshape(projections.shape[:-2] + (-1,))
    squared_norms = flat @ flat.swapaxes(-1, -2)  # ⟨P_i, P_j⟩ = ‖U_iᵀU_j‖²_F
    matrix = squared_norms / np.minimum(ranks[..., :, None], ranks[..., None, :])
    return np.clip(matrix, 0.0, 1.0), ranks  # clip: rounding only


def feature_route_is_cheaper(d, partition):
    """True when the class scatters (d×d) are smaller than the biggest class's Gram block (n×n)."""
    return d < int(partition.sizes.max())


def class_overlaps(Z, G, partition, rank=None, energy=0.9, index=None, *, class_centred=False):
    """``(matrix, ranks)`` by the cheaper route: :func:`overlap_from_columns` or :func:`overlap_from_gram`.

    ``Z`` (…, d, N) and ``G = ZᵀZ`` describe the same prepared samples; ``G`` may be None when the feature
    route is taken, ``Z`` None when only the Gram is at hand (the Gram route is taken).
    """
    if Z is not None and feature_route_is_cheaper(Z.shape[-2], partition):
        return overlap_from_columns(Z, partition, rank, energy, index, class_centred=class_centred)
    return overlap_from_gram(G, partition, rank, energy, index, class_centred=class_centred)


def subspace_overlap(Z, labels, rank=None, energy=0.9, *, center=False, scale=None, normalize=False):
    r"""Pairwise subspace overlap of the classes of ``labels`` in ``Z`` (``(..., d, N)``).

    ``rank=k`` fixes every basis size to k (capped at the class's numerical rank); otherwise each class
    keeps the fewest top singular directions holding ``energy`` (in (0, 1]) of its squared Frobenius norm.
    Every class needs at least 2 samples. Returns a :class:`SubspaceOverlap`.

    The random-subspace ``chance`` level is a poor reference when every class shares one mean direction
    (raw activations): then each class's top direction is nearly the same and the overlap is high for any
    labelling. :func:`overlap_null` gives the label-shuffle reference; ``center="class"`` measures the
    within-class subspaces (class means removed).
    """
    if rank is not None:
        rank = as_positive_int("rank", rank)
    energy = as_fraction("energy", energy, closed_right=True)
    Z, partition, G = labelled_gram(Z, labels, center=center, scale=scale, normalize=normalize, min_class_size=2)
    matrix, ranks = class_overlaps(Z, G, partition, rank, energy)
    chance = np.minimum(np.maximum(ranks[..., :, None], ranks[..., None, :]) / Z.shape[-2], 1.0)
    return SubspaceOverlap(matrix=matrix, classes=partition.classes, ranks=ranks, chance=chance)


@dataclass(frozen=True)
class OverlapNull:
    r"""Mean off-diagonal overlap against its label-shuffle null; shapes ``(...)`` = ``Z.shape[:-2]``.

    ``null`` (…, n_permutations); ``p_lower`` = :math:`(1 + \#\{\text{null} \le \text{observed}\})/(1+n)`:
    small when the classes are *more* orthogonal than shuffled classes of the same sizes; ``excess`` =
    observed − mean(null) (negative: more orthogonal than chance groupings).
    """

    observed: np.ndarray
    null: np.ndarray
    p_lower: np.ndarray
    excess: np.ndarray


def overlap_null(Z, labels, n_permutations=200, seed=0, *, rank=None, energy=0.9, within=None, center=False,
                 scale=None):
    """Label-shuffle null of the mean off-diagonal subspace overlap (``center="class"`` recentres per shuffle)."""
    if rank is not None:
        rank = as_positive_int("rank", rank)
    energy = as_fraction("energy", energy, closed_right=True)
    n_permutations = as_positive_int("n_permutations", n_permutations)
    class_centred = as_center(center) == "class"
    Z, partition, G = labelled_gram(Z, labels, center=False if class_centred else center, scale=scale,
                                    min_class_size=2)
    observed = mean_offdiagonal(class_overlaps(Z, G, partition, rank, energy, class_centred=class_centred)[0])
    relabellings = permutation_indices(Z.shape[-1], n_permutations, seed, within=within)
    null = np.empty(observed.shape + (n_permutations,))
    d, n_classes = Z.shape[-2], partition.classes.size
    per_set = observed.size * (n_classes * d * (d + partition.index.shape[-1]) * 3
                               if feature_route_is_cheaper(d, partition) else partition.n_samples**2 * 4)
    for chunk in chunk_slices(n_permutations, per_set):
        index = relabellings[chunk][:, partition.index]
        matrix = class_overlaps(Z, G, partition, rank, energy, index, class_centred=class_centred)[0]
        null[..., chunk] = mean_offdiagonal(matrix)
    p_lower = (1.0 + (null <= observed[..., None]).sum(axis=-1)) / (1.0 + n_permutations)
    return OverlapNull(observed=observed, null=null, p_lower=p_lower, excess=observed - null.mean(axis=-1))
