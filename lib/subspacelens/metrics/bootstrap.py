r"""Bootstrap confidence intervals for the label-based metrics (the draws come from :mod:`subspacelens.stats`).

Each resample is a row of column positions (:func:`subspacelens.stats.bootstrap_indices`: stratified
within classes, or whole clusters — e.g. the noise seeds of the crossed subject × seed design); the
statistic is recomputed on it. When N ≤ d a resample's Gram is a (repeated-index) principal block of the
one Gram :math:`Z^\top Z`, so no resample touches ``Z``; when d < N its columns are gathered and the d×d
second moment and each class's Gram or d×d scatter, whichever is smaller, are formed from them. Centring, scaling and class-centring
(:mod:`.transforms`) are redone on every resample, as the estimator would on new data.

Caveat: a resample repeats about a third of each class's columns, which lowers its rank, so resampled
rate statistics are biased when N_j is small next to d (at 20 samples a class in d = 1152 the shift can
exceed the spread, and the percentile interval can miss the estimate). ``samples`` is returned so a
caller can inspect that bias or re-centre the replicates on ``estimate``.

A resample repeats columns, and a repeated column adds nothing to the span, only weight: with the
multiplicities :math:`c_i` of the m distinct columns :math:`U` of a resample (m ≈ 0.63 N),

.. math::

    \log\det(I_N + \alpha G_{\text{resample}}) = \log\det(I_m + \alpha\, C^{1/2} U^\top U\, C^{1/2}),
    \qquad C = \operatorname{diag}(c),

(Sylvester: both equal :math:`\log\det(I_d + \alpha\, U C U^\top)`), so the total rate of a resample is
read from an m×m matrix (about a quarter of the Cholesky work of the N×N one); resamples with the same m
are factorised as one stack. The class blocks are small and are factorised as they are.

Statistics: ``"delta_R"``, ``"R"``, ``"Rc"``, ``"Rc_over_R"`` (the share of the total volume each class
keeps) and ``"mean_overlap"`` (mean off-diagonal subspace overlap). Same conventions as the rest of
:mod:`subspacelens.metrics`. The total rate of a resample is read from its N×N Gram block when N ≤ d and
from the d×d second moment of its (prepared) columns when d < N, whichever is smaller.
"""

from dataclasses import dataclass

import numpy as np

from ..stats.draws import bootstrap_indices
from ..stats.intervals import percentile_interval
from ._checks import (
    as_eps,
    as_fraction,
    as_positive_int,
    as_samples,
    check_choice,
    check_level,
    check_n_boot,
)
from .coding_rate import rate_from_product
from .gram import chunk_slices, gram, normalize_gram, principal_blocks, second_moment
from .labels import partition_labels
from .overlap import class_overlaps, feature_route_is_cheaper, mean_offdiagonal
from .rate_reduction import class_rate_at, within_class_rate
from .transforms import prepare, prepare_gram, scale_and_center

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


def rate_statistics(R, Rc, statistics):
    """``{statistic: array}`` for the rate ``statistics`` of a total rate ``R`` and a within-class rate ``Rc``."""
    fields = {"R": R, "Rc": Rc, "delta_R": R - Rc, "Rc_over_R": Rc / R}
    return {s: fields[s] for s in statistics}


def label_statistics(G, total, partition, statistics, d, eps, rank, energy, columns=None):
    """``{statistic: array}`` of ``STATISTICS`` for samples partitioned by ``partition`` (laid out class by class).

    ``G`` (…, N, N) is their Gram, or None when ``columns`` (…, d, N), the samples themselves, are given
    (class matrices are then formed from them, and an overlap must take its feature route); ``total`` is the
    matrix the total rate is read from (``G`` itself, or the d×d second moment when d < N), or a callable
    returning that rate.
    """
    out = {}
    if "mean_overlap" in statistics:
        out["mean_overlap"] = mean_offdiagonal(class_overlaps(columns, G, partition, rank, energy)[0])
    rates = [s for s in statistics if s != "mean_overlap"]
    if not rates:
        return out
    Rc = within_class_rate(columns, G, partition, class_rate_at(eps, d))
    R = total() if callable(total) else rate_from_product(total, d, partition.n_samples, eps)
    out.update(rate_statistics(R, Rc, rates))
    return out


