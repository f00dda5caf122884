r"""Is a cloud of samples an isotropic Gaussian? Tests on random one-dimensional projections.

Two views on the same ``n_projections`` random unit directions :math:`u` (drawn from ``seed``):

* Jarque–Bera (the statistic of ``scipy.stats.jarque_bera``, :func:`jarque_bera_p_values`) on each projection :math:`u^\top Z`: the fraction of
  projections that reject normality at level ``alpha`` (≈ ``alpha`` for an isotropic Gaussian).
* The Epps–Pulley statistic of SIGReg on each standardised projection x (N samples):

  .. math::

      T = N \int_{-\infty}^{\infty} \big|\hat\varphi_x(t) - e^{-t^2/2}\big|^2\, e^{-t^2/2}\, dt,
      \qquad \hat\varphi_x(t) = \frac1N\sum_n e^{\mathrm i t x_n},

  by the trapezoidal rule on a uniform t grid (the integrand is even, so over [0, t_max], doubled).

Both are also evaluated on isotropic Gaussian samples of the same (d, N), projected on the same
directions, so the chapters can draw the null reference next to the observed values.
"""

from dataclasses import dataclass

import numpy as np

from ._checks import as_fraction, as_positive_int, as_samples

QUADRATURE_T = np.linspace(0.0, 8.0, 65)
"""Uniform t grid from 0: the weight e^{-t²/2} is below 1e-13 past t = 8, and the trapezoidal rule on this
smooth, decaying integrand matches the closed form to ~1e-12 relative."""

_ROWS_PER_CHUNK = 4096  # bounds the (rows, N) complex work arrays of epps_pulley


@dataclass(frozen=True)
class IsotropyResult:
    """Normality of random projections; shapes ``(...)`` = ``Z.shape[:-2]``.

    ``rejection_rate`` (…): fraction of projections where Jarque–Bera rejects at ``alpha``;
    ``p_values`` (…, n_projections); ``epps_pulley`` (…, n_projections): per-projection statistic;
    ``sigreg`` (…): its mean over projections; ``sigreg_null`` and ``null_rejection_rate`` (floats):
    the same two summaries on isotropic Gaussian samples of the same shape.
    """

    rejection_rate: np.ndarray
    p_values: np.ndarray
    epps_pulley: np.ndarray
    sigreg: np.ndarray
    sigreg_null: float
    null_rejection_rate: float


def standardize(x):
    """Zero mean, unit (population) standard deviation along the last axis."""
    centred = x - x.mean(axis=-1, keepdims=True)
    spread = centred.std(axis=-1, keepdims=True)
    if not (spread > 0).all():
        raise ValueError("Z: a random projection of Z is constant, so it cannot be standardised")
    return centred / spread


def epps_pulley(x):
    r"""Epps–Pulley statistic :math:`N\int|\hat\varphi_x(t) - e^{-t^2/2}|^2 e^{-t^2/2}dt` along the last axis.

    ``x`` should already be standardised. Returns shape ``x.shape[:-1]``. On the uniform grid
    :math:`t_k = k\,\Delta t`, :math:`e^{\mathrm i t_k x} = (e^{\mathrm i\Delta t x})^k` is built by repeated
    multiplication: one complex exponential per sample rather than one per sample and grid point.
    """
    n_samples = x.shape[-1]
    rows = x.reshape(-1, n_samples)
    target = np.exp(-0.5 * QUADRATURE_T**2)
    statistics = np.empty(rows.shape[0])
    for start in range(0, rows.shape[0], _ROWS_PER_CHUNK):
        chunk = slice(start, start + _ROWS_PER_CHUNK)
        rotation = np.exp(1j * QUADRATURE_T[1] * rows[chunk])
        power = np.ones_like(rotation)
        empirical_cf = np.empty((rotation.shape[0], QUADRATURE_T.size), dtype=complex)
        for k in range(QUADRATURE_T.size):
            empirical_cf[:, k] = power.mean(axis=1)
            power *= rotation
        integrand = np.abs(empirical_cf - target) ** 2 * target
        statistics[chunk] = 2.0 * np.trapezoid(integrand, QUADRATURE_T, axis=-1)
    return n_samples * statistics.reshape(x.shape[:-1])


