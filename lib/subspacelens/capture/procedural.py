"""Procedural inputs: the denoiser sees known images, forward-noised to each step's timestep.

A generated sample has no ground truth beyond its prompt: where its object is, which colour it took, how
large it is, is whatever the sampler made of it. The organism's procedural images do have one. While
:class:`ProceduralInputs` is active, every call of the denoiser has its latent input replaced by the DDPM
forward process of a known image,

.. math::  x_t = \\sqrt{\\bar\\alpha_t}\\, x_0 + \\sqrt{1 - \\bar\\alpha_t}\\, \\varepsilon,

with :math:`x_0` the VAE latent of the sample's procedural image (its subject and seed), :math:`\\varepsilon`
the sampler's own starting latent for that sample (drawn from the sample's seed; one draw per sample, kept
across steps) and :math:`t` the timestep of the call. Every recorded block then sees the image its labels
describe, at the noise level of that step, as in training; the prompt, the CFG batch layout and the
timesteps are the sampler's. So the object mask and the nuisance factors of each image (colour, position,
scale) are exact labellings of the activations (:func:`procedural_samples`).

Only variance-preserving schedulers (an ``alphas_cumprod`` table: PixArt-α/Σ's DPM-Solver++) define that
forward process; a flow-matching scheduler is refused by name. The hook is removed on exit, also when
generation raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from subspacelens.capture.adapters import ModelAdapter, adapter_for

#: The prompt set whose procedural images the organism is trained on (``organism.train``): a subject's image
#: is that set's, whichever prompt set the capture draws its prompts from.
TRAINING_PROMPT_SET = "v2"

#: Sample columns a procedural capture adds (the nuisance factors of ``organism.images.Nuisance``).
NUISANCE_COLUMNS = ("colour", "position_x", "position_y", "scale", "background_phase")


def check_variance_preserving(pipe: Any) -> torch.Tensor:
    """The scheduler's ``alphas_cumprod`` (float64), or ``ValueError`` naming a scheduler without one."""
    table = getattr(pipe.scheduler, "alphas_cumprod", None)
    if table is None:
        raise ValueError(
            f"inputs: 'procedural' needs a variance-preserving scheduler (alphas_cumprod); "
            f"{type(pipe.scheduler).__name__} has none"
        )
    return torch.as_tensor(table, dtype=torch.float64)


def procedural_samples(samples: pd.DataFrame, size: int, hierarchy: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Each sample's procedural image (subject, seed) at ``size`` px: the samples with the nuisance columns
    added, the images ``(n, 3, size, size)`` in [-1, 1] and the object masks ``(n, size, size)`` in [0, 1].
    ``ValueError`` for a subject the training prompt set does not have."""
    from subspacelens.organism.images import render_with_factors

    rendered = [render_with_factors(subject, int(seed), size, TRAINING_PROMPT_SET, hierarchy)
                for subject, seed in zip(samples["subject"], samples["seed"])]
    factors = pd.DataFrame([{name: getattr(nuisance, name) for name in NUISANCE_COLUMNS}
                            for _, nuisance, _ in rendered])
    with_factors = pd.concat([samples.reset_index(drop=True), factors], axis=1)
    return with_factors, np.stack([image for image, _, _ in rendered]), np.stack([mask for _, _, mask in rendered])


def token_grid_fraction(masks: np.ndarray, num_tokens: int) -> np.ndarray:
    """Per token, the fraction of its pixels inside the object: ``(n, H, W)`` masks -> ``(n, num_tokens)``,
    tokens in raster order (row-major over the square token grid, as the transformer's patches)."""
    n, h, w = masks.shape
    side = int(round(num_tokens ** 0.5))
    if side * side != num_tokens or h != w or h % side:
        raise ValueError(f"masks: {h}x{w} px cannot be pooled onto a square grid of {num_tokens} tokens")
    k = h // side
    return masks.reshape(n, side, k, side, k).mean(axis=(2, 4)).reshape(n, num_tokens).astype(np.float32)


@torch.no_grad()
def encode_images(pipe: Any, images: np.ndarray) -> torch.Tensor:
    """VAE posterior means of ``images`` times the VAE's ``scaling_factor``: the latents the denoiser was
    trained on (``organism.train`` encodes its data set the same way)."""
    vae = pipe.vae
    x = torch.as_tensor(images, dtype=vae.dtype, device=vae.device)
    return vae.encode(x).latent_dist.mean * vae.config.scaling_factor


class ProceduralInputs:
    """Context manager: the denoiser's latent input becomes the forward-noised clean latents of :meth:`use`."""

    def __init__(self, pipe: Any, *, adapter: ModelAdapter | None = None) -> None:
        self.pipe = pipe
        self.adapter = adapter or adapter_for(pipe)
        self.alphas_cumprod = check_variance_preserving(pipe)
        self.clean: torch.Tensor | None = None
        self.noise: torch.Tensor | None = None
        self._handle: Any = None

    def use(self, clean: torch.Tensor) -> None:
        """The clean latents ``(b, C, H, W)`` of the next pipeline call, one per prompt in its order."""
        self.clean, self.noise = clean, None

    def _pre_hook(self, module: nn.Module, args: tuple, kwargs: dict):
        if self.clean is None:
            raise RuntimeError("ProceduralInputs: call use(clean_latents) before the pipeline")
        positional = bool(args)
        latent = args[0] if positional else kwargs["hidden_states"]
        b = len(self.clean)
        if latent.shape[0] % b or latent.shape[1:] != self.clean.shape[1:]:
            raise ValueError(f"ProceduralInputs: denoiser input {tuple(latent.shape)} does not fit {b} clean "
                             f"latents of shape {tuple(self.clean.shape[1:])}")
        if self.noise is None:  # the first call of a generation: its input is the sampler's starting noise
            self.noise = latent[:b].detach().clone()
        a = self.alphas_cumprod[int(round(self.adapter.timestep(args, kwargs)))]
        noised = (a.sqrt() * self.clean.double() + (1 - a).sqrt() * self.noise.double()).to(latent.dtype)
        noised = noised.repeat(latent.shape[0] // b, 1, 1, 1)  # every CFG branch sees the same image
        if positional:
            return (noised, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": noised}

    def __enter__(self) -> ProceduralInputs:
        if self._handle is not None:
            raise RuntimeError("ProceduralInputs is already active")
        self._handle = self.adapter.denoiser(self.pipe).register_forward_pre_hook(self._pre_hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> bool:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.noise = None
        return False
