r"""The explicit preparations a statistic may apply to ``Z`` before its rates: centring and scaling.

Nothing happens unless asked for. The order is fixed, so that every option composes the same way:

1. ``center=True`` subtracts the slice's mean column (global centring);
2. ``scale`` sets the precision relative to the data:

   * ``"rms"`` divides the slice by its RMS column norm :math:`\rho = \sqrt{\|Z\|_F^2 / N}`, so the
     coding precision ε is relative to the data's scale: every rate statistic is then exactly invariant to
     :math:`Z \to cZ` for every :math:`c > 0` (an absolute ε is not — with N < d, scaling Z by c moves ΔR by
     about :math:`(\operatorname{rank} Z - \sum_j \tfrac{N_j}{N}\operatorname{rank} Z_j)\log c`);
   * ``"unit"`` scales every column to unit ℓ2 norm (each sample on the sphere);

3. ``center="class"`` subtracts each class's own mean column (labels needed) — *after* the scale is fixed,
   so that the raw and the class-centred rates of one slice share one precision and the split
   ``ΔR = (mean part) + (within-class geometry part)`` of :func:`~subspacelens.metrics.rate_reduction_split`
   is at one ε.

``center=True`` with ``"class"`` is not offered: class-centring removes the global mean as well.
Gram-side twins (:func:`prepare_gram`) apply the same steps to :math:`G = Z^\top Z` without touching Z.
"""

import numpy as np

from .gram import center_gram, normalize_gram

CENTERS = (False, True, "class")
SCALES = (None, "rms", "unit")


def as_center(center):
    """``False``, ``True`` or ``"class"``; anything else is a ``ValueError`` naming ``center``."""
    if isinstance(center, (bool, np.bool_)):
        return bool(center)
    if center == "class":
        return "class"
    raise ValueError(f"center: expected one of {list(CENTERS)}, got {center!r}")


def as_scale(scale):
    """``None``, ``"rms"`` or ``"unit"``; anything else is a ``ValueError`` naming ``scale``."""
    if scale is None or (isinstance(scale, str) and scale in ("rms", "unit")):
        return scale
    raise ValueError(f"scale: expected one of {list(SCALES)}, got {scale!r}")


def scale_and_center(center, scale, normalize=False):
    """Validated ``(center, scale)``; the older ``normalize=True`` is ``scale="unit"``."""
    center, scale = as_center(center), as_scale(scale)
    if normalize:
        if scale not in (None, "unit"):
            raise ValueError(f"normalize: normalize=True means scale='unit' and conflicts with scale={scale!r}")
        scale = "unit"
    return center, scale


def rms_column_norm(Z):
    r""":math:`\sqrt{\|Z\|_F^2 / N}` of every slice, shape ``Z.shape[:-2] + (1, 1)``."""
    return np.sqrt(np.square(Z).sum(axis=(-2, -1), keepdims=True) / Z.shape[-1])


def class_means(Z, codes, n_classes):
    """Class mean columns ``(..., d, K)`` of ``Z`` for integer class ``codes`` (length N)."""
    onehot = np.zeros((codes.size, n_classes))
    onehot[np.arange(codes.size), codes] = 1.0
    return (Z @ onehot) / onehot.sum(axis=0)


def prepare(Z, codes=None, *, center=False, scale=None):
    """Apply the module's steps to validated float64 columns ``Z`` (``(..., d, N)``).

    ``codes`` (integer class codes, length N) are needed for ``center="class"``.
    """
    if center is True:
        Z = Z - Z.mean(axis=-1, keepdims=True)
    if scale == "rms":
        rho = rms_column_norm(Z)
        if not (rho > 0).all():
            raise ValueError("Z: a slice is all zeros, so it has no scale to divide by (scale='rms')")
        Z = Z / rho
    elif scale == "unit":
        norms = np.linalg.norm(Z, axis=-2, keepdims=True)
        if not (norms > 0).all():
            raise ValueError("Z: a column has zero norm, so it cannot be normalised (scale='unit')")
        Z = Z / norms
    if center == "class":
        if codes is None:
            raise ValueError("center: 'class' needs labels")
        Z = Z - class_means(Z, codes, codes.max() + 1)[..., codes]
    return Z


def class_center_gram(G, codes):
    r"""The Gram of the class-centred columns, :math:`(I - P)\,G\,(I - P)` with P the class-averaging projector."""
    n_classes = codes.max() + 1
    onehot = np.zeros((codes.size, n_classes))
    onehot[np.arange(codes.size), codes] = 1.0
    sizes = onehot.sum(axis=0)
    row_class_means = (G @ onehot) / sizes  # (..., N, K): mean of G[a, class k]
    PG = row_class_means[..., codes].swapaxes(-1, -2)  # (P G)[a, b] = mean_{c in class(a)} G[c, b]
    block_means = (onehot.T @ G @ onehot) / np.outer(sizes, sizes)
    return G - PG - PG.swapaxes(-1, -2) + block_means[..., codes[:, None], codes[None, :]]


def prepare_gram(G, codes=None, *, center=False, scale=None):
    """The Gram-side twin of :func:`prepare`: the Gram of the prepared columns, from :math:`G = Z^\\top Z` alone."""
    if center is True:
        G = center_gram(G)
    if scale == "rms":
        trace = np.einsum("...ii->...", G)[..., None, None]
        if not (trace > 0).all():
            raise ValueError("Z: a slice is all zeros, so it has no scale to divide by (scale='rms')")
        G = G / (trace / G.shape[-1])
    elif scale == "unit":
        G = normalize_gram(G)
    if center == "class":
        if codes is None:
            raise ValueError("center: 'class' needs labels")
        G = class_center_gram(G, codes)
    return G
