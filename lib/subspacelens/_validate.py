"""Scalar argument checks shared by the metrics, the analysis layer and the resampling engine.

It imports nothing from the package, so ``subspacelens.stats`` and ``subspacelens.metrics`` can both use it
without an import cycle. Every check raises a ``ValueError`` whose message starts with the argument's name.
"""

import numpy as np


def _as_real(name, value, expected):
    """``float(value)``; booleans are refused (``True`` is not the number 1 a caller meant)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected {expected}, got the boolean {value!r}")
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


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices``; otherwise ``ValueError`` naming ``name`` and listing them."""
    choices = list(choices)
    try:
        known = value in choices
    except (TypeError, ValueError):  # an array compared element-wise
        known = False
    if not known:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


def check_n_boot(n_boot):
    """The number of bootstrap resamples as an int ≥ 1."""
    return as_positive_int("n_boot", n_boot)


def check_level(level):
    """A confidence level in (0, 1) as a float (0.95 for a 95% interval)."""
    return as_fraction("level", level, closed_right=False)
