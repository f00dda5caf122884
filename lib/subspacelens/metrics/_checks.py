"""Input validation and the explicit preprocessing options shared by every metric.

Every public metric funnels its arguments through these helpers, so a bad argument fails the same way
everywhere: a ``ValueError`` whose message starts with the argument's name.
"""

import numpy as np


def as_samples(Z, *, center=False, normalize=False, min_samples=1):
    """Return ``Z`` as a float64 array of shape ``(..., d, N)``, optionally centred and/or normalised.

    Centring subtracts the per-slice mean column (mean over the last axis); normalising then scales every
    column to unit ℓ2 norm. Neither happens unless asked for.
    """
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
    return preprocess(Z, center=center, normalize=normalize)


def preprocess(Z, *, center, normalize):
    """Subtract the mean column (``center``), then scale every column to unit ℓ2 norm (``normalize``)."""
    if center:
        Z = Z - Z.mean(axis=-1, keepdims=True)
    if normalize:
        norms = np.linalg.norm(Z, axis=-2, keepdims=True)
        if not (norms > 0).all():
            raise ValueError("Z: a column has zero norm, so it cannot be normalised")
        Z = Z / norms
    return Z


def _as_real(name, value, expected):
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected {expected}, got {value!r}") from error


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


def as_positive_int(name, value):
    """``value`` as an int ≥ 1 (booleans and fractional numbers rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def as_fraction(name, value, *, closed_right):
    """``value`` as a float in (0, 1] (``closed_right``) or (0, 1)."""
    value = _as_real(name, value, "a number in (0, 1)")
    upper_ok = value <= 1 if closed_right else value < 1
    if not (value > 0 and upper_ok):
        interval = "(0, 1]" if closed_right else "(0, 1)"
        raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")
    return value
