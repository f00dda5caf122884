r"""Coding rate :math:`R_\varepsilon(Z)` of one set of samples, for one ε or a whole ε-curve.

Conventions (shared by the whole library): ``Z`` has shape ``(..., d, N)`` with one column per sample and
leading batch dimensions; ``eps`` is the *unsquared* precision ε (default 0.5); rates are in nats;
computation in float64; no hidden normalisation (``center``/``normalize`` are explicit and off).

.. math::

    R_\varepsilon(Z) = \tfrac12 \log\det\!\Big(I_d + \frac{d}{N\varepsilon^2} Z Z^\top\Big)
                     = \tfrac12 \log\det\!\Big(I_N + \frac{d}{N\varepsilon^2} Z^\top Z\Big)
                     = \tfrac12 \sum_i \log\!\Big(1 + \frac{d}{N\varepsilon^2}\lambda_i\Big),

with :math:`\lambda_i` the eigenvalues of :math:`Z^\top Z` (Sylvester's identity; the smaller side is used).
"""

import numpy as np

from ._checks import as_eps, as_eps_values, as_samples, check_rate_scale
from .gram import clamped_eigvalsh, logdet_identity_plus, small_side_product


def coding_alpha(d, n_samples, eps):
    r"""The scale :math:`\alpha = d / (N \varepsilon^2)` of the coding-rate log-determinant (ε may be an array);
    inf where it overflows, which :func:`~._checks.check_rate_scale` then refuses."""
    with np.errstate(over="ignore"):
        return d / (n_samples * np.square(eps))


def rate_from_product(product, d, n_samples, eps):
    r""":math:`\tfrac12\log\det(I + \alpha P)` for P the Gram or second moment of N samples in d dimensions."""
    alpha = coding_alpha(d, n_samples, eps)
    check_rate_scale(alpha, np.trace(product, axis1=-2, axis2=-1))
    return 0.5 * logdet_identity_plus(product, alpha)


def rate_curve_from_eigenvalues(eigenvalues, d, n_samples, eps_values):
    r""":math:`\tfrac12\sum_i \log(1 + \alpha(\varepsilon)\lambda_i)` for every ε: shape ``(..., len(eps_values))``."""
    alphas = coding_alpha(d, n_samples, eps_values)
    check_rate_scale(alphas, eigenvalues.sum(axis=-1))
    return 0.5 * np.log1p(eigenvalues[..., :, None] * alphas).sum(axis=-2)


def coding_rate(Z, eps=0.5, *, center=False, scale=None, normalize=False):
    r"""Coding rate :math:`R_\varepsilon(Z) = \tfrac12\log\det(I + \tfrac{d}{N\varepsilon^2} Z Z^\top)` in nats.

    Uses the N×N Gram when N ≤ d and the d×d second moment otherwise, factorised by Cholesky (all
    eigenvalues of :math:`I + \alpha\,\cdot` are ≥ 1). Returns an array of shape ``Z.shape[:-2]``.
    ``center``/``scale`` (see :mod:`.transforms`): ``scale="rms"`` makes ε relative to the data's RMS
    column norm, so the rate is invariant to :math:`Z \to cZ`; ``center="class"`` needs labels (use
    :func:`~subspacelens.metrics.rate_reduction`).
    """
    eps = as_eps(eps)
    Z = as_samples(Z, center=center, normalize=normalize, scale=scale)
    d, n_samples = Z.shape[-2:]
    return rate_from_product(small_side_product(Z), d, n_samples, eps)


def coding_rate_curve(Z, eps_values, *, center=False, scale=None, normalize=False):
    r""":math:`R_\varepsilon(Z)` for every ε in ``eps_values`` from one eigendecomposition.

    :math:`R(\varepsilon) = \tfrac12\sum_i \log(1 + \tfrac{d}{N\varepsilon^2}\lambda_i)` with the clamped
    eigenvalues :math:`\lambda_i \ge 0` of the smaller of :math:`Z^\top Z` and :math:`Z Z^\top`.
    Returns shape ``(..., len(eps_values))``.
    """
    eps_values = as_eps_values(eps_values)
    Z = as_samples(Z, center=center, normalize=normalize, scale=scale)
    d, n_samples = Z.shape[-2:]
    eigenvalues = clamped_eigvalsh(small_side_product(Z))
    return rate_curve_from_eigenvalues(eigenvalues, d, n_samples, eps_values)
