"""One resampling engine for every interval and null of the library and the book.

* :mod:`.draws` owns every random draw: stratified and cluster bootstrap index sets, free and restricted
  (within-group) permutations. One RNG contract: ``numpy.random.default_rng(seed)``, and every draw returns an
  ``(n_sets, N)`` integer array of column positions, so one resampling serves every slice of a batched ``Z``.
* :mod:`.intervals` owns the interval code: percentile and re-centred percentile intervals, p-values of a null,
  multiplicity corrections, and intervals of functions of several blocks (ratios, Spearman ρ with depth,
  the location of an argmin/argmax).
"""

from .draws import (
    bootstrap_indices,
    check_groups,
    cluster_bootstrap,
    permutation_indices,
    stratified_bootstrap,
)
from .intervals import (
    adjust_p_values,
    argextremum_interval,
    centred_interval,
    check_level,
    null_p_value,
    percentile_interval,
    spearman_with_depth,
)

__all__ = [
    "adjust_p_values",
    "argextremum_interval",
    "bootstrap_indices",
    "centred_interval",
    "check_groups",
    "check_level",
    "cluster_bootstrap",
    "null_p_value",
    "percentile_interval",
    "permutation_indices",
    "spearman_with_depth",
    "stratified_bootstrap",
]
