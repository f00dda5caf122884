r"""Stratified bootstrap confidence intervals for the label-based metrics.

Each resample draws :math:`N_j` samples with replacement *within* every class j (class sizes are kept),
and the statistic is recomputed on it; the interval is the percentile interval of the resampled values.
A resample's Gram is a (repeated-index) principal block of the one Gram :math:`Z^\top Z`, laid out class
by class, so no resample touches ``Z``. Centring and normalisation are redone on every resample (on the
Gram: :math:`HGH` and :math:`D^{-1/2}GD^{-1/2}`), as the estimator would on new data.

Caveat: a resample repeats about a third of each class's columns, which lowers its rank, so resampled
rate statistics are biased when N_j is small next to d (at 20 samples a class in d = 1152 the shift can
exceed the spread, and the percentile interval can miss the estimate). ``samples`` is returned so a
caller can inspect that bias or re-centre the replicates on ``estimate``.

Statistics: ``"delta_R"``, ``"R"``, ``"Rc"``, ``"Rc_over_R"`` (the share of the total volume each class
keeps) and ``"mean_overlap"`` (mean off-diagonal subspace overlap). Same conventions as the rest of
:mod:`subspacelens.metrics`. The total rate of a resample is read from its N×N Gram block when N ≤ d and
from the d×d second moment of its (prepared) columns when d < N, whichever is smaller.
"""

from dataclasses import dataclass

import numpy as np

from ._checks import as_eps, as_fraction, as_positive_int, check_choice, check_level, check_n_boot, preprocess
from .coding_rate import rate_from_product
from .gram import center_gram, chunk_slices, normalize_gram, principal_blocks, second_moment
from .labels import labelled_gram, sorted_partition
from .overlap import mean_offdiagonal, overlap_from_gram
from .rate_reduction import class_rate_at, within_class_rate

STATISTICS = ("delta_R", "R", "Rc", "Rc_over_R", "mean_overlap")


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile bootstrap interval; ``estimate``, ``low``, ``high`` have shape ``Z.shape[:-2]``.

    ``samples`` (…, n_boot) holds the resampled values; ``statistic`` and ``level`` echo the request.
    """

    statistic: str
    level: float
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    samples: np.ndarray


def label_statistic(G, total, partition, statistic, d, eps, rank, energy):
    """One of ``STATISTICS`` from a Gram ``G`` (…, N, N) whose samples are partitioned by ``partition``.

    ``total`` is the matrix the total rate is read from: ``G`` itself, or the d×d second moment when d < N.
    """
    if statistic == "mean_overlap":
        return mean_offdiagonal(overlap_from_gram(G, partition, rank, energy)[0])
    Rc = within_class_rate(G, partition, class_rate_at(eps, d))
    if statistic == "Rc":
        return Rc
    R = rate_from_product(total, d, partition.n_samples, eps)
    return {"R": R, "delta_R": R - Rc, "Rc_over_R": Rc / R}[statistic]


def bootstrap_ci(
    Z,
    labels,
    statistic="delta_R",
    n_boot=1000,
    level=0.95,
    seed=0,
    *,
    eps=0.5,
    rank=None,
    energy=0.9,
    center=False,
    normalize=False,
):
    """Stratified percentile bootstrap interval for a label-based ``statistic`` of ``Z`` (``(..., d, N)``).

    Every class needs at least 2 samples (``"mean_overlap"`` also needs 2 classes); ``eps`` applies to the
    rate statistics, ``rank``/``energy`` to the overlap (as in :func:`subspace_overlap`). Deterministic
    under ``seed``; the same resamples serve every slice of a batched ``Z``.
    """
    check_choice("statistic", statistic, STATISTICS)
    n_boot = check_n_boot(n_boot)
    level = check_level(level)
    eps = as_eps(eps)
    if rank is not None:
        rank = as_positive_int("rank", rank)
    energy = as_fraction("energy", energy, closed_right=True)
    # Centring and normalisation happen on each resample's Gram, so Z is taken as it is here.
    Z, partition, G = labelled_gram(Z, labels, min_class_size=2)
    d, n_samples = Z.shape[-2:]
    if statistic == "mean_overlap" and partition.classes.size < 2:
        raise ValueError("labels: mean_overlap needs at least 2 classes")

    layout = sorted_partition(partition)

    def statistic_of(order):
        """The statistic of the samples ``order`` (…, n_sets, N) lists class by class, prepared afresh."""
        resampled_gram = principal_blocks(G, order)
        resampled_gram = center_gram(resampled_gram) if center else resampled_gram
        resampled_gram = normalize_gram(resampled_gram) if normalize else resampled_gram
        total = resampled_gram
        if n_samples > d and statistic in ("R", "delta_R", "Rc_over_R"):
            # The d×d second moment of the prepared columns factorises faster than the N×N Gram.
            columns = np.moveaxis(np.take(Z, order, axis=-1), -3, -2)  # (…, n_sets, d, N)
            total = second_moment(preprocess(columns, center=center, normalize=normalize))
        return label_statistic(resampled_gram, total, layout, statistic, d, eps, rank, energy)

    estimate = statistic_of(partition.index[partition.mask][None])[..., 0]

    rng = np.random.default_rng(seed)
    draws = np.floor(rng.random((n_boot,) + partition.index.shape) * partition.sizes[:, None]).astype(np.intp)
    resampled = partition.index[np.arange(partition.classes.size)[:, None], draws]  # (n_boot, K, n_max)
    resample_order = resampled[:, partition.mask]  # (n_boot, N), class by class
    samples = np.empty(estimate.shape + (n_boot,))
    for chunk in chunk_slices(n_boot, estimate.size * n_samples**2):
        samples[..., chunk] = statistic_of(resample_order[chunk])

    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=-1)
    return BootstrapCI(statistic=statistic, level=level, estimate=estimate, low=low, high=high, samples=samples)
