"""Per-family knowledge of where a diffusion transformer keeps its blocks and how it lays out guidance.

One module per family (:mod:`.pixart`, :mod:`.sana`, :mod:`.sd3`, :mod:`.flux`), the protocol and shared
pieces in :mod:`.base`. Adding a family means writing one adapter and registering it in :data:`ADAPTERS`;
the hooks and the cache are unchanged.
"""

from __future__ import annotations

from typing import Any

from subspacelens.capture.adapters.base import UNCOND_FIRST, BlockOutputError, ModelAdapter
from subspacelens.capture.adapters.flux import FluxAdapter
from subspacelens.capture.adapters.pixart import PixArtAdapter
from subspacelens.capture.adapters.sana import SanaAdapter
from subspacelens.capture.adapters.sd3 import SD3Adapter

ADAPTERS: list[ModelAdapter] = [PixArtAdapter(), SanaAdapter(), SD3Adapter(), FluxAdapter()]

__all__ = [
    "ADAPTERS",
    "BlockOutputError",
    "FluxAdapter",
    "ModelAdapter",
    "PixArtAdapter",
    "SD3Adapter",
    "SanaAdapter",
    "UNCOND_FIRST",
    "adapter_for",
]


def adapter_for(pipe: Any) -> ModelAdapter:
    """The registered adapter that understands ``pipe``; ``ValueError`` naming the pipeline otherwise."""
    for adapter in ADAPTERS:
        if adapter.matches(pipe):
            return adapter
    denoiser = type(getattr(pipe, "transformer", getattr(pipe, "unet", None))).__name__
    raise ValueError(
        f"no ModelAdapter for {type(pipe).__name__} (denoiser {denoiser}); "
        f"known families: {[type(a).__name__ for a in ADAPTERS]}"
    )
