r"""Rates, spectra and subspace overlaps from per-class first and second moments (streamed statistics).

When the samples (image tokens) far outnumber the features (N ≫ d) every statistic of the library lives
in the d×d form and needs only, for each class j of a labelling,

.. math::

    n_j = \#\{z \in j\}, \qquad s_j = \sum_{z\in j} z \in \mathbb R^d, \qquad
    S_j = \sum_{z\in j} z z^\top \in \mathbb R^{d\times d},

which are sums, so they can be accumulated chunk by chunk (float64) and added across workers. They are
packed as one *augmented second moment* :math:`A_j = \sum_{z\in j} [z;1][z;1]^\top =
\begin{pmatrix} S_j & s_j \\ s_j^\top & n_j\end{pmatrix}` ((d+1)×(d+1)); the totals are the sums over j.

Preprocessing, as in the in-memory path (centring first, then the scale):

* ``center=False``: :math:`M_j = S_j`; ``center=True`` (the global mean :math:`\mu = s/N` subtracted from
  every sample): :math:`M_j = S_j - s_j\mu^\top - \mu s_j^\top + n_j\mu\mu^\top`, total
  :math:`M = S - N\mu\mu^\top`; ``center="class"`` (each class's own mean subtracted):
  :math:`M_j = S_j - s_j s_j^\top / n_j`, total :math:`M = \sum_j M_j`.
* ``scale=None``: nothing; ``scale="rms"``: every sample divided by the RMS column norm
  :math:`c = \sqrt{\operatorname{tr} M / N}` of the whole (centred) slice, i.e. every :math:`M_j / c^2`,
  which makes every rate invariant to :math:`Z \to aZ`; ``scale="unit"`` (unit-norm samples) cannot be
  undone from sums: normalise each sample while accumulating (``normalize=True`` of
  :func:`subspacelens.tokens.token_moments`).

Then :math:`R_\varepsilon = \tfrac12\log\det(I + \tfrac{d}{N\varepsilon^2}M)` and
:math:`R_c = \sum_j \tfrac{n_j}{N}\,\tfrac12\log\det(I + \tfrac{d}{n_j\varepsilon^2}M_j)` exactly as in
:mod:`~subspacelens.metrics.rate_reduction` (Sylvester's identity: the d×d and N×N forms agree).
"""

from dataclasses import dataclass

import numpy as np

from ._checks import as_eps, as_fraction, as_positive_int
from .coding_rate import rate_from_product
from .gram import chunk_slices, clamped_eigvalsh
from .overlap import SubspaceOverlap, class_ranks
from .permutation import PermutationNull, null_summary
from .rate_reduction import RateReduction
from .spectrum import singular_value_entropy_rank

CENTER_CHOICES = (False, True, "class")
SCALE_CHOICES = (None, "rms")


@dataclass(frozen=True)
class ClassMoments:
    r"""Augmented second moments :math:`A_j` of K classes, ``augmented`` of shape ``(..., K, d+1, d+1)``.

    ``classes`` (K,): the class labels (sorted), or None for an unnamed axis (e.g. one entry per image).
    """

    augmented: np.ndarray
    classes: np.ndarray | None = None

    @property
    def d(self):
        return self.augmented.shape[-1] - 1

    @property
    def counts(self):
        """:math:`n_j`, shape ``(..., K)``."""
        return self.augmented[..., -1, -1]

    @property
    def sums(self):
        """:math:`s_j`, shape ``(..., K, d)``."""
        return self.augmented[..., :-1, -1]

    @property
    def outer(self):
        """:math:`S_j`, shape ``(..., K, d, d)``."""
        return self.augmented[..., :-1, :-1]


BLOCK_ROWS = 4096
"""Rows handled at a time. They are copied (converted to float64, when stored narrower) into one reused
buffer whose last column is 1 and put in class order there, so all a block touches stays in cache;
converting or sorting a whole task's rows at once cost more than the products themselves."""


