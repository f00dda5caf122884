r"""Dimensionality of a set of samples from its spectrum: effective rank and participation ratio.

Same conventions as the rest of :mod:`subspacelens.metrics`: ``Z`` is ``(..., d, N)``, results have shape
``Z.shape[:-2]``. The singular values of ``Z`` are the square roots of the clamped eigenvalues of the
smaller of :math:`Z^\top Z` and :math:`Z Z^\top`.
"""

import numpy as np
from scipy.special import entr

from ._checks import as_samples
from .gram import clamped_eigvalsh, small_side_product


def _require_nonzero(total):
    if not (total > 0).all():
        raise ValueError("Z: a slice is all zero (after centring, if requested); its spectrum is undefined")


def effective_rank(Z, *, center=False):
    r"""Effective rank of Roy & Vetterli (2007): :math:`\exp H(p)` with :math:`p_i = \sigma_i / \sum_k \sigma_k`.

    :math:`\sigma_i` are the singular values of ``Z`` and :math:`H(p) = -\sum_i p_i\log p_i` (nats,
    :math:`0\log 0 = 0`). Ranges from 1 (rank one) to min(d, N) (all singular values equal).
    """
    Z = as_samples(Z, center=center, min_samples=2 if center else 1)
    return singular_value_entropy_rank(np.sqrt(clamped_eigvalsh(small_side_product(Z))))


def singular_value_entropy_rank(singular_values):
    r""":math:`\exp H(p)`, :math:`p_i = \sigma_i/\sum_k\sigma_k`, over the last axis of ``singular_values``."""
    total = singular_values.sum(axis=-1, keepdims=True)
    _require_nonzero(total)
    return np.exp(entr(singular_values / total).sum(axis=-1))


def participation_ratio(Z, *, center=True):
    r"""Participation ratio :math:`(\sum_i\lambda_i)^2 / \sum_i\lambda_i^2` of the covariance eigenvalues.

    Computed exactly without an eigendecomposition: for :math:`C \propto Z Z^\top` the sums are
    :math:`\operatorname{tr} C` and :math:`\|C\|_F^2`, and the Gram :math:`Z^\top Z` has the same trace
    and Frobenius norm. Scale-free, so the 1/N of the covariance cancels.
    """
    Z = as_samples(Z, center=center, min_samples=2 if center else 1)
    product = small_side_product(Z)
    trace = np.einsum("...ii->...", product)
    _require_nonzero(trace)
    return trace**2 / np.square(product).sum(axis=(-2, -1))
