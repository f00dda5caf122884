r"""Label-free subspaces: an orthogonal change of basis whose directions group into independent subspaces.

This is Neighbour Distance Minimisation (NDM, the seed ``004``) as this library reads it. An orthogonal
matrix :math:`R` (rows :math:`r_1 … r_p`) is split into groups :math:`S_1 … S_m` of rows; inside group
:math:`s` (of size :math:`k_s`) every sample :math:`n` has a nearest other sample at distance
:math:`\rho_{s,n}`. The Kozachenko–Leonenko estimate of the entropy of the projection onto :math:`S_s` is,
up to a constant that depends only on :math:`k_s` and :math:`N`,

.. math::

    \hat H_s = \frac{k_s}{N}\sum_n \log \rho_{s,n}.

An orthogonal :math:`R` preserves volume, so the entropy of the whole representation is fixed and
minimising :math:`\sum_s \hat H_s` — small nearest-neighbour distances inside every subspace — minimises
the multi-information :math:`\sum_s H(S_s) - H(X)` between the subspaces: the subspaces become as close
to statistically independent as an orthogonal split allows (independent subspace analysis). A factor of
variation that lives in its own block of directions is such an independent subspace.

The procedure (:func:`discover_subspaces`), in three stages:

1. centre the samples and keep the top ``n_components`` principal directions (all of them by default,
   at most ``N − 1``), so :math:`R` acts on :math:`p ≤ \min(d, N-1)` coordinates;
2. train :math:`R = R_0 \exp(A - A^\top)` (Haar-random :math:`R_0` from ``seed``, Adam on :math:`A`) with
   every direction its own group; in one dimension the distance to the ``spacing``-th sorted neighbour
   gives Vasicek's m-spacing entropy estimate (a smoother relative of the nearest-neighbour gap), so a
   step costs a sort;
3. merge by an information criterion: the mutual information of every pair of directions (the
   Kraskov–Stögbauer–Grassberger estimate of ``sklearn.feature_selection.mutual_info_regression``), then
   average-linkage agglomerative clustering of the directions (``scipy.cluster.hierarchy``): two groups
   merge while the mean mutual information between their directions exceeds ``merge_threshold`` nats,
   or, with ``n_subspaces`` given, until that many groups are left.

Training the grouped objective further after the merge (full nearest-neighbour distances inside each
group, as the seed's merge-then-retrain loop does) was tried and lowered the recovery of planted subspaces
at these sample sizes (the k-dimensional estimate overfits N ≈ 500 points), so the directions are trained
one by one and only grouped afterwards.

Subspaces are returned in the original feature space, ordered by the variance they carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from ..metrics._checks import as_positive_int, as_samples
from ..synthetic import random_orthonormal

__all__ = ["DiscoveredSubspaces", "discover_subspaces", "direction_mutual_information"]

DISTANCE_FLOOR = 1e-6
"""Squared nearest-neighbour distances are floored at this fraction of the mean variance per direction:
duplicated samples would otherwise send ``log ρ`` to −∞."""


INITS = ("pca", "random")
"""Starting rotations: the principal axes themselves, or a Haar-random rotation of them drawn from ``seed``."""


@dataclass(frozen=True)
class DiscoveredSubspaces:
    """The label-free partition of one slice's feature space.

    ``bases[s]`` (``d × dims[s]``, orthonormal columns; mutually orthogonal) spans subspace ``s``, ordered by
    ``variance[s]``, the share of the centred samples' variance it carries. ``mean`` (``d``) is the centring
    vector; ``mutual_information`` (``p × p``, nats) the pairwise information of the trained directions
    that decided the merges; ``history`` the objective (nats, per sample) after every training step.
    """

    bases: tuple[np.ndarray, ...]
    dims: tuple[int, ...]
    variance: np.ndarray
    mean: np.ndarray
    mutual_information: np.ndarray
    history: np.ndarray

    def project(self, Z) -> list[np.ndarray]:
        """Coordinates of the samples ``Z`` (``d × N``) in every subspace: a list of ``dims[s] × N`` arrays."""
        Z = as_samples(Z)
        if Z.ndim != 2 or Z.shape[0] != self.mean.shape[0]:
            raise ValueError(f"Z: expected shape ({self.mean.shape[0]}, N), got {Z.shape}")
        centred = Z - self.mean[:, None]
        return [basis.T @ centred for basis in self.bases]


def _finite_float(name, value, *, positive):
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name}: expected a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return value


def _log_spacing(Y, spacing, floor):
    """Mean over samples of ``log(y_(i+m) − y_(i))`` for every column of ``Y`` (``N × p``), ``m = spacing``.

    Vasicek's m-spacing entropy estimate in one dimension, up to the constant ``log(N / m)``: the distance
    that spans ``m`` sorted neighbours, a smoother relative of the nearest-neighbour gap.
    """
    ordered = torch.sort(Y, dim=0).values
    spans = ordered[spacing:] - ordered[:-spacing]
    return 0.5 * torch.log(spans**2 + floor).mean(dim=0)


def _train(X, rotation, objective, steps, learning_rate):
    """Adam on the skew generator of ``rotation · exp(A − Aᵀ)``, the step size cosine-annealed to 0 (large
    early steps leave the many shallow local minima of a sorted-gap objective; small late ones settle).
    Returns the trained rotation and the losses."""
    generator = torch.zeros_like(rotation, requires_grad=True)
    optimiser = torch.optim.Adam([generator], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(steps, 1))
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        current = rotation @ torch.matrix_exp(generator - generator.T)
        loss = objective(X @ current)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        return rotation @ torch.matrix_exp(generator - generator.T), losses


def direction_mutual_information(Y, *, n_bins=None):
    r"""Symmetric ``p × p`` matrix of the mutual information (nats) between the columns of ``Y`` (``N × p``).

    Each column is cut into ``b`` equal-frequency bins (its quantiles; default :math:`b = ⌊\sqrt{N/5}⌋`, about
    five samples per cell of a ``b × b`` table when the columns are independent), and the information is
    the plug-in estimate of the binned pair minus the Miller–Madow bias :math:`(b-1)^2 / 2N`:

    .. math::

        \hat I_{ij} = \sum_{u,v} \hat p_{uv} \log\frac{\hat p_{uv}}{\hat p_u \hat p_v} - \frac{(b-1)^2}{2N}.

    Equal-frequency bins make the estimate invariant to monotone changes of either column. All pairs come
    from one contraction of the bin indicators. The diagonal is 0 (a direction never merges with itself).
    """
    Y = np.asarray(Y, dtype=np.float64)
    n_samples, p = Y.shape
    b = max(2, int(np.sqrt(n_samples / 5))) if n_bins is None else as_positive_int("n_bins", n_bins)
    ranks = np.argsort(np.argsort(Y, axis=0, kind="stable"), axis=0, kind="stable")
    bins = ranks * b // n_samples  # N × p, each column's equal-frequency bin 0 … b−1
    indicators = (bins[:, :, None] == np.arange(b)).astype(np.float64)  # N × p × b
    joint = np.einsum("nia,njb->ijab", indicators, indicators) / n_samples
    marginal = indicators.mean(axis=0)  # p × b
    expected = marginal[:, None, :, None] * marginal[None, :, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / expected), 0.0)
    info = terms.sum(axis=(-2, -1)) - (b - 1) ** 2 / (2 * n_samples)
    np.fill_diagonal(info, 0.0)
    return info


def _merge(info, n_subspaces, threshold):
    """Groups of direction indices: average-linkage clustering on ``max(I) − I``, cut by count or by threshold."""
    p = info.shape[0]
    if p == 1:
        return [[0]]
    top = float(info.max())
    distance = top - info
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    if n_subspaces is None:
        assignment = fcluster(tree, t=top - threshold, criterion="distance")
    else:
        assignment = fcluster(tree, t=n_subspaces, criterion="maxclust")
    return [np.flatnonzero(assignment == label).tolist() for label in np.unique(assignment)]


def discover_subspaces(Z, n_subspaces=None, *, seed=0, n_components=None, steps=400,
                       learning_rate=0.1, merge_threshold=0.1, n_bins=None, spacing=None, init="pca") -> DiscoveredSubspaces:
    """Partition the feature space of one slice ``Z`` (``d × N``) into orthogonal, mutually independent subspaces.

    See the module docstring for the objective and the four stages. ``n_subspaces=None`` lets the merge
    criterion (``merge_threshold``, nats of mean pairwise mutual information) choose how many; an int asks
    for exactly that many (at most ``n_components``). ``n_components`` keeps the top principal directions
    first (default: all, at most ``N − 1``). ``steps`` Adam steps train the rotation (``learning_rate``,
    cosine-annealed); ``spacing`` is the m of the m-spacing (default ``round(√N)``); ``n_bins`` the bins per direction
    of the mutual-information estimate; ``init`` the starting rotation (``INITS``). The result depends only on the arguments: the same ``seed`` gives the same subspaces.
    """
    Z = as_samples(Z, min_samples=3)
    if Z.ndim != 2:
        raise ValueError(f"Z: expected one slice of shape (d, N), got shape {Z.shape}")
    d, n_samples = Z.shape
    limit = min(d, n_samples - 1)
    p = limit if n_components is None else as_positive_int("n_components", n_components)
    if p > limit:
        raise ValueError(f"n_components: {p} exceeds min(d, N - 1) = {limit}")
    if n_subspaces is not None:
        n_subspaces = as_positive_int("n_subspaces", n_subspaces)
        if n_subspaces > p:
            raise ValueError(f"n_subspaces: {n_subspaces} subspaces do not fit in {p} dimensions "
                             f"(n_components={p}, d={d}); choose at most {p}")
    steps = 0 if steps == 0 else as_positive_int("steps", steps)
    learning_rate = _finite_float("learning_rate", learning_rate, positive=True)
    merge_threshold = _finite_float("merge_threshold", merge_threshold, positive=False)
    if init not in INITS:
        raise ValueError(f"init: expected one of {list(INITS)}, got {init!r}")

    mean = Z.mean(axis=1)
    centred = Z - mean[:, None]
    U, _, _ = np.linalg.svd(centred, full_matrices=False)
    principal = U[:, :p]  # d × p
    X = torch.as_tensor((principal.T @ centred).T.astype(np.float32))  # N × p; float32 halves the training time
    floor = DISTANCE_FLOOR * float(X.pow(2).sum(dim=1).mean()) / p
    rotation = torch.eye(p) if init == "pca" else torch.as_tensor(random_orthonormal(p, p, seed), dtype=torch.float32)
    spacing = max(1, int(round(np.sqrt(n_samples)))) if spacing is None else as_positive_int("spacing", spacing)
    if spacing >= n_samples:
        raise ValueError(f"spacing: expected fewer than N = {n_samples} samples, got {spacing}")

    rotation, history = _train(X, rotation, lambda Y: _log_spacing(Y, spacing, floor).sum(), steps, learning_rate)
    info = direction_mutual_information((X @ rotation).numpy(), n_bins=n_bins)
    groups = _merge(info, n_subspaces, merge_threshold)

    directions = principal @ np.linalg.qr(rotation.double().numpy())[0]  # d × p; QR restores float64 orthonormality
    bases = [directions[:, group] for group in groups]
    total = float((centred**2).sum())
    variance = np.array([float(((basis.T @ centred) ** 2).sum()) / total for basis in bases])
    order = np.argsort(-variance, kind="stable")
    return DiscoveredSubspaces(
        bases=tuple(bases[i] for i in order),
        dims=tuple(int(bases[i].shape[1]) for i in order),
        variance=variance[order],
        mean=mean,
        mutual_information=info,
        history=np.asarray(history),
    )