def augmented_moments(X, codes, n_classes):
    r""":math:`A_j = \sum_{i: \mathrm{codes}_i = j} [x_i;1][x_i;1]^\top` for rows ``X`` (M, d), shape (K, d+1, d+1).

    ``codes`` (M,) are integer class codes in ``[0, n_classes)``; ``X`` may be stored in a narrower dtype
    (fp16 tokens). The rows go through a float64 buffer :math:`B = [X_b\;\mathbf 1]` of
    :data:`BLOCK_ROWS` rows at a time, sorted by class inside the block, so each class's share
    :math:`B_j` of the block adds :math:`B_j^\top B_j` to :math:`A_j` in one symmetric rank-k update (BLAS
    syrk, which numpy calls for a product of a matrix with its own transpose): :math:`S_j`, :math:`s_j`
    and :math:`n_j` at once. The work is one (d+1)×(d+1) product over all rows whatever K is.
    """
    X = np.asarray(X)
    codes = np.asarray(codes)
    n_rows, d = X.shape
    out = np.zeros((n_classes, d + 1, d + 1))
    buffer = np.empty((min(BLOCK_ROWS, n_rows), d + 1))
    buffer[:, d] = 1.0
    for start in range(0, n_rows, BLOCK_ROWS):
        rows, block_codes = X[start : start + BLOCK_ROWS], codes[start : start + BLOCK_ROWS]
        if block_codes.size > 1 and (np.diff(block_codes) < 0).any():
            # numpy's stable sort of 16-bit integers is a radix sort: linear in the rows
            narrow = block_codes.astype(np.int16) if n_classes <= np.iinfo(np.int16).max else block_codes
            order = np.argsort(narrow, kind="stable")
            rows, block_codes = rows[order], block_codes[order]
        buffer[: rows.shape[0], :d] = rows
        bounds = np.searchsorted(block_codes, np.arange(n_classes + 1))
        for j in np.flatnonzero(np.diff(bounds)):
            block = buffer[bounds[j] : bounds[j + 1]]
            out[j] += block.T @ block
    return out


def class_moments(Z, labels):
    """In-memory :class:`ClassMoments` of ``Z`` (d, N), one column per sample, for ``labels`` (N,)."""
    Z = np.asarray(Z, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.shape != (Z.shape[-1],):
        raise ValueError(f"labels: has shape {labels.shape} but Z has N={Z.shape[-1]} columns")
    classes, codes = np.unique(labels, return_inverse=True)
    return ClassMoments(augmented_moments(Z.T, codes, classes.size), classes)


def _check_choice(name, value, choices):
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        hint = "; unit-norm samples must be normalised while accumulating (normalize=True)" if value == "unit" else ""
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}{hint}")


def scatter_matrices(moments, *, center=False, scale=None):
    r"""Preprocessed scatter matrices ``(M_total (..., d, d), M_class (..., K, d, d))`` (see module docstring)."""
    _check_choice("center", center, CENTER_CHOICES)
    _check_choice("scale", scale, SCALE_CHOICES)
    n, s, S = moments.counts, moments.sums, moments.outer
    n_total = n.sum(axis=-1)
    if center == "class":
        safe_n = np.where(n > 0, n, 1.0)
        M_class = S - s[..., :, None] * s[..., None, :] / safe_n[..., None, None]
        M_total = M_class.sum(axis=-3)
    elif center:
        mu = s.sum(axis=-2) / n_total[..., None]
        cross = s[..., :, None] * mu[..., None, None, :]
        M_class = S - cross - cross.swapaxes(-1, -2) + n[..., None, None] * (mu[..., None, :, None] * mu[..., None, None, :])
        M_total = S.sum(axis=-3) - n_total[..., None, None] * mu[..., :, None] * mu[..., None, :]
    else:
        M_class, M_total = S, S.sum(axis=-3)
    if scale == "rms":
        squared_rms = np.einsum("...ii->...", M_total) / n_total
        if not (squared_rms > 0).all():
            raise ValueError("scale: a slice is all zero, so it has no RMS norm to divide by")
        M_total = M_total / squared_rms[..., None, None]
        M_class = M_class / squared_rms[..., None, None, None]
    return M_total, M_class


def _rate(M, n, d, eps):
    """½ log det(I + d/(n ε²) M), 0 for an empty class (n = 0)."""
    safe_n = np.where(n > 0, n, 1.0)
    return np.where(n > 0, rate_from_product(M, d, safe_n, eps), 0.0)


def coding_rate_from_moments(moments, eps=0.5, *, center=False, scale=None):
    r"""Coding rate :math:`R_\varepsilon` of all samples (every class together), shape ``moments.counts.shape[:-1]``."""
    eps = as_eps(eps)
    M_total, _ = scatter_matrices(moments, center=center, scale=scale)
    return _rate(M_total, moments.counts.sum(axis=-1), moments.d, eps)


def rate_reduction_from_moments(moments, eps=0.5, *, center=False, scale=None):
    r""":math:`R`, :math:`R_c = \sum_j (n_j/N) R(Z_j)` and :math:`\Delta R = R - R_c` from class moments.

    Agrees with :func:`~subspacelens.metrics.rate_reduction` on the same samples and labels.
    """
    eps = as_eps(eps)
    M_total, M_class = scatter_matrices(moments, center=center, scale=scale)
    n = moments.counts
    n_total = n.sum(axis=-1)
    R = _rate(M_total, n_total, moments.d, eps)
    Rc = (n / n_total[..., None] * _rate(M_class, n, moments.d, eps)).sum(axis=-1)
    return RateReduction(R=R, Rc=Rc, delta_R=R - Rc)


