"""Scalar argument checks shared by the metrics and the resampling engine (no package imports, so no cycles)."""

import numpy as np


def _as_real(name, value, expected):
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected {expected}, got {value!r}") from error


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
