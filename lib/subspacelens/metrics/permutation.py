r"""Permuted-labels null for the rate reduction: is :math:`\Delta R` specific to these labels?

Shuffling the labels keeps every class size, the total rate R and the Gram; only :math:`R_c` changes, and
each permuted class Gram is again a principal block of the same :math:`Z^\top Z`. All permutations'
class blocks of one size are factorised as one (…, P, K_n, n, n) Cholesky stack (in memory-bounded
chunks). Same conventions as :func:`~subspacelens.metrics.rate_reduction`.

Restricted nulls (``within=groups``): labels are exchanged only inside each group, e.g. subjects permuted
within their category (does a subject carry geometry beyond its category?) or within a seed (the v2
design is crossed: every subject uses the same noise seeds).

Class-centred ΔR (``center="class"``): every relabelling is class-centred by its own classes, so the null
is that of the whole class-centred statistic under exchangeable labels — exact when the labels carry
nothing. When the classes differ in their means, a shuffled class keeps part of the true means, so the null
sits *above* the observed value: the test is then conservative (mean separation is never mistaken for
within-class geometry). Permuting class-centred *residuals* instead is biased the other way (a relabelled
residual set is centred twice and loses about K/N of its energy), which is why it is not used. The class
means move with the labels, so the total rate changes under every relabelling too. With :math:`A = I + \alpha S` (the prepared
data's second moment S) and :math:`M = [\,s_j/\sqrt{N_j}\,]_j` (class sums :math:`s_j`), the class-centred
second moment is :math:`S - MM^\top`, and the matrix determinant lemma gives

.. math::

    \log\det(I + \alpha(S - MM^\top)) = \log\det A + \log\det(I_K - \alpha M^\top A^{-1} M),

so each permutation costs one K×K factorisation after one :math:`A^{-1}` per slice. On the Gram side
(N < d) :math:`\alpha M^\top A^{-1} M = \alpha D^{-1/2} E^\top G (I + \alpha G)^{-1} E D^{-1/2}`
(E the class indicators, D their sizes).
"""

from dataclasses import dataclass

import numpy as np

from ..stats.draws import permutation_indices
from ..stats.intervals import null_p_value
from ._checks import as_eps, as_positive_int
from .coding_rate import coding_alpha, rate_from_product
from .gram import center_gram, chunk_slices, logdet_identity_plus, second_moment
from .labels import labelled_gram
from .rate_reduction import class_rate_at, rate_reduction_from_gram, within_class_rate
from .transforms import as_center, prepare


@dataclass(frozen=True)
class PermutationNull:
    r"""Observed :math:`\Delta R` against its permuted-labels null; shapes ``(...)`` = ``Z.shape[:-2]``.

    ``null`` (…, n_permutations): :math:`\Delta R` under each shuffle; ``p_value``:
    :math:`(1 + \#\{\text{null} \ge \text{observed}\}) / (1 + n)`; ``excess``: observed − mean(null) (nats
    above what the labels' sizes alone give); ``z_score``: excess / sd(null), the standardised effect.
    """

    observed: np.ndarray
    null: np.ndarray
    p_value: np.ndarray
    excess: np.ndarray
    z_score: np.ndarray

    @property
    def effect(self):
        """The standardised effect (an alias of ``z_score``, the name the book prints)."""
        return self.z_score


