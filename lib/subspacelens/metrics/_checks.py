"""Input validation and the explicit preprocessing options shared by every metric.

Every public metric funnels its arguments through these helpers, so a bad argument fails the same way
everywhere: a ``ValueError`` whose message starts with the argument's name.
"""

import numpy as np

from .._validate import _as_real, as_fraction, as_positive_int  # noqa: F401  (shared with stats/)
from .transforms import prepare, scale_and_center


def as_samples(Z, *, center=False, normalize=False, scale=None, codes=None, min_samples=1):
    """Return ``Z`` as a float64 array of shape ``(..., d, N)``, prepared as asked (nothing by default).

    ``center`` (False / True / ``"class"``, the latter with integer class ``codes``) and ``scale``
    (None / ``"rms"`` / ``"unit"``; ``normalize=True`` is ``scale="unit"``) follow
    :mod:`~subspacelens.metrics.transforms`.
    """
    center, scale = scale_and_center(center, scale, normalize)
    Z = np.asarray(Z)
    if np.iscomplexobj(Z):
        raise ValueError("Z: expected real values, got a complex array")
    try:
        Z = Z.astype(np.float64, copy=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Z: cannot be read as a real float64 array ({error})") from error
    if Z.ndim < 2:
        raise ValueError(f"Z: expected shape (..., d, N) with ndim >= 2, got ndim={Z.ndim}")
    d, n_samples = Z.shape[-2:]
    if d == 0:
        raise ValueError("Z: the feature dimension d is 0")
    if n_samples < min_samples:
        raise ValueError(f"Z: needs at least {min_samples} samples (columns), got N={n_samples}")
    if not np.isfinite(Z).all():
        raise ValueError("Z: contains non-finite values (NaN or inf)")
    return prepare(Z, codes, center=center, scale=scale)


def as_eps(eps):
    """The unsquared coding precision ε as a positive finite float."""
    eps = _as_real("eps", eps, "a positive real number")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps: expected a positive finite number, got {eps!r}")
    return eps


def as_eps_values(eps_values):
    """A non-empty 1-D float64 array of positive finite precisions ε."""
    try:
        eps_values = np.asarray(eps_values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"eps_values: expected a 1-D array of positive numbers ({error})") from error
    if eps_values.ndim != 1 or eps_values.size == 0:
        raise ValueError(f"eps_values: expected a non-empty 1-D array, got shape {eps_values.shape}")
    if not (np.isfinite(eps_values).all() and (eps_values > 0).all()):
        raise ValueError("eps_values: every ε must be positive and finite")
    return eps_values


