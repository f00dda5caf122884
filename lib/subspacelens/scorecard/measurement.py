"""What a measure returns, and how its numbers are written in the table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Measurement:
    """Named quantities (floats; ``q_low``/``q_high`` for an interval) and the "this run" text of the table."""

    quantities: dict = field(default_factory=dict)
    display: str = ""

    def add(self, name, value, low=None, high=None):
        self.quantities[name] = float(value)
        if low is not None:
            self.quantities[f"{name}_low"] = float(low)
            self.quantities[f"{name}_high"] = float(high)
        return self

    def interval(self, name, digits=3):
        """``"1.8 [1.7, 1.9]"``: a quantity with its interval when it has one."""
        q = self.quantities
        text = fmt(q[name], digits)
        if f"{name}_low" in q:
            text += f" [{fmt(q[name + '_low'], digits)}, {fmt(q[name + '_high'], digits)}]"
        return text


def fmt(x, digits=3):
    """A number in at most ``digits`` significant digits (scientific outside 1e-3 … 1e4)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    x = float(x)
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def at_most(x, floor, digits=3):
    """``"below 1e-06"`` for ``|x| < floor``, else ``x`` in ``digits`` significant digits.

    For quantities that are 0 by construction (an exact null): their last bits follow the order a parallel
    sum ran in, so printing them would make a page differ between reruns; the bound is what is known.
    """
    return f"below {floor:g}" if abs(float(x)) < floor else fmt(x, digits)
