r"""Gram primitives: every label-dependent metric is read from sub-blocks of one Gram matrix.

For a slice ``Z`` of shape ``(d, N)`` (one column per sample) the Gram is :math:`G = Z^\top Z` (N×N) and
the unnormalised second moment is :math:`S = Z Z^\top` (d×d). They share their nonzero eigenvalues
(Sylvester: :math:`\det(I_N + \alpha G) = \det(I_d + \alpha S)`), so a rate can be computed from whichever
is smaller. The columns of class j form the principal sub-block :math:`G_{jj} = Z_j^\top Z_j`, so the
class rates of *any* labelling (observed, permuted, resampled) need no new product with ``Z``.

All functions are batched over leading dimensions.
"""

import numpy as np


def gram(Z):
    r"""The Gram matrix :math:`Z^\top Z`, shape ``(..., N, N)``."""
    return np.matmul(Z.swapaxes(-1, -2), Z)


def second_moment(Z):
    r"""The unnormalised second moment :math:`Z Z^\top`, shape ``(..., d, d)``."""
    return np.matmul(Z, Z.swapaxes(-1, -2))


def small_side_product(Z):
    """``gram(Z)`` when N ≤ d, else ``second_moment(Z)``: the smaller of the two, same nonzero spectrum."""
    d, n_samples = Z.shape[-2:]
    return gram(Z) if n_samples <= d else second_moment(Z)


def logdet_identity_plus(M, alpha):
    r""":math:`\log\det(I + \alpha M)` for a stack of symmetric PSD matrices ``M`` (…, n, n).

    Every eigenvalue of :math:`I + \alpha M` is ≥ 1, so its Cholesky factor L exists even when M is
    singular, and :math:`\log\det = 2\sum_i \log L_{ii}` — no sign flips or NaN as with ``slogdet`` on a
    near-singular matrix. ``alpha`` is a scalar or broadcasts against ``M.shape[:-2]``.

    In floating point a huge :math:`\alpha\lVert M\rVert` can make the rounding of M's zero eigenvalues
    (about ``eps·‖M‖`` each) outweigh the identity, and the factorisation then fails on some CPUs' kernels;
    the stack is then computed as :math:`\sum_i \log(1 + \alpha \max(\lambda_i, 0))` from M's eigenvalues,
    the same value without the factorisation.
    """
    alpha = np.asarray(alpha, dtype=np.float64)[..., None, None]
    shifted = alpha * M
    diagonal = np.einsum("...ii->...i", shifted)
    diagonal += 1.0
    try:
        factor = np.linalg.cholesky(shifted)
    except np.linalg.LinAlgError:
        return np.log1p(alpha[..., 0] * clamped_eigvalsh(M)).sum(axis=-1)
    return 2.0 * np.log(np.einsum("...ii->...i", factor)).sum(axis=-1)


def clamped_eigvalsh(M):
    """Eigenvalues of a stack of symmetric PSD matrices, ascending, with rounding negatives clamped to 0."""
    return np.maximum(np.linalg.eigvalsh(M), 0.0)


def gather_entries(G, rows, cols):
    """``G[..., rows, cols]`` for broadcastable integer arrays, shape ``(*batch, *broadcast(rows, cols))``.

    One ``take`` on flat indices: several times faster than two-array fancy indexing for the many small
    blocks of a permutation null.
    """
    n = G.shape[-1]
    flat_index = rows * n + cols
    return np.take(G.reshape(G.shape[:-2] + (n * n,)), flat_index, axis=-1)


def principal_blocks(G, index):
    """Principal sub-blocks ``G[..., index_a, index_a]`` for a stack of index sets.

    ``G`` has shape ``(*batch, N, N)`` and ``index`` shape ``(*sets, n)``; the result has shape
    ``(*batch, *sets, n, n)``: one n×n block per index set (class, permutation, resample).
    """
    return gather_entries(G, index[..., :, None], index[..., None, :])


def center_gram(G):
    r"""The Gram of the centred columns, :math:`H G H` with :math:`H = I - \tfrac1N \mathbf 1\mathbf 1^\top`.

    Lets a resample be re-centred without touching ``Z``.
    """
    row_means = G.mean(axis=-1, keepdims=True)
    return G - row_means - row_means.swapaxes(-1, -2) + G.mean(axis=(-2, -1), keepdims=True)


def normalize_gram(G):
    r"""The Gram of the unit-norm columns, :math:`D^{-1/2} G D^{-1/2}` with :math:`D = \mathrm{diag}(G)`."""
    squared_norms = np.einsum("...ii->...i", G)
    if not (squared_norms > 0).all():
        raise ValueError("Z: a column has zero norm, so it cannot be normalised")
    inverse_norms = 1.0 / np.sqrt(squared_norms)
    return G * inverse_norms[..., :, None] * inverse_norms[..., None, :]


BLOCK_BUDGET = 2**22
"""Most float64 entries (32 MiB) of gathered sub-blocks held at once by the resampling loops."""


def chunk_slices(n_sets, entries_per_set):
    """Slices over ``n_sets`` index sets (permutations, resamples) whose gathered blocks fit ``BLOCK_BUDGET``."""
    step = max(1, BLOCK_BUDGET // max(1, entries_per_set))
    return [slice(start, min(start + step, n_sets)) for start in range(0, n_sets, step)]