def _spectrum_matrices(moments, center, per_class):
    """The scatter of every class (``per_class``; centred on its own mean) or of all samples."""
    if per_class:
        return scatter_matrices(moments, center="class" if center else False)[1]
    return scatter_matrices(moments, center=center)[0]


def effective_rank_from_moments(moments, *, center=False, per_class=False):
    r"""Effective rank :math:`\exp H(\sigma/\sum\sigma)` (Roy & Vetterli) from the scatter's eigenvalues :math:`\sigma^2`.

    ``per_class=True``: one value per class (shape ``(..., K)``), e.g. one per image when the classes are
    the images; ``center`` then subtracts each class's own mean. Otherwise all samples together.
    """
    M = _spectrum_matrices(moments, center, per_class)
    return singular_value_entropy_rank(np.sqrt(clamped_eigvalsh(M)))


def participation_ratio_from_moments(moments, *, center=True, per_class=False):
    r"""Participation ratio :math:`(\operatorname{tr} M)^2 / \|M\|_F^2` of the (centred) scatter M."""
    M = _spectrum_matrices(moments, center, per_class)
    trace = np.einsum("...ii->...", M)
    if not (trace > 0).all():
        raise ValueError("moments: a slice is all zero (after centring, if requested); its spectrum is undefined")
    return trace**2 / np.square(M).sum(axis=(-2, -1))


def subspace_overlap_from_moments(moments, rank=None, energy=0.9, *, center=False):
    r"""Class-subspace overlap :math:`O_{ij} = \|U_i^\top U_j\|_F^2/\min(k_i,k_j)` from class scatters.

    :math:`U_j` are the top :math:`k_j` eigenvectors of :math:`M_j` (the left singular vectors of
    :math:`Z_j`), :math:`k_j` chosen as in :func:`~subspacelens.metrics.subspace_overlap`;
    :math:`\|U_i^\top U_j\|_F^2 = \operatorname{tr}(P_i P_j)` with the projectors :math:`P_j = U_jU_j^\top`.
    """
    if rank is not None:
        rank = as_positive_int("rank", rank)
    energy = as_fraction("energy", energy, closed_right=True)
    if (moments.counts < 2).any():
        raise ValueError("moments: every class needs at least 2 samples for a subspace overlap")
    _, M_class = scatter_matrices(moments, center=center)
    eigenvalues, eigenvectors = np.linalg.eigh(M_class)
    eigenvalues = np.maximum(eigenvalues[..., ::-1], 0.0)
    eigenvectors = eigenvectors[..., ::-1]
    ranks = class_ranks(eigenvalues, rank, energy)
    kept = eigenvectors * (np.arange(moments.d) < ranks[..., None])[..., None, :]
    projectors = kept @ kept.swapaxes(-1, -2)
    squared_norms = np.einsum("...iab,...jab->...ij", projectors, projectors)
    smaller = np.minimum(ranks[..., :, None], ranks[..., None, :])
    chance = np.minimum(np.maximum(ranks[..., :, None], ranks[..., None, :]) / moments.d, 1.0)
    return SubspaceOverlap(
        matrix=np.clip(squared_norms / smaller, 0.0, 1.0), classes=moments.classes, ranks=ranks, chance=chance
    )


def _delta_R_of(augmented, eps, center, scale):
    return rate_reduction_from_moments(ClassMoments(augmented), eps, center=center, scale=scale).delta_R


def _chunked_null(relabelled_moments, n_classes, batch_shape, d, eps, n_permutations, center, scale, observed):
    """The null ΔR of ``relabelled_moments(chunk)`` (class moments ``(..., P_chunk, K, d+1, d+1)``), chunk by chunk."""
    entries = 3 * int(np.prod(batch_shape, dtype=np.int64)) * n_classes * (d + 1) ** 2  # moments and two scatters
    null = np.empty(observed.shape + (n_permutations,))
    for chunk in chunk_slices(n_permutations, entries):
        null[..., chunk] = _delta_R_of(relabelled_moments(chunk), eps, center, scale)
    return null_summary(observed, null)


def _check_null_arguments(per_image, n_permutations):
    n_permutations = as_positive_int("n_permutations", n_permutations)
    if n_permutations < 2:
        raise ValueError("n_permutations: needs at least 2 shuffles for a z-score")
    if not isinstance(per_image, ClassMoments):
        raise ValueError(f"per_image: expected ClassMoments, got {type(per_image).__name__}")
    return n_permutations