def distinct_columns(rows):
    """The distinct entries of every row of ``rows`` (n_sets, N), grouped by how many a row has.

    Yields ``(sets, positions, values, counts)``, each but ``sets`` of shape (len(sets), m): the indices of the
    rows with m distinct entries, the position in its row of each entry's first occurrence, the entry itself
    and its multiplicity.
    """
    n_samples = rows.shape[1]
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    first = np.ones(rows.shape, dtype=bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    n_distinct = first.sum(axis=1)
    for m in np.unique(n_distinct):
        sets = np.flatnonzero(n_distinct == m)
        starts = np.nonzero(first[sets])[1].reshape(sets.size, m)  # where each distinct entry starts in `ordered`
        counts = np.diff(np.concatenate([starts, np.full((sets.size, 1), n_samples)], axis=1), axis=1)
        positions = np.take_along_axis(order[sets], starts, axis=1)
        values = np.take_along_axis(ordered[sets], starts, axis=1)
        yield sets, positions, values, counts


def resampled_total_rate(G, rows, d, eps, *, stacked):
    r"""Total rate of every resample listed in ``rows`` (n_sets, N), duplicates collapsed into weights.

    ``stacked=True``: ``G`` (…, n_sets, N, N) holds each resample's Gram of its (prepared) columns, in row
    order; exact because a prepared duplicate is still a duplicate (centring and scaling act on a column
    through its value, class-centring through its class, which a duplicate shares). ``stacked=False``: ``G``
    (…, N, N) is the Gram of the original columns, for resamples that need no re-preparation. ``eps`` is a
    scalar or one precision per resample (…, n_sets).
    """
    n_samples = rows.shape[1]
    eps = np.asarray(eps, dtype=np.float64)
    out = np.empty(G.shape[:-3] + (rows.shape[0],) if stacked else G.shape[:-2] + (rows.shape[0],))
    for sets, positions, values, counts in distinct_columns(rows):
        if stacked:  # one flat take from the stack: entry (p_a, p_b) of set s is s·N² + p_a·N + p_b
            flat = (sets[:, None, None] * n_samples + positions[:, :, None]) * n_samples + positions[:, None, :]
            blocks = np.take(G.reshape(G.shape[:-3] + (-1,)), flat, axis=-1)
        else:
            blocks = principal_blocks(G, values)
        weights = np.sqrt(counts)
        out[..., sets] = rate_from_product(blocks * weights[..., :, None] * weights[..., None, :], d, n_samples,
                                           eps[..., sets] if eps.ndim else eps)
    return out


def resampled_statistics(Z, labels, rows, statistics, *, eps=0.5, rank=None, energy=0.9, center=False, scale=None):
    """``{statistic: (…, n_sets)}``: each statistic of the samples listed by every row of ``rows`` (n_sets, N).

    ``Z`` is validated float64 ``(…, d, N)`` as it is (unprepared); each row is re-laid class by class (a
    stable sort by its labels) and must keep every class size (stratified and crossed-cluster resamples
    do; permutations are handled by :func:`~subspacelens.metrics.permutation_null`). Preparation
    (``center``, ``scale``) is redone on every resampled data set. Without centring (and without an
    overlap), no resample's N×N Gram is formed: unit norms act column by column and commute with
    resampling, and ``scale="rms"`` is one precision per resample (ε·ρ, with ρ² the resample's mean
    squared column norm), so the class blocks and the collapsed total come straight from the one Gram.
    """
    statistics = list(statistics)
    partition = partition_labels(labels, Z.shape[-1])
    d, n_samples = Z.shape[-2:]
    codes = partition.codes
    rows = np.take_along_axis(rows, np.argsort(codes[rows], axis=1, kind="stable"), axis=1)
    resampled_sizes = np.stack([np.bincount(codes[row], minlength=partition.classes.size) for row in rows[:1]])
    if not (resampled_sizes == partition.sizes).all():
        raise ValueError("rows: a resample changes the class sizes; use strata or crossed clusters")
    layout = partition_labels(np.repeat(partition.classes, partition.sizes), n_samples)
    layout_codes = layout.codes
    G_all = None if n_samples > d else gram(Z)  # d < N: every resample is formed from its columns instead
    from_one_gram = G_all is not None and center is False and "mean_overlap" not in statistics
    if from_one_gram and scale == "unit":
        G_all = normalize_gram(G_all)
    lead = Z.shape[:-2]
    out = {s: np.empty(lead + (rows.shape[0],)) for s in statistics}
    per_set = int(np.prod(lead, dtype=np.int64)) * max(n_samples * n_samples, d * n_samples)
    for chunk in chunk_slices(rows.shape[0], per_set):
        block = rows[chunk]
        if n_samples > d:
            columns = prepare(np.moveaxis(np.take(Z, block, axis=-1), -2, -3), layout_codes,
                              center=center, scale=scale)  # (…, n_sets, d, N)
            # the class rates come from the columns; the full Gram only for an overlap on its Gram route
            needs_gram = "mean_overlap" in statistics and not feature_route_is_cheaper(d, layout)
            values = label_statistics(gram(columns) if needs_gram else None, second_moment(columns), layout,
                                      statistics, d, eps, rank, energy, columns=columns)
        elif from_one_gram:
            set_eps = eps
            if scale == "rms":  # ε·ρ per resample, ρ² = its mean squared column norm
                set_eps = eps * np.sqrt(np.einsum("...ii->...i", G_all)[..., block].mean(axis=-1))
            values = resampled_rates(G_all, block, layout, statistics, d, set_eps)
        else:
            G = prepare_gram(principal_blocks(G_all, block), layout_codes, center=center, scale=scale)
            values = label_statistics(G, lambda: resampled_total_rate(G, block, d, eps, stacked=True), layout,
                                      statistics, d, eps, rank, energy)
        for s in statistics:
            out[s][..., chunk] = values[s]
    return out


def resampled_rates(G, rows, layout, statistics, d, eps):
    """The rate statistics of the resamples ``rows`` (n_sets, N, laid out as ``layout``) from the one Gram ``G``.

    ``eps`` is a scalar or one precision per resample (…, n_sets).
    """
    set_eps = np.asarray(eps, dtype=np.float64)
    class_eps = set_eps[..., None] if set_eps.ndim else set_eps  # broadcasts over each set's classes
    Rc = within_class_rate(None, G, layout, class_rate_at(class_eps, d), index=rows[:, layout.index])
    R = resampled_total_rate(G, rows, d, set_eps, stacked=False)
    return rate_statistics(R, Rc, statistics)


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
    scale=None,
    normalize=False,
    clusters=None,
):
    """Percentile bootstrap interval for a label-based ``statistic`` of ``Z`` (``(..., d, N)``).

    Resamples are stratified by ``labels``, or — with ``clusters`` (length N, e.g. the noise seeds) —
    whole clusters drawn with replacement (the crossed design's dependence kept). Every class needs at
    least 2 samples (``"mean_overlap"`` also needs 2 classes); ``eps`` applies to the rate statistics,
    ``rank``/``energy`` to the overlap (as in :func:`subspace_overlap`). Deterministic under ``seed``; the
    same resamples serve every slice of a batched ``Z``.
    """
    check_choice("statistic", statistic, STATISTICS)
    n_boot = check_n_boot(n_boot)
    level = check_level(level)
    eps = as_eps(eps)
    if rank is not None:
        rank = as_positive_int("rank", rank)
    energy = as_fraction("energy", energy, closed_right=True)
    center, scale = scale_and_center(center, scale, normalize)
    Z = as_samples(Z)
    partition = partition_labels(labels, Z.shape[-1], min_class_size=2)
    if statistic == "mean_overlap" and partition.classes.size < 2:
        raise ValueError("labels: mean_overlap needs at least 2 classes")
    options = dict(eps=eps, rank=rank, energy=energy, center=center, scale=scale)
    identity = np.arange(Z.shape[-1])[None]
    estimate = resampled_statistics(Z, labels, identity, [statistic], **options)[statistic][..., 0]
    rows = bootstrap_indices(n_boot, seed, strata=labels, clusters=clusters)
    samples = resampled_statistics(Z, labels, rows, [statistic], **options)[statistic]
    low, high = percentile_interval(samples, level)
    return BootstrapCI(statistic=statistic, level=level, estimate=estimate, low=low, high=high, samples=samples)