def random_directions(rng, n_directions, d):
    """``n_directions`` unit vectors uniform on the sphere in :math:`\\mathbb R^d`, shape (n, d)."""
    directions = rng.standard_normal((n_directions, d))
    return directions / np.linalg.norm(directions, axis=-1, keepdims=True)


def _projections(Z, n_projections, seed):
    """Standardised projections of ``Z`` and of an isotropic Gaussian (d, N) on ``n_projections`` directions.

    The Gaussian is drawn after the directions from the same ``numpy.random.default_rng(seed)`` stream.
    """
    n_projections = as_positive_int("n_projections", n_projections)
    Z = as_samples(Z, min_samples=3)
    d, n_samples = Z.shape[-2:]
    rng = np.random.default_rng(seed)
    directions = random_directions(rng, n_projections, d)
    gaussian = rng.standard_normal((d, n_samples))
    return standardize(directions @ Z), standardize(directions @ gaussian)  # (…, n_projections, N), (n, N)


def jarque_bera_p_values(standardized):
    r"""Jarque–Bera p-values of standardised samples (zero mean, unit population variance) along the last axis.

    With skewness :math:`S = \overline{x^3}` and excess kurtosis :math:`K = \overline{x^4} - 3` (the biased
    estimators ``scipy.stats.jarque_bera`` uses, which need no further centring or scaling here),
    :math:`JB = \tfrac N6\,(S^2 + K^2/4)` and its :math:`\chi^2_2` tail is :math:`p = e^{-JB/2}`. The same
    values as ``scipy.stats.jarque_bera``, without its per-call input handling, for the resampling loops.
    """
    squared = standardized * standardized
    skewness = (squared * standardized).mean(axis=-1)
    excess_kurtosis = (squared * squared).mean(axis=-1) - 3.0
    statistic = standardized.shape[-1] / 6.0 * (skewness**2 + excess_kurtosis**2 / 4.0)
    return np.exp(-0.5 * statistic)


def _rejections(projections, null_projections, alpha):
    p_values = jarque_bera_p_values(projections)
    null_p_values = jarque_bera_p_values(null_projections)
    return (p_values < alpha).mean(axis=-1), p_values, float((null_p_values < alpha).mean())


def jarque_bera_rejection(Z, n_projections=256, alpha=0.01, seed=0):
    """``(rejection_rate (…), p_values (…, n_projections), null_rejection_rate)``: the Jarque–Bera half of
    :func:`isotropy_test` alone (no Epps–Pulley statistic), for the resampling loops that need only it."""
    alpha = as_fraction("alpha", alpha, closed_right=False)
    return _rejections(*_projections(Z, n_projections, seed), alpha)


def isotropy_test(Z, n_projections=256, alpha=0.01, seed=0):
    """Jarque–Bera rejection rate and SIGReg Epps–Pulley statistic of ``Z`` on random projections.

    ``Z`` is ``(..., d, N)`` (N ≥ 3); the same ``n_projections`` directions serve every slice. The null
    reference uses Gaussian samples of shape (d, N) drawn after the directions from the same
    ``numpy.random.default_rng(seed)`` stream, so the whole result is deterministic under ``seed``.
    """
    alpha = as_fraction("alpha", alpha, closed_right=False)
    projections, null_projections = _projections(Z, n_projections, seed)
    rejection_rate, p_values, null_rejection_rate = _rejections(projections, null_projections, alpha)
    statistics = epps_pulley(projections)
    return IsotropyResult(
        rejection_rate=rejection_rate,
        p_values=p_values,
        epps_pulley=statistics,
        sigreg=statistics.mean(axis=-1),
        sigreg_null=float(epps_pulley(null_projections).mean()),
        null_rejection_rate=null_rejection_rate,
    )