class _ItemMoments:
    r"""Moments of the items a null reassigns (images, or one image's classes), laid out for one GEMM.

    ``augmented`` (…, n_items, D, D) is stored once as ``flat`` (n_items, … · D²), so every chunk of
    relabellings is a single product of its 0/1 assignment matrix (P·K, n_items) with it: the class moments
    of a relabelling are sums of item moments, and no per-chunk transpose of the (large) item moments is made.
    """

    def __init__(self, augmented, n_batch_axes):
        self.batch_shape = augmented.shape[:n_batch_axes]
        self.side = augmented.shape[-1]
        items = augmented.reshape(self.batch_shape + (-1, self.side, self.side))
        self.flat = np.ascontiguousarray(np.moveaxis(items, n_batch_axes, 0).reshape(items.shape[n_batch_axes], -1))

    def class_sums(self, assignment):
        """``assignment`` (P, K, n_items) of 0/1 -> class moments (…, P, K, D, D)."""
        n_sets, n_classes = assignment.shape[:2]
        sums = assignment.reshape(n_sets * n_classes, -1) @ self.flat
        sums = sums.reshape((n_sets, n_classes) + self.batch_shape + (self.side, self.side))
        return np.moveaxis(sums, (0, 1), (-4, -3))


def image_permutation_null(per_image, image_labels, eps=0.5, n_permutations=1000, seed=0, *, center=False, scale=None):
    r"""Null of :math:`\Delta R` for an image-level labelling (every token takes its image's label) that
    shuffles the labels of whole *images*, never of single tokens (tokens of one image are not independent).

    ``per_image``: :class:`ClassMoments` with one entry per image along the class axis, ``(..., n_images,
    d+1, d+1)``; ``image_labels`` (n_images,). Each shuffle's class moments are sums of per-image moments,
    so no pass over the tokens is repeated. Deterministic under ``seed``.
    """
    n_permutations = _check_null_arguments(per_image, n_permutations)
    image_labels = np.asarray(image_labels)
    n_images = per_image.augmented.shape[-3]
    if image_labels.shape != (n_images,):
        raise ValueError(f"image_labels: has shape {image_labels.shape} but per_image holds {n_images} images")
    classes, codes = np.unique(image_labels, return_inverse=True)
    one_hot = np.eye(classes.size)[codes].T  # (K, n_images)
    items = _ItemMoments(per_image.augmented, per_image.augmented.ndim - 3)

    observed = _delta_R_of(items.class_sums(one_hot[None]), eps, center, scale)[..., 0]
    rng = np.random.default_rng(seed)
    shuffles = rng.permuted(np.tile(np.arange(n_images), (n_permutations, 1)), axis=1)
    # in shuffle p image i takes the label of image shuffles[p, i]: its assignment column is that one-hot
    return _chunked_null(lambda chunk: items.class_sums(np.moveaxis(one_hot[:, shuffles[chunk]], 0, 1)),
                         classes.size, items.batch_shape, per_image.d, eps, n_permutations, center, scale, observed)


def class_swap_null(per_image_class, eps=0.5, n_permutations=1000, seed=0, *, center=False, scale=None):
    r"""Null of :math:`\Delta R` for a token-level labelling (position, object/background): in every image
    independently, the K class names of its tokens are permuted at random.

    ``per_image_class``: :class:`ClassMoments` of shape ``(..., n_images, K, d+1, d+1)`` (each image's
    tokens of each class). A shuffle keeps every image's partition of its tokens but breaks the agreement
    of the class names across images; a labelling that means the same in every image (the same grid
    position, the object) beats it. Deterministic under ``seed``.
    """
    n_permutations = _check_null_arguments(per_image_class, n_permutations)
    augmented = per_image_class.augmented
    if augmented.ndim < 4:
        raise ValueError(f"per_image_class: expected shape (..., n_images, K, d+1, d+1), got {augmented.shape}")
    n_images, n_classes = augmented.shape[-4:-2]
    observed = _delta_R_of(augmented.sum(axis=-4), eps, center, scale)
    rng = np.random.default_rng(seed)
    swaps = rng.permuted(np.tile(np.arange(n_classes), (n_permutations, n_images, 1)), axis=2)
    items = _ItemMoments(augmented, augmented.ndim - 4)  # the items: (image, class) pairs

    def relabelled(chunk):  # image i's class k is renamed swaps[p, i, k]
        names = swaps[chunk].reshape(len(swaps[chunk]), -1)  # (P, n_images · K)
        assignment = np.zeros((names.shape[0], n_classes, names.shape[1]))
        assignment[np.arange(names.shape[0])[:, None], names, np.arange(names.shape[1])] = 1.0
        return items.class_sums(assignment)

    return _chunked_null(relabelled, n_classes, items.batch_shape, per_image_class.d, eps, n_permutations,
                         center, scale, observed)
