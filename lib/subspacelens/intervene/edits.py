r"""Edits of a block's image tokens: small pure functions of ``x`` ``(batch, tokens, d)``.

A subspace is given by an orthonormal basis ``U`` of shape ``(d, k)`` (columns; numpy or torch, cast to
the tokens' dtype and device); :math:`P = U U^\top` is the orthogonal projector onto it. Every token is
edited the same way (the bases are estimated on token means, and projecting each token projects the mean).

* :func:`project_out` — ablation: :math:`x \mapsto x - P(x - c)`.
* :func:`keep_only` — the complement ablated: :math:`x \mapsto c + P(x - c)`.
* :func:`patch` — interchange intervention: :math:`x \mapsto x + P(x_{\mathrm{src}} - x)`.
* :func:`add_direction` — steering: :math:`x \mapsto x + \alpha v`.
* :func:`random_basis` — a Haar-random ``k``-dimensional subspace, the control for all of them.

``c`` is an optional centre (``(d,)``, e.g. the natural mean of that block's activations): with it an
ablation moves the removed component to its typical value (mean ablation) instead of to zero.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from subspacelens.intervene.hooks import Edit, EditContext


def _as_tensor(value, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value,
                           dtype=like.dtype, device=like.device)


def check_basis(basis, d: int | None = None, *, name: str = "basis") -> None:
    """``ValueError`` naming ``name`` unless ``basis`` is ``(d, k)`` with ``1 <= k <= d`` and orthonormal columns."""
    shape = tuple(basis.shape)
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a (d, k) matrix of orthonormal columns, got shape {shape}")
    if d is not None and shape[0] != d:
        raise ValueError(f"{name}: has width {shape[0]}, the tokens have d = {d}")
    if not 1 <= shape[1] <= shape[0]:
        raise ValueError(f"{name}: rank {shape[1]} is not in 1..d = {shape[0]}")
    gram = np.asarray(basis.T @ basis if not torch.is_tensor(basis) else (basis.T @ basis).cpu(), dtype=np.float64)
    if not np.allclose(gram, np.eye(shape[1]), atol=1e-4):
        raise ValueError(f"{name}: columns are not orthonormal (max |UᵀU − I| = {np.abs(gram - np.eye(shape[1])).max():.2g})")


def _projection(x: torch.Tensor, basis) -> torch.Tensor:
    """:math:`P x = (x U) U^\\top` for every token. ``basis`` is checked against ``x``'s width; a basis
    already in ``x``'s dtype and device (what :func:`as_edit` prepares, after checking it once) skips the
    orthonormality check, which would otherwise run at every block call."""
    if torch.is_tensor(basis) and basis.dtype == x.dtype and basis.device == x.device:
        if basis.ndim != 2 or basis.shape[0] != x.shape[-1]:
            check_basis(basis, x.shape[-1])
        U = basis
    else:
        check_basis(basis, x.shape[-1])
        U = _as_tensor(basis, x)
    return (x @ U) @ U.T


def _centre(center, x: torch.Tensor) -> torch.Tensor:
    if center is None:
        return torch.zeros(x.shape[-1], dtype=x.dtype, device=x.device)
    c = _as_tensor(center, x)
    if c.shape != (x.shape[-1],):
        raise ValueError(f"center: expected shape ({x.shape[-1]},), got {tuple(c.shape)}")
    return c


def project_out(x: torch.Tensor, basis, center=None) -> torch.Tensor:
    r"""Ablate a subspace: :math:`x' = x - P(x - c)`, with :math:`P = UU^\top` and centre ``c`` (default 0).

    :math:`Px' = Pc`: the component in the subspace is replaced by the centre's; the orthogonal
    complement is untouched, :math:`(I-P)x' = (I-P)x`.
    """
    c = _centre(center, x)
    return x - _projection(x - c, basis)


def keep_only(x: torch.Tensor, basis, center=None) -> torch.Tensor:
    r"""Keep only a subspace: :math:`x' = c + P(x - c)`; the complement is set to the centre's component."""
    c = _centre(center, x)
    return c + _projection(x - c, basis)


def patch(x: torch.Tensor, source: torch.Tensor, basis) -> torch.Tensor:
    r"""Interchange intervention: :math:`x' = x + P(x_{\mathrm{src}} - x)`.

    The target keeps its complement, :math:`(I-P)x' = (I-P)x`, and takes the source's component,
    :math:`Px' = Px_{\mathrm{src}}`; with the full space (:math:`P = I`) ``x'`` is the source.
    """
    if source.shape != x.shape:
        raise ValueError(f"source: shape {tuple(source.shape)} differs from the target's {tuple(x.shape)}")
    return x + _projection(source - x, basis)


def add_direction(x: torch.Tensor, direction, strength: float) -> torch.Tensor:
    r"""Steer: :math:`x' = x + \alpha v` for every token, with ``direction`` :math:`v` and strength α.

    ``direction`` is ``(d,)`` (the same for every row) or ``(batch, d)`` (one per row of ``x``). With
    :math:`v = \mu_B - \mu_A` (class-mean difference) and α = 1 the mean of class A moves onto B's.
    """
    if not isinstance(strength, (int, float)) or isinstance(strength, bool) or not math.isfinite(strength):
        raise ValueError(f"strength: expected a finite number, got {strength!r}")
    v = _as_tensor(direction, x)
    if v.shape not in ((x.shape[-1],), (x.shape[0], x.shape[-1])):
        raise ValueError(f"direction: expected shape ({x.shape[-1]},) or ({x.shape[0]}, {x.shape[-1]}), "
                         f"got {tuple(v.shape)}")
    return x + strength * (v if v.ndim == 1 else v[:, None, :])


def random_basis(d: int, rank: int, seed: int = 0) -> np.ndarray:
    """A Haar-random orthonormal ``(d, rank)`` basis: Q of the QR factorisation of a Gaussian matrix, signs fixed
    by :math:`\\operatorname{diag}(R) > 0` (Mezzadri 2007), so the subspace is uniform on the Grassmannian."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d: expected a positive int, got {d!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= d:
        raise ValueError(f"rank: {rank!r} is not in 1..d = {d}")
    gaussian = np.random.default_rng(seed).standard_normal((d, rank))
    q, r = np.linalg.qr(gaussian)
    return q * np.sign(np.diag(r))


def paired_patch(basis, n_targets: int) -> Edit:
    """An :data:`Edit` for a batch of ``n_targets`` target rows followed by as many source rows (same seeds):
    each target row is :func:`patch`-ed from its source row; the source rows run unedited."""
    if isinstance(n_targets, bool) or not isinstance(n_targets, int) or n_targets < 1:
        raise ValueError(f"n_targets: expected a positive int, got {n_targets!r}")

    def edit(tokens: torch.Tensor, context: EditContext) -> torch.Tensor:
        if tokens.shape[0] != 2 * n_targets:
            raise ValueError(f"n_targets: {n_targets} targets + {n_targets} sources, but the branch has "
                             f"{tokens.shape[0]} rows")
        targets, sources = tokens[:n_targets], tokens[n_targets:]
        return torch.cat([patch(targets, sources, basis), sources])

    return edit
