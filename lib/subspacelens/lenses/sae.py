r"""TopK sparse autoencoders: the dictionary lens.

A TopK sparse autoencoder (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") with
``m`` latents codes a sample :math:`x ∈ \mathbb R^d` as

.. math::

    c = \mathrm{ReLU}\big(\mathrm{TopK}_k(W_{enc}(x - b_{dec}) + b_{enc})\big), \qquad
    \hat x = W_{dec}\, c + b_{dec},

keeping the ``k`` largest pre-activations of each sample (at most ``k`` non-zero latents: the L0 is set,
not penalised). The decoder's columns (the *atoms*) are kept at unit norm, the encoder starts as the
decoder's transpose and :math:`b_{dec}` at the data mean. Training minimises the mean squared error with
Adam on minibatches.

Reported: the fraction of variance unexplained :math:`\sum\lVert x-\hat x\rVert^2 / \sum\lVert x-\bar x\rVert^2`,
the mean L0, and the dead latents (never active on the samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..metrics._checks import as_positive_int, as_samples

__all__ = ["SparseAutoencoder", "train_sae"]


@dataclass(frozen=True)
class SparseAutoencoder:
    """A trained TopK sparse autoencoder; arrays in float64, one column per sample as everywhere.

    ``encoder`` (``m × d``), ``encoder_bias`` (``m``), ``decoder`` (``d × m``, unit-norm atoms),
    ``decoder_bias`` (``d``), ``k`` (latents kept per sample), ``history`` (training loss per step).
    """

    encoder: np.ndarray
    encoder_bias: np.ndarray
    decoder: np.ndarray
    decoder_bias: np.ndarray
    k: int
    history: np.ndarray

    @property
    def n_latents(self) -> int:
        return self.decoder.shape[1]

    def encode(self, Z) -> np.ndarray:
        """Codes ``c`` (``m × N``) of the samples ``Z`` (``d × N``)."""
        Z = as_samples(Z)
        pre = self.encoder @ (Z - self.decoder_bias[:, None]) + self.encoder_bias[:, None]
        kth = -np.partition(-pre, self.k - 1, axis=0)[self.k - 1]
        return np.where(pre >= kth, np.maximum(pre, 0.0), 0.0)

    def decode(self, codes) -> np.ndarray:
        """Reconstructions ``x̂`` (``d × N``) of codes (``m × N``)."""
        return self.decoder @ np.asarray(codes, dtype=np.float64) + self.decoder_bias[:, None]

    def fraction_unexplained(self, Z) -> float:
        """Fraction of the samples' variance the reconstruction misses (0: perfect)."""
        Z = as_samples(Z)
        residual = Z - self.decode(self.encode(Z))
        return float((residual**2).sum() / ((Z - Z.mean(axis=1, keepdims=True)) ** 2).sum())

    def l0(self, Z) -> float:
        """Mean number of active latents per sample."""
        return float((self.encode(Z) > 0).sum(axis=0).mean())

    def dead_latents(self, Z) -> np.ndarray:
        """Indices of the latents active on none of the samples ``Z``."""
        return np.flatnonzero((self.encode(Z) > 0).sum(axis=1) == 0)


def _as_float64(tensor):
    return tensor.detach().double().numpy()


def _topk_codes(pre, k):
    values, indices = torch.topk(pre, k, dim=1)
    return torch.zeros_like(pre).scatter(1, indices, torch.relu(values))


def train_sae(Z, n_latents=None, *, expansion=8, k=8, steps=2000, batch_size=256, learning_rate=1e-3,
              seed=0) -> SparseAutoencoder:
    """Train a TopK sparse autoencoder on the samples ``Z`` (``d × N``).

    ``n_latents`` is the dictionary size ``m`` (default ``expansion · d``); it must be at least ``d`` (an
    undercomplete dictionary is a bottleneck, not a sparse code), and ``k`` at most ``d`` (more active
    latents than dimensions is no sparse code either) and at most ``m``. ``steps`` Adam steps on minibatches
    of ``batch_size`` columns drawn with ``seed``; the same seed gives the same autoencoder.
    """
    Z = as_samples(Z, min_samples=2)
    if Z.ndim != 2:
        raise ValueError(f"Z: expected one slice of shape (d, N), got shape {Z.shape}")
    d, n_samples = Z.shape
    m = as_positive_int("expansion", expansion) * d if n_latents is None else as_positive_int("n_latents", n_latents)
    if m < d:
        raise ValueError(f"n_latents: a dictionary of {m} atoms is smaller than d = {d}; choose n_latents >= {d}")
    k = as_positive_int("k", k)
    if k > d or k > m:
        raise ValueError(f"k: {k} active latents exceed d = {d} or the {m} latents; choose k <= {min(d, m)}")
    steps, batch_size = as_positive_int("steps", steps), as_positive_int("batch_size", batch_size)
    learning_rate = float(learning_rate)
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate: expected a positive finite number, got {learning_rate!r}")

    generator = torch.Generator().manual_seed(int(seed))
    X = torch.as_tensor(Z.T.astype(np.float32))  # N × d
    scale = float(X.std()) or 1.0  # train on unit-scale inputs; the result is rescaled back
    X = X / scale
    decoder = torch.randn(d, m, generator=generator)
    decoder = (decoder / decoder.norm(dim=0, keepdim=True)).requires_grad_(True)
    encoder = decoder.detach().T.clone().requires_grad_(True)
    encoder_bias = torch.zeros(m, requires_grad=True)
    decoder_bias = X.mean(dim=0).clone().requires_grad_(True)
    parameters = [encoder, encoder_bias, decoder, decoder_bias]
    optimiser = torch.optim.Adam(parameters, lr=learning_rate)
    history = []
    for _ in range(steps):
        batch = X[torch.randint(0, n_samples, (min(batch_size, n_samples),), generator=generator)]
        codes = _topk_codes((batch - decoder_bias) @ encoder.T + encoder_bias, k)
        loss = ((codes @ decoder.T + decoder_bias - batch) ** 2).sum(dim=1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():  # unit-norm atoms: the code, not the atom, carries the magnitude
            decoder /= decoder.norm(dim=0, keepdim=True)
        history.append(float(loss.detach()) * scale**2)
    # codes scale with the input: c = scale · c', so only the biases change units
    return SparseAutoencoder(
        encoder=_as_float64(encoder),
        encoder_bias=_as_float64(encoder_bias) * scale,
        decoder=_as_float64(decoder),
        decoder_bias=_as_float64(decoder_bias) * scale,
        k=k,
        history=np.asarray(history),
    )
