"""Training-free subspace metrics on frozen activations (MCR² coding rates and friends).

Conventions, binding for every function here:

* ``Z`` has shape ``(..., d, N)``: one **column** per sample; leading dimensions (layers, steps,
  branches) are batch dimensions and every metric is batched over them.
* ``eps`` is the *unsquared* coding precision ε, default 0.5; rates are in **nats**.
* No hidden normalisation: ``center=False``, ``scale=None`` by default. ``center=True`` subtracts the
  per-slice mean column, ``center="class"`` each class's mean; ``scale="rms"`` makes ε relative to the
  slice's RMS column norm (every rate then invariant to Z → cZ), ``scale="unit"`` (= ``normalize=True``)
  puts every column on the unit sphere (:mod:`.transforms`).
* Computation in float64. Log-determinants come from a Cholesky factor of ``I + α·Gram`` (every
  eigenvalue ≥ 1) for one ε, and from clamped ``eigvalsh`` for ε-curves and spectra — never ``slogdet``.
* ``labels``: any 1-D array-like of length N; classes are ``np.unique(labels)`` (sorted).
* Label-dependent quantities (class rates, permutations, resamples, class bases) are read from sub-blocks
  of the one Gram ``ZᵀZ`` (:mod:`.gram`).
* Bad input raises ``ValueError`` whose message starts with the argument's name.
"""

from .bootstrap import BootstrapCI, bootstrap_ci
from .coding_rate import coding_rate, coding_rate_curve
from .isotropy import IsotropyResult, epps_pulley, isotropy_test, jarque_bera_rejection
from .overlap import OverlapNull, SubspaceOverlap, mean_offdiagonal, overlap_null, subspace_overlap
from .moments import (
    ClassMoments,
    class_moments,
    class_swap_null,
    coding_rate_from_moments,
    effective_rank_from_moments,
    image_permutation_null,
    participation_ratio_from_moments,
    rate_reduction_from_moments,
    subspace_overlap_from_moments,
)
from .permutation import PermutationNull, permutation_null
from .rate_reduction import RateReduction, RateReductionSplit, rate_reduction, rate_reduction_curve, rate_reduction_split
from .transforms import CENTERS, SCALES
from .sparsity import hoyer_sparsity
from .spectrum import effective_rank, participation_ratio

__all__ = [
    "CENTERS",
    "SCALES",
    "ClassMoments",
    "class_moments",
    "class_swap_null",
    "coding_rate_from_moments",
    "effective_rank_from_moments",
    "image_permutation_null",
    "participation_ratio_from_moments",
    "rate_reduction_from_moments",
    "subspace_overlap_from_moments",
    "BootstrapCI",
    "OverlapNull",
    "RateReductionSplit",
    "overlap_null",
    "rate_reduction_split",
    "IsotropyResult",
    "PermutationNull",
    "RateReduction",
    "SubspaceOverlap",
    "bootstrap_ci",
    "coding_rate",
    "coding_rate_curve",
    "effective_rank",
    "epps_pulley",
    "hoyer_sparsity",
    "isotropy_test",
    "jarque_bera_rejection",
    "mean_offdiagonal",
    "participation_ratio",
    "permutation_null",
    "rate_reduction",
    "rate_reduction_curve",
    "subspace_overlap",
]
