r"""Permuted-labels null for the rate reduction: is :math:`\Delta R` specific to these labels?

Shuffling the labels keeps every class size, the total rate R and the Gram; only :math:`R_c` changes, and
each permuted class Gram is again a principal block of the same :math:`Z^\top Z`. All permutations'
class blocks of one size are factorised as one (…, P, K_n, n, n) Cholesky stack (in memory-bounded
chunks). Same conventions as :func:`~subspacelens.metrics.rate_reduction`.
"""

from dataclasses import dataclass

import numpy as np

from ._checks import as_eps, as_positive_int
from .gram import chunk_slices
from .labels import labelled_gram
from .rate_reduction import class_rate_at, rate_reduction_from_gram, within_class_rate


@dataclass(frozen=True)
class PermutationNull:
    r"""Observed :math:`\Delta R` against its permuted-labels null; shapes ``(...)`` = ``Z.shape[:-2]``.

    ``null`` (…, n_permutations): :math:`\Delta R` under each shuffle; ``p_value``:
    :math:`(1 + \#\{\text{null} \ge \text{observed}\}) / (1 + n)`; ``z_score``: (observed − mean(null)) / sd(null).
    """

    observed: np.ndarray
    null: np.ndarray
    p_value: np.ndarray
    z_score: np.ndarray


def permutation_null(Z, labels, eps=0.5, n_permutations=1000, seed=0, *, center=False, normalize=False):
    r"""Null distribution of :math:`\Delta R` under ``n_permutations`` (≥ 2) label shuffles.

    Deterministic under ``seed`` (``numpy.random.default_rng``); the same shuffles serve every slice of a
    batched ``Z`` (``(..., d, N)``).
    """
    eps = as_eps(eps)
    n_permutations = as_positive_int("n_permutations", n_permutations)
    if n_permutations < 2:
        raise ValueError("n_permutations: needs at least 2 shuffles for a z-score")
    Z, partition, G = labelled_gram(Z, labels, center=center, normalize=normalize)
    d, n_samples = Z.shape[-2:]
    observed_rates = rate_reduction_from_gram(Z, G, partition, eps)
    R, observed = observed_rates.R, observed_rates.delta_R
    rate_of_blocks = class_rate_at(eps, d)

    rng = np.random.default_rng(seed)
    permutations = rng.permuted(np.tile(np.arange(n_samples), (n_permutations, 1)), axis=1)
    null_Rc = np.empty(R.shape + (n_permutations,))
    entries_per_permutation = R.size * int(np.square(partition.sizes).sum())
    for chunk in chunk_slices(n_permutations, entries_per_permutation):
        shuffled_index = permutations[chunk][:, partition.index]  # (chunk, K, n_max)
        null_Rc[..., chunk] = within_class_rate(G, partition, rate_of_blocks, shuffled_index)
    return null_summary(observed, R[..., None] - null_Rc)


def null_summary(observed, null):
    r"""A :class:`PermutationNull` from the observed statistic ``(...)`` and its null ``(..., n_permutations)``."""
    exceed = (null >= observed[..., None]).sum(axis=-1)
    return PermutationNull(
        observed=observed,
        null=null,
        p_value=(1.0 + exceed) / (1.0 + null.shape[-1]),
        z_score=(observed - null.mean(axis=-1)) / null.std(axis=-1, ddof=1),
    )
