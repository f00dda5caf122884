"""Synthetic data with a known answer: mixtures of low-rank Gaussians and sparse codes.

The validation chapter points every metric at data whose geometry is planted, as in Wang et al.
("Diffusion Models Learn Low-Dimensional Distributions via Subspace Clustering"): ``K`` classes,
class ``i`` a zero-mean Gaussian on a known ``k_i``-dimensional subspace of ``R^d``, with every
pair of class subspaces at one prescribed principal angle ``θ``.

Conventions follow :mod:`subspacelens.metrics`: ``Z`` has shape ``(d, N)``, one column per sample.
Everything is pure and seeded: ``seed`` is an ``int`` or a :class:`numpy.random.Generator`, and the
same seed gives the same arrays, bit for bit.

Construction of equiangular subspaces. Take orthonormal ``A`` (``d × k_max``, shared) and
``B_1 … B_K`` (``d × k_i``), all mutually orthogonal. With ``c = √cos θ`` and ``s = √(1 − cos θ)``,

    U_i = c · A[:, :k_i] + s · B_i

is orthonormal (``c² + s² = 1``) and ``U_iᵀ U_j = c² · A_iᵀ A_j = cos θ · [I 0; 0 0]``: all
``min(k_i, k_j)`` principal angles between classes ``i`` and ``j`` equal ``θ``, so the planted mean
``cos²`` of the principal angles is ``cos² θ``. (Mixing with weights ``cos θ`` and ``sin θ``
instead would plant the angle ``arccos(cos² θ)``, not ``θ``.) ``θ = 0`` gives one shared subspace,
``θ = 90°`` mutually orthogonal ones. The construction needs ``d ≥ k_max + Σ k_i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import subspace_angles

__all__ = [
    "LowRankMixture",
    "PlantedSubspaces",
    "SparseCodes",
    "as_generator",
    "equiangular_subspaces",
    "isotropic_gaussian",
    "low_rank_mixture",
    "planted_cos2",
    "planted_direct_sum",
    "random_orthonormal",
    "sparse_codes",
]

Seed = int | np.random.Generator


def as_generator(seed: Seed) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from an ``int`` seed (or the generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed must be an int or a numpy Generator, got {type(seed).__name__}")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _per_class(name: str, value, K: int | None) -> tuple[int, ...]:
    """An int broadcast to ``K`` classes, or a sequence of positive ints (its length is ``K``)."""
    if isinstance(value, Sequence) or isinstance(value, np.ndarray):
        out = tuple(_positive_int(name, v) for v in value)
        if not out:
            raise ValueError(f"{name} must not be empty")
        if K is not None and len(out) != K:
            raise ValueError(f"{name} has {len(out)} entries but K={K}")
        return out
    if K is None:
        raise ValueError(f"{name} is a single number, so K must be given")
    return (_positive_int(name, value),) * _positive_int("K", K)


def random_orthonormal(d: int, k: int, seed: Seed = 0) -> np.ndarray:
    """A Haar-random ``d × k`` matrix with orthonormal columns (QR of a Gaussian, signs fixed)."""
    d, k = _positive_int("d", d), _positive_int("k", k)
    if k > d:
        raise ValueError(f"k={k} orthonormal columns do not fit in d={d}")
    q, r = np.linalg.qr(as_generator(seed).standard_normal((d, k)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def equiangular_subspaces(
    d: int, ranks: Sequence[int], angle_deg: float, seed: Seed = 0
) -> tuple[np.ndarray, ...]:
    """Orthonormal bases ``U_i`` (``d × k_i``) with every principal angle between pairs equal to ``angle_deg``.

    See the module docstring for the construction. Raises ``ValueError`` if ``d < max(ranks) + sum(ranks)``.
    """
    ranks = _per_class("ranks", ranks, None)
    angle = float(angle_deg)
    if not 0.0 <= angle <= 90.0:
        raise ValueError(f"angle_deg must lie in [0, 90], got {angle_deg!r}")
    d = _positive_int("d", d)
    k_max = max(ranks)
    need = k_max + sum(ranks)
    if d < need:
        raise ValueError(f"d={d} is too small for ranks {list(ranks)}: the construction needs d >= {need}")
    Q = random_orthonormal(d, need, seed)
    A = Q[:, :k_max]
    cos_theta = np.cos(np.deg2rad(angle))
    # clip: cos(90°) is 6e-17, not 0
    c, s = np.sqrt(np.clip(cos_theta, 0.0, 1.0)), np.sqrt(np.clip(1.0 - cos_theta, 0.0, 1.0))
    bases, start = [], k_max
    for k in ranks:
        B = Q[:, start : start + k]
        bases.append(c * A[:, :k] + s * B)
        start += k
    return tuple(bases)


def planted_cos2(bases: Sequence[np.ndarray]) -> np.ndarray:
    """``K × K`` matrix of the mean ``cos²`` of the principal angles between planted bases.

    Ground truth for the overlap metric, from the bases themselves (``scipy.linalg.subspace_angles``
    over the ``min(k_i, k_j)`` angles of each pair); the diagonal is 1.
    """
    K = len(bases)
    out = np.ones((K, K))
    for i in range(K):
        for j in range(i + 1, K):
            out[i, j] = out[j, i] = float(np.mean(np.cos(subspace_angles(bases[i], bases[j])) ** 2))
    return out


@dataclass(frozen=True)
class LowRankMixture:
    """Samples of a mixture of low-rank Gaussians and the geometry that was planted.

    ``Z`` (``d × N``) holds the samples class by class; ``labels[n]`` is the class (0 … K−1) of column ``n``;
    ``bases[i]`` the orthonormal ``d × k_i`` basis of class ``i``; ``means`` (``d × K``) the class means
    (zero unless ``mean_shift > 0``); ``angle_deg`` the principal angle between every pair of classes.
    """

    Z: np.ndarray
    labels: np.ndarray
    bases: tuple[np.ndarray, ...]
    ranks: tuple[int, ...]
    angle_deg: float
    means: np.ndarray
    scale: float
    noise: float

    @property
    def d(self) -> int:
        return self.Z.shape[0]

    @property
    def N(self) -> int:
        return self.Z.shape[1]

    @property
    def K(self) -> int:
        return len(self.ranks)

    @property
    def cos2(self) -> float:
        """Planted mean ``cos²`` of the principal angles between any two classes: ``cos² θ``."""
        return float(np.cos(np.deg2rad(self.angle_deg)) ** 2)


def low_rank_mixture(
    d: int,
    n_per_class: int | Sequence[int],
    ranks: int | Sequence[int],
    angle_deg: float,
    *,
    K: int | None = None,
    scale: float = 1.0,
    noise: float = 0.0,
    mean_shift: float = 0.0,
    common_mean: float = 0.0,
    seed: Seed = 0,
) -> LowRankMixture:
    """Draw a mixture of ``K`` low-rank Gaussians with equiangular class subspaces.

    Column ``n`` of class ``i`` is ``μ_i + U_i c_n + σ ξ_n`` with ``c_n ~ N(0, scale² I_{k_i})`` and
    ``ξ_n ~ N(0, I_d)`` (``σ = noise``). ``ranks`` and ``n_per_class`` are one number each (then ``K``
    is required) or one per class. The class mean is ``μ_i = common_mean · m_0 + mean_shift · m_i`` with
    ``m_0, m_1 … m_K`` random unit vectors orthogonal to every class subspace: ``common_mean`` is an offset
    shared by all classes (like the large mean of transformer activations), ``mean_shift`` separates the
    classes by their means. Both default to 0 (zero-mean classes).
    """
    ranks_t = _per_class("ranks", ranks, K)
    K = len(ranks_t)
    counts = _per_class("n_per_class", n_per_class, K)
    for name, v in (("scale", scale), ("noise", noise), ("mean_shift", mean_shift), ("common_mean", common_mean)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    rng = as_generator(seed)
    bases = equiangular_subspaces(d, ranks_t, angle_deg, rng)
    means = np.zeros((d, K))
    if mean_shift > 0 or common_mean > 0:
        # directions orthogonal to all class subspaces, so the means add separation without changing angles
        span = np.concatenate(bases, axis=1)
        M = rng.standard_normal((d, K + 1))
        M -= span @ np.linalg.lstsq(span, M, rcond=None)[0]
        M /= np.linalg.norm(M, axis=0)
        means = common_mean * M[:, [0]] + mean_shift * M[:, 1:]
    blocks = []
    for i, (U, n) in enumerate(zip(bases, counts)):
        coeffs = scale * rng.standard_normal((U.shape[1], n))
        blocks.append(U @ coeffs + means[:, [i]])
    Z = np.concatenate(blocks, axis=1)
    if noise > 0:
        Z = Z + noise * rng.standard_normal(Z.shape)
    labels = np.repeat(np.arange(K), counts)
    return LowRankMixture(
        Z=Z,
        labels=labels,
        bases=bases,
        ranks=ranks_t,
        angle_deg=float(angle_deg),
        means=means,
        scale=float(scale),
        noise=float(noise),
    )


def isotropic_gaussian(d: int, n: int, seed: Seed = 0, *, scale: float = 1.0) -> np.ndarray:
    """``d × n`` samples of ``N(0, scale² I_d)``: the null of the isotropy test, with no structure at all."""
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    return scale * as_generator(seed).standard_normal((_positive_int("d", d), _positive_int("n", n)))


@dataclass(frozen=True)
class SparseCodes:
    """``Z = dictionary @ codes``: every column of ``codes`` has exactly ``n_active`` non-zeros."""

    Z: np.ndarray
    codes: np.ndarray
    dictionary: np.ndarray
    n_active: int


def sparse_codes(
    d: int, n: int, n_active: int, *, n_atoms: int | None = None, nonnegative: bool = False, seed: Seed = 0
) -> SparseCodes:
    """Columns that are sparse combinations of dictionary atoms (the SAE picture).

    With ``n_atoms=None`` the dictionary is the identity: each column has ``n_active`` non-zero
    coordinates (Gaussian values at random positions), i.e. it is sparse in the neuron basis, which is the
    basis Hoyer sparsity looks at. With ``n_atoms = m`` the atoms are ``m`` random unit vectors in ``R^d``
    (an overcomplete dictionary when ``m > d``): the code is just as sparse, but ``Z`` is dense coordinate-wise.
    ``nonnegative=True`` draws the active values as ``|g|`` with ``g ~ N(0, 1)``: the picture a ReLU or TopK
    sparse autoencoder assumes (an atom is present with some strength, or absent).
    """
    d, n, n_active = _positive_int("d", d), _positive_int("n", n), _positive_int("n_active", n_active)
    rng = as_generator(seed)
    if n_atoms is None:
        m, dictionary = d, np.eye(d)
    else:
        m = _positive_int("n_atoms", n_atoms)
        D = rng.standard_normal((d, m))
        dictionary = D / np.linalg.norm(D, axis=0)
    if n_active > m:
        raise ValueError(f"n_active={n_active} exceeds the {m} atoms")
    codes = np.zeros((m, n))
    support = np.argsort(rng.random((m, n)), axis=0)[:n_active]  # n_active distinct atoms per column
    values = rng.standard_normal((n_active, n))
    codes[support, np.arange(n)] = np.abs(values) if nonnegative else values
    return SparseCodes(Z=dictionary @ codes, codes=codes, dictionary=dictionary, n_active=n_active)


def as_cache(Z: np.ndarray, subjects, categories, seeds, *, model: str = "synthetic") -> "xr.Dataset":
    """Planted samples ``Z`` (``(layer, d, N)``) wrapped as an activation cache (the DESIGN.md schema).

    One denoising step, the ``cond`` branch; ``subjects``, ``categories`` and ``seeds`` (length N) become the
    sample coordinates, so every :mod:`subspacelens.analysis` helper runs on planted data unchanged.
    """
    import xarray as xr

    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 3:
        raise ValueError(f"Z: expected shape (layer, d, N), got {Z.shape}")
    n_layers, d, n = Z.shape
    for name, values in (("subjects", subjects), ("categories", categories), ("seeds", seeds)):
        if len(values) != n:
            raise ValueError(f"{name}: has length {len(values)} but Z has N={n} columns")
    activations = np.moveaxis(Z, -1, 0)[:, :, None, None, :]  # (sample, layer, step, branch, feature)
    return xr.Dataset(
        {"activations": (("sample", "layer", "step", "branch", "feature"), activations)},
        coords={"sample": np.arange(n), "subject": ("sample", np.asarray(subjects).astype(str)),
                "category": ("sample", np.asarray(categories).astype(str)), "seed": ("sample", np.asarray(seeds)),
                "layer": np.arange(n_layers), "step": [0], "branch": ["cond"], "feature": np.arange(d)},
        attrs={"model": model, "guidance_scale": float("nan"), "num_layers_total": n_layers},
    )


@dataclass(frozen=True)
class PlantedSubspaces:
    """``Z = Σ_i U_i c_i + noise``: a direct sum of orthogonal subspaces, subspace ``i`` carrying factor ``i``.

    ``bases[i]`` (``d × dims[i]``) is the planted orthonormal basis; ``factors[i, n]`` the value
    (``0 … levels[i] − 1``) factor ``i`` takes on column ``n``; ``Z`` is ``d × N``.
    """

    Z: np.ndarray
    factors: np.ndarray
    bases: tuple[np.ndarray, ...]
    dims: tuple[int, ...]
    levels: tuple[int, ...]


def planted_direct_sum(
    d: int,
    n: int,
    dims: Sequence[int],
    levels: int | Sequence[int],
    *,
    jitter: float = 0.1,
    noise: float = 0.1,
    seed: Seed = 0,
) -> PlantedSubspaces:
    """Samples of independent discrete factors, each living in its own block of an orthogonal direct sum.

    Factor ``i`` takes one of ``levels[i]`` values, uniformly and independently of the other factors; value
    ``v`` is the point ``m_{i,v} ~ N(0, I)`` of the ``dims[i]``-dimensional block ``U_i`` (so the block's
    variance is ≈ 1 per direction), blurred by ``N(0, jitter² I)`` inside the block. The ``d − Σ dims``
    directions outside every block carry isotropic Gaussian noise of standard deviation ``noise`` and no
    factor. The blocks are mutually orthogonal (``U_iᵀ U_j = 0``), so the planted answer of a label-free
    subspace discovery is the partition ``{U_1, …, U_F, complement}``.
    """
    dims_t = _per_class("dims", dims, None)
    levels_t = _per_class("levels", levels, len(dims_t))
    d, n = _positive_int("d", d), _positive_int("n", n)
    if sum(dims_t) > d:
        raise ValueError(f"dims {list(dims_t)} sum to {sum(dims_t)} > d={d}")
    for name, v in (("jitter", jitter), ("noise", noise)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    rng = as_generator(seed)
    Q = random_orthonormal(d, d, rng)
    bases, factors, Z, start = [], [], np.zeros((d, n)), 0
    for k, n_levels in zip(dims_t, levels_t):
        U = Q[:, start:start + k]
        values = rng.integers(0, n_levels, size=n)
        centres = rng.standard_normal((k, n_levels))
        Z += U @ (centres[:, values] + jitter * rng.standard_normal((k, n)))
        bases.append(U)
        factors.append(values)
        start += k
    complement = Q[:, start:]
    Z += complement @ (noise * rng.standard_normal((complement.shape[1], n)))
    return PlantedSubspaces(Z=Z, factors=np.stack(factors), bases=tuple(bases), dims=dims_t, levels=levels_t)