def _class_centred_totals(Z, G, partition, eps, relabellings):
    r"""Total rate of the class-centred data for every relabelling (…, P), by the determinant lemma."""
    d, n_samples = Z.shape[-2:]
    alpha = coding_alpha(d, n_samples, eps)
    sizes = partition.sizes
    classes = sizes.size
    base = 0.5 * logdet_identity_plus(second_moment(Z) if n_samples > d else G, alpha)
    # rows: for each relabelling, the columns of each class laid out class by class (padding masked)
    index = relabellings[:, partition.index]  # (P, K, n_max)
    mask = partition.mask
    use_features = d * n_samples + classes * d * d < n_samples * n_samples
    if use_features:
        inverse = np.linalg.inv(np.eye(d) + alpha * second_moment(Z))  # (..., d, d)
    else:
        inverse = G @ np.linalg.inv(np.eye(n_samples) + alpha * G)  # G (I + αG)^{-1}, symmetric
    scale = 1.0 / np.sqrt(sizes)
    out = np.empty(base.shape + (relabellings.shape[0],))
    per_set = base.size * max(d * n_samples, n_samples * classes)
    for chunk in chunk_slices(relabellings.shape[0], per_set):
        rows = index[chunk]  # (p, K, n_max)
        if use_features:
            columns = np.take(Z, rows, axis=-1) * mask  # (..., d, p, K, n_max)
            M = np.moveaxis(columns.sum(axis=-1), -3, -2) * scale  # (..., p, d, K)
            Q = alpha * M.swapaxes(-1, -2) @ inverse[..., None, :, :] @ M
        else:  # Eᵀ B E for every relabelling's 0/1 class indicators E: one GEMM B [E_1 … E_p], then p small ones
            n_sets = rows.shape[0]
            indicators = np.zeros((n_samples, n_sets, classes))
            sets, members = np.nonzero(np.broadcast_to(mask, rows.shape).reshape(n_sets, -1))
            indicators[rows.reshape(n_sets, -1)[sets, members], sets, members // mask.shape[1]] = 1.0
            weighted = (inverse @ indicators.reshape(n_samples, -1)).reshape(base.shape + (n_samples, n_sets, classes))
            Q = np.moveaxis(indicators, 0, -1) @ np.moveaxis(weighted, -3, -2)  # (..., p, K, K)
            Q = alpha * Q * scale[:, None] * scale[None, :]
        lower = np.linalg.cholesky(np.eye(classes) - Q)
        out[..., chunk] = base[..., None] + np.log(np.einsum("...ii->...i", lower)).sum(axis=-1)
    return out


def permutation_null(Z, labels, eps=0.5, n_permutations=1000, seed=0, *, within=None, center=False, scale=None,
                     normalize=False):
    r"""Null distribution of :math:`\Delta R` under ``n_permutations`` (≥ 2) label shuffles.

    ``within`` (length N, optional): permute only inside each group (restricted null). ``center`` and
    ``scale`` prepare ``Z`` as in :func:`~subspacelens.metrics.rate_reduction`; with ``center="class"`` the
    class means are recomputed under every shuffle, so the null is that of the class-centred statistic.
    Deterministic under ``seed`` (``subspacelens.stats.draws``); the same shuffles serve every slice of a
    batched ``Z`` (``(..., d, N)``).
    """
    eps = as_eps(eps)
    n_permutations = as_positive_int("n_permutations", n_permutations)
    if n_permutations < 2:
        raise ValueError("n_permutations: needs at least 2 shuffles for a z-score")
    center = as_center(center)
    class_centred = center == "class"
    Z, partition, G = labelled_gram(Z, labels, center=False if class_centred else center, scale=scale,
                                    normalize=normalize)
    d, n_samples = Z.shape[-2:]
    relabellings = permutation_indices(n_samples, n_permutations, seed, within=within)

    if class_centred:
        centred = prepare(Z, partition.codes, center="class")
        observed_rates = rate_reduction_from_gram(centred, centred.swapaxes(-1, -2) @ centred, partition, eps)
        R_null = _class_centred_totals(Z, G, partition, eps, relabellings)
    else:
        observed_rates = rate_reduction_from_gram(Z, G, partition, eps)
        R_null = observed_rates.R[..., None]
    observed = observed_rates.delta_R

    null_Rc = np.empty(observed.shape + (n_permutations,))
    entries_per_permutation = observed.size * int(sum(min(n * n, d * n + d * d) for n in partition.sizes))
    for chunk in chunk_slices(n_permutations, entries_per_permutation):
        shuffled_index = relabellings[chunk][:, partition.index]  # (chunk, K, n_max)
        null_Rc[..., chunk] = within_class_rate(Z, G, partition, class_rate_at(eps, d), shuffled_index,
                                                class_centred=class_centred)
    return null_summary(observed, R_null - null_Rc)


def null_summary(observed, null):
    r"""A :class:`PermutationNull` from the observed statistic ``(...)`` and its null ``(..., n_permutations)``."""
    excess = observed - null.mean(axis=-1)
    return PermutationNull(
        observed=observed,
        null=null,
        p_value=null_p_value(observed, null),
        excess=excess,
        z_score=excess / null.std(axis=-1, ddof=1),
    )
