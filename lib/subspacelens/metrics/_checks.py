"""Input validation and the explicit preprocessing options shared by every metric.

Every public metric funnels its arguments through these helpers, so a bad argument fails the same way
everywhere: a ``ValueError`` whose message starts with the argument's name.
"""

import numpy as np
import xarray as xr

from .._validate import _as_real, as_fraction, as_positive_int, check_choice, check_level, check_n_boot  # noqa: F401
from .transforms import prepare, scale_and_center

#: the dims a DataArray passed as ``Z`` must end with (in either order; it is transposed to this one).
SAMPLE_DIMS = ("feature", "sample")
#: headroom below the largest float64: ``I + αZᵀZ`` and its Cholesky factor must stay finite.
_FLOAT_HEADROOM = np.finfo(np.float64).max / 16


def as_array(Z):
    """``Z`` as an array ``(..., d, N)``; a ``DataArray`` by its dims, which must end in :data:`SAMPLE_DIMS`
    in either order (``(..., "sample", "feature")`` is transposed), so a forgotten transpose cannot pass."""
    if not isinstance(Z, xr.DataArray):
        return np.asarray(Z)
    if Z.ndim < 2 or set(Z.dims[-2:]) != set(SAMPLE_DIMS):
        raise ValueError(
            f"Z: a DataArray must have last two dims {SAMPLE_DIMS} (in either order), got dims {Z.dims}; "
            f"select or transpose it, e.g. Z.transpose(..., 'feature', 'sample')"
        )
    return Z.transpose(..., *SAMPLE_DIMS).values


def as_samples(Z, *, center=False, normalize=False, scale=None, codes=None, min_samples=1):
    r"""Return ``Z`` as a float64 array of shape ``(..., d, N)``, prepared as asked (nothing by default).

    ``center`` (False / True / ``"class"``, the latter with integer class ``codes``) and ``scale``
    (None / ``"rms"`` / ``"unit"``; ``normalize=True`` is ``scale="unit"``) follow
    :mod:`~subspacelens.metrics.transforms`. A ``DataArray`` is read by its dims (:func:`as_array`).
    Values so large that :math:`dN\max|Z|^2` overflows float64 are refused: every Gram and norm of them
    would be inf.
    """
    center, scale = scale_and_center(center, scale, normalize)
    Z = as_array(Z)
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
    largest = np.abs(Z).max()
    if largest > np.sqrt(_FLOAT_HEADROOM / (d * n_samples)):
        raise ValueError(f"Z: values up to {largest:.3g} overflow float64 in its Gram matrix; rescale Z")
    return prepare(Z, codes, center=center, scale=scale)


def as_eps(eps):
    """The unsquared coding precision ε as a positive finite float whose square is a normal float64."""
    eps = _as_real("eps", eps, "a positive real number")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps: expected a positive finite number, got {eps!r}")
    if not _inverse_square_is_finite(eps):
        raise ValueError(f"eps: {eps!r} is so small that 1/ε² overflows float64")
    return eps


def as_eps_values(eps_values):
    """A non-empty 1-D float64 array of positive finite precisions ε."""
    if np.asarray(eps_values).dtype == bool:
        raise ValueError(f"eps_values: expected positive numbers, got booleans {eps_values!r}")
    try:
        eps_values = np.asarray(eps_values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"eps_values: expected a 1-D array of positive numbers ({error})") from error
    if eps_values.ndim != 1 or eps_values.size == 0:
        raise ValueError(f"eps_values: expected a non-empty 1-D array, got shape {eps_values.shape}")
    if not (np.isfinite(eps_values).all() and (eps_values > 0).all()):
        raise ValueError("eps_values: every ε must be positive and finite")
    if not _inverse_square_is_finite(eps_values):
        raise ValueError(f"eps_values: {float(eps_values.min())!r} is so small that 1/ε² overflows float64")
    return eps_values


def _inverse_square_is_finite(eps):
    with np.errstate(over="ignore", divide="ignore"):
        return bool(np.isfinite(1.0 / np.square(np.float64(eps))).all())


def check_rate_scale(alpha, trace):
    r"""Refuse a coding rate :math:`\tfrac12\log\det(I + \alpha P)` whose matrix would overflow float64.

    Every entry of the PSD matrix :math:`\alpha P` is at most :math:`\alpha\,\mathrm{tr}\,P`, so a finite
    bound on that product keeps the Cholesky factor (and every eigenvalue) finite; otherwise the rate
    would silently be inf or NaN. ``alpha`` may be an array (one per ε), ``trace`` one per slice.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        bound = np.max(alpha) * np.max(trace, initial=0.0)
    bound = float(bound)
    if not bound <= _FLOAT_HEADROOM:
        raise ValueError(
            f"eps: too small for the scale of Z: d/(Nε²)·tr(ZᵀZ) = {bound:.3g} overflows float64 "
            "(use a larger eps, or rescale Z)"
        )


def as_labels(labels, n_samples):
    """``labels`` as a 1-D array of N sortable class labels without missing values (None, NaN)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels: expected a 1-D array of length N={n_samples}, got shape {labels.shape}")
    if labels.shape[0] != n_samples:
        raise ValueError(f"labels: has length {labels.shape[0]} but Z has N={n_samples} columns")
    missing = [i for i, label in enumerate(labels.tolist()) if label is None or label != label]  # NaN != NaN
    if missing:
        raise ValueError(f"labels: missing (None or NaN) at positions {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    try:
        np.unique(labels)
    except TypeError as error:
        kinds = sorted({type(label).__name__ for label in labels.tolist()})
        raise ValueError(f"labels: cannot be sorted into classes, they mix types {kinds} ({error})") from error
    return labels


