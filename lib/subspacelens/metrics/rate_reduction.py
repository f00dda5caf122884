r"""Rate reduction :math:`\Delta R = R - R_c`: how much smaller the coding rate is class by class.

.. math::

    R_c = \sum_{j=1}^K \frac{N_j}{N} R_\varepsilon(Z_j)
        = \sum_j \frac{N_j}{N}\,\tfrac12\log\det\!\Big(I + \frac{d}{N_j\varepsilon^2} Z_j^\top Z_j\Big),
    \qquad \Delta R = R_\varepsilon(Z) - R_c.

The class Grams :math:`Z_j^\top Z_j` are principal sub-blocks of the one Gram :math:`Z^\top Z` (or, when a
class has more samples than d, its d×d scatter :math:`Z_j Z_j^\top` is factorised instead: the same nonzero
spectrum, a smaller matrix); classes of equal size are factorised together as one stack. Same conventions as
:mod:`~subspacelens.metrics.coding_rate` (``Z`` is ``(..., d, N)``, unsquared ε, nats, float64).
"""

from dataclasses import dataclass

import numpy as np

from ._checks import as_eps, as_eps_values, as_samples
from .coding_rate import rate_curve_from_eigenvalues, rate_from_product
from .gram import center_gram, clamped_eigvalsh, principal_blocks, second_moment
from .labels import labelled_gram
from .transforms import as_center


@dataclass(frozen=True)
class RateReduction:
    """Coding rates of one labelling, each of shape ``Z.shape[:-2]`` (with a trailing ε axis for curves).

    ``R``: rate of all samples; ``Rc``: size-weighted mean class rate; ``delta_R = R - Rc`` (nats).
    """

    R: np.ndarray
    Rc: np.ndarray
    delta_R: np.ndarray


def class_products(Z, G, positions, *, class_centred=False):
    r"""Matrices with the spectra of the class Grams at ``positions`` (…sets, K_n, n), by the cheaper side.

    The d×d class scatters :math:`Z_j Z_j^\top`, gathered from the columns, when d < n; else the n×n principal
    blocks :math:`G_{jj}` of ``G`` (formed from the gathered columns when ``G`` is None). Both have the same
    nonzero eigenvalues, so every rate (a log-determinant of I + αP, or a sum over eigenvalues) is the same
    from either. ``Z`` may be None when only ``G`` is at hand. ``class_centred`` removes each class's mean
    first (:math:`H G_{jj} H`, or centred columns).
    """
    scatter_side = Z is not None and Z.shape[-2] < positions.shape[-1]
    if scatter_side or G is None:
        members = np.moveaxis(np.take(Z, positions, axis=-1), Z.ndim - 2, -2)  # (…, *sets, K_n, d, n)
        members = np.ascontiguousarray(members)  # contiguous stacks: matmul calls BLAS per matrix
        if class_centred:
            members -= members.mean(axis=-1, keepdims=True)
        return members @ members.swapaxes(-1, -2) if scatter_side else members.swapaxes(-1, -2) @ members
    blocks = principal_blocks(G, positions)
    return center_gram(blocks) if class_centred else blocks


def within_class_rate(Z, G, partition, rate_of_blocks, index=None, *, class_centred=False):
    r""":math:`R_c = \sum_j (N_j/N)\,R(Z_j)` with every class matrix from :func:`class_products`.

    ``rate_of_blocks(products, n)`` maps a (…, K_n, m, m) stack of class products of classes of size n
    (m = n or d) to their rates summed over the class axis. ``index`` (default ``partition.index``) may carry
    extra leading axes — one per permutation or resample — that appear in the result after ``Z``'s batch axes.
    """
    index = partition.index if index is None else index
    weighted_sum = 0.0
    for n, rows in partition.size_groups():
        products = class_products(Z, G, index[..., rows, :n], class_centred=class_centred)
        weighted_sum = weighted_sum + (n / partition.n_samples) * rate_of_blocks(products, n)
    return weighted_sum


def class_rate_at(eps, d):
    """``rate_of_blocks`` for one ε: Cholesky log-determinants of the class blocks."""
    return lambda blocks, n: rate_from_product(blocks, d, n, eps).sum(axis=-1)


def total_product(Z, G):
    """The cheaper matrix for the total rate: the Gram ``G`` when N ≤ d, else the d×d second moment."""
    d, n_samples = Z.shape[-2:]
    return G if n_samples <= d else second_moment(Z)


