"""The known factors of the generated images, read from the sample coordinates of an activation cache.

A factor is a sample coordinate with its kind: ``"categorical"`` (strings, integers: ``category``,
``subject``, ``seed``, ``colour``) or ``"continuous"`` (floats: ``position_x``, ``position_y``, ``scale``).
Scores that need classes (AUC, ARI/NMI, class means) read a continuous factor through equal-frequency
bins (:meth:`Factor.classes`); linear probes read its values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..metrics._checks import as_positive_int

__all__ = ["DEFAULT_FACTORS", "Factor", "factors_of"]

DEFAULT_FACTORS = ("category", "subject", "seed", "colour", "position_x", "position_y", "scale")
"""The organism's labelled factors (category, subject), its per-image seed, and the nuisance factors a
procedural image records (colour, position, scale) that no label of the blog names."""


@dataclass(frozen=True)
class Factor:
    """One known factor: ``values`` (``N``) and ``kind`` (``"categorical"`` or ``"continuous"``)."""

    name: str
    values: np.ndarray
    kind: str

    def classes(self, n_bins: int = 4) -> np.ndarray:
        """Class labels (``N`` ints): the categories themselves, or ``n_bins`` equal-frequency bins of a
        continuous factor (its quantiles; bin ``b`` holds the values between quantiles ``b/n`` and ``(b+1)/n``)."""
        if self.kind == "categorical":
            return np.unique(self.values, return_inverse=True)[1]
        n_bins = as_positive_int("n_bins", n_bins)
        edges = np.quantile(self.values, np.linspace(0, 1, n_bins + 1)[1:-1])
        return np.searchsorted(edges, self.values, side="right")

    def target(self) -> np.ndarray:
        """What a linear probe predicts (``N × c``): the one-hot classes, or the standardised value."""
        if self.kind == "categorical":
            codes = self.classes()
            return (codes[:, None] == np.arange(codes.max() + 1)).astype(np.float64)
        values = self.values.astype(np.float64)
        return ((values - values.mean()) / (values.std() or 1.0))[:, None]


def factors_of(ds, names: Sequence[str] = DEFAULT_FACTORS, *, note: Callable[[str], None] = print) -> dict[str, Factor]:
    """The factors ``names`` that the cache ``ds`` records as sample coordinates, in the order given.

    A name the cache lacks is skipped, and ``note`` is told so (``print`` by default), so one parameter
    list serves caches with and without the nuisance coordinates. A name that is no sample coordinate of
    any kind, or an empty result, raises ``ValueError``.
    """
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ValueError(f"names: expected a non-empty list of sample-coordinate names, got {names!r}")
    found, absent = {}, []
    for name in names:
        if name not in ds.coords or ds[name].dims != ("sample",):
            absent.append(name)
            continue
        values = np.asarray(ds[name].values)
        kind = "continuous" if np.issubdtype(values.dtype, np.floating) else "categorical"
        found[name] = Factor(name=name, values=values, kind=kind)
    if absent:
        note(f"factors not recorded in this cache, skipped: {', '.join(absent)}")
    if not found:
        raise ValueError(f"names: none of {list(names)} is a sample coordinate of the cache "
                         f"(it has {[c for c in ds.coords if ds[c].dims == ('sample',)]})")
    return found
