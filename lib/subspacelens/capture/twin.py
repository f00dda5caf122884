"""The random-initialised twin of any supported pipeline: the control "same architecture, no training"."""

from __future__ import annotations

from typing import Any

import torch

from subspacelens.capture.adapters import adapter_for


def random_init_twin(pipe: Any, seed: int = 0) -> Any:
    """A pipeline of ``pipe``'s class whose denoiser is ``type(denoiser).from_config(denoiser.config)``
    initialised under ``torch.manual_seed(seed)``: the same architecture and sizes with the weights it
    had before training; every other component (tokenizers, text encoders, VAE, scheduler) is ``pipe``'s
    own object. No weights are needed, so it works for any family the capture supports.

    The fresh denoiser is built on ``pipe``'s device and then cast to its dtype; the global RNG state is
    left as it was. Bit-identical for the same ``(pipe config, seed)`` on one device.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: must be an int, got {seed!r}")
    adapter = adapter_for(pipe)
    trained = adapter.denoiser(pipe)
    device, dtype = trained.device, trained.dtype
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        with torch.device(device):
            fresh = type(trained).from_config(trained.config)
    fresh = fresh.to(dtype=dtype).eval()
    name = next(key for key, module in pipe.components.items() if module is trained)
    twin = type(pipe)(**(pipe.components | {name: fresh}))
    twin.set_progress_bar_config(disable=True)
    return twin