def rate_reduction_from_gram(Z, G, partition, eps):
    """:class:`RateReduction` of validated samples ``Z`` with Gram ``G`` and class ``partition``."""
    d, n_samples = Z.shape[-2:]
    R = rate_from_product(total_product(Z, G), d, n_samples, eps)
    Rc = within_class_rate(Z, G, partition, class_rate_at(eps, d))
    return RateReduction(R=R, Rc=Rc, delta_R=R - Rc)


def rate_reduction(Z, labels, eps=0.5, *, center=False, scale=None, normalize=False):
    r"""Rate reduction of ``Z`` (``(..., d, N)``) under ``labels`` (length N): fields ``R``, ``Rc``, ``delta_R``.

    :math:`\alpha_j = d/(N_j\varepsilon^2)` for class j. A single class gives :math:`\Delta R = 0` exactly
    when N ≤ d (R and the one class block are the same Gram), to rounding otherwise.

    ``scale="rms"`` (the book's primary statistic) measures ε relative to the slice's RMS column norm, so
    ΔR is invariant to :math:`Z \to cZ`; the raw statistic (``scale=None``, the blog's) is not.
    ``center="class"`` subtracts every class's own mean first: what is left of ΔR is within-class geometry.

    Holds by construction: for labels whose classes nest in a coarser labelling, fine ΔR ≥ coarse ΔR
    for *any* data (see :func:`rate_reduction_split` and the validation chapter): :math:`R_c` of the fine
    labels is a size-weighted mean of :math:`\tfrac12\log\det(I + \tfrac{d}{\varepsilon^2}\hat S_j)` over
    the fine classes inside each coarse class, a concave function of the class second moments
    :math:`\hat S_j = Z_j Z_j^\top / N_j`, so by Jensen it is at most the coarse class's rate.
    """
    eps = as_eps(eps)
    Z, partition, G = labelled_gram(Z, labels, center=center, scale=scale, normalize=normalize)
    return rate_reduction_from_gram(Z, G, partition, eps)


@dataclass(frozen=True)
class RateReductionSplit:
    r"""ΔR split into the part carried by the class means and the part left in the within-class geometry.

    ``geometry = ΔR(class-centred Z)``; ``means = ΔR(Z) − geometry``; ``total = ΔR(Z)``; all at one precision
    (the scale is fixed before class-centring, :mod:`.transforms`). An additive split by definition, not an
    orthogonal decomposition: ``means`` can be negative when centring raises the class rates' share.
    """

    total: np.ndarray
    means: np.ndarray
    geometry: np.ndarray


def rate_reduction_split(Z, labels, eps=0.5, *, center=False, scale=None):
    """:class:`RateReductionSplit` of ``Z`` under ``labels`` (``center`` False/True applies before the split)."""
    if as_center(center) == "class":
        raise ValueError("center: the split compares raw and class-centred ΔR itself; pass center=False or True")
    total = rate_reduction(Z, labels, eps, center=center, scale=scale).delta_R
    if center:  # global centring first, then the same scale, then class means removed
        Z = as_samples(Z, center=True)
    geometry = rate_reduction(Z, labels, eps, center="class", scale=scale).delta_R
    return RateReductionSplit(total=total, means=total - geometry, geometry=geometry)


def rate_reduction_curve(Z, labels, eps_values, *, center=False, scale=None, normalize=False):
    r"""``rate_reduction`` for every ε in ``eps_values`` from one eigendecomposition per matrix.

    Each rate is :math:`\tfrac12\sum_i\log(1+\alpha(\varepsilon)\lambda_i)` with clamped eigenvalues of the
    total and class Grams. Fields have shape ``(..., len(eps_values))``.
    """
    eps_values = as_eps_values(eps_values)
    Z, partition, G = labelled_gram(Z, labels, center=center, scale=scale, normalize=normalize)
    d, n_samples = Z.shape[-2:]
    R = rate_curve_from_eigenvalues(clamped_eigvalsh(total_product(Z, G)), d, n_samples, eps_values)

    def class_curves(blocks, n):
        return rate_curve_from_eigenvalues(clamped_eigvalsh(blocks), d, n, eps_values).sum(axis=-2)

    Rc = within_class_rate(Z, G, partition, class_curves)
    return RateReduction(R=R, Rc=Rc, delta_R=R - Rc)
