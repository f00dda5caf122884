"""Teacher forcing: a twin denoiser run on exactly the inputs the trained one sees, so two caches differ
only in weights.

A free-running twin (say the random-initialised transformer) denoises its own latents, so its blocks see
other inputs than the trained model's: a comparison of the two then mixes a change of weights with a
change of trajectory. Under :class:`TeacherForcing` the trained pipeline generates as usual (its output
drives the sampler, its images are unchanged) and, at every call of its denoiser, a forward pre-hook calls
the twin with the very same arguments (``x_t``, timestep, text embeddings, CFG batch, added kwargs)::

    twin = load_twin("random-init", pipe, seed=0)
    with TeacherForcing(pipe, twin) as forcing, TraceBlocks(forcing.twin_pipe, layers, steps) as trace:
        pipe(prompts, ...)            # trace holds the twin's block outputs on the trained trajectory

``forcing.twin_pipe`` is the pipeline seen with the twin in place of its denoiser (a read-only view:
every other attribute is the pipeline's), so :class:`~subspacelens.capture.TraceBlocks`, the adapters and
the hook points apply to the twin unchanged. Only the adapter protocol is used (``denoiser``, ``blocks``,
``hidden_size``), so any family with an adapter works. The hook is removed on exit, also when
generation raises.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from subspacelens.capture.adapters import ModelAdapter, adapter_for
from subspacelens.capture.loading import no_such_folder
from subspacelens.paths import resolve

#: ``twin`` value that builds the twin as ``from_config`` of the trained denoiser's config.
RANDOM_INIT = "random-init"


class TwinView:
    """``pipe`` with ``twin`` in place of its denoiser; every other attribute is read from ``pipe``.

    The denoiser's attribute is found among ``pipe.components`` by identity, so the view needs no
    family-specific name (``transformer``, ``unet``, ...).
    """

    def __init__(self, pipe: Any, twin: nn.Module, adapter: ModelAdapter) -> None:
        trained = adapter.denoiser(pipe)
        names = [name for name, module in pipe.components.items() if module is trained]
        if not names:
            raise ValueError(f"pipe: its denoiser {type(trained).__name__} is not one of its components")
        self._pipe = pipe
        self._name = names[0]
        self._twin = twin

    def __getattr__(self, name: str) -> Any:
        if name == self.__dict__.get("_name"):
            return self._twin
        return getattr(self.__dict__["_pipe"], name)


def load_twin(twin: str | Path, pipe: Any, *, seed: int = 0, adapter: ModelAdapter | None = None) -> nn.Module:
    """The twin denoiser for ``pipe``, on the trained denoiser's device and dtype, in eval mode.

    ``twin``: ``"random-init"`` — ``type(denoiser).from_config(denoiser.config)`` under
    ``torch.manual_seed(seed)`` (no weights needed; the global RNG state is restored), or a folder whose
    ``transformer/`` subfolder was written by ``save_pretrained`` (safetensors). ``ValueError`` naming
    ``twin`` when the folder is missing, holds another model class, or a denoiser whose number of blocks
    or hidden size differ from the trained one's.
    """
    adapter = adapter or adapter_for(pipe)
    trained = adapter.denoiser(pipe)
    cls = type(trained)
    parameter = next(trained.parameters())
    if str(twin) == RANDOM_INIT:
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(int(seed))
            module = cls.from_config(trained.config)
        finally:
            torch.random.set_rng_state(state)
    else:
        folder = resolve(twin) / "transformer"
        if not folder.is_dir():
            raise ValueError(
                f"twin: {str(twin)!r}: {no_such_folder(folder)}; give {RANDOM_INIT!r} or a folder with a "
                "transformer/ written by save_pretrained"
            )
        saved_class = cls.load_config(str(folder)).get("_class_name")
        if saved_class != cls.__name__:
            raise ValueError(f"twin: {str(twin)!r} holds a {saved_class}, the trained denoiser is a {cls.__name__}")
        module = cls.from_pretrained(
            str(folder), dtype=parameter.dtype, use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False
        )
    if next(module.parameters()).dtype != parameter.dtype:  # diffusers warns about any dtype cast, even a no-op
        module = module.to(dtype=parameter.dtype)
    module = module.to(parameter.device).eval().requires_grad_(False)
    _check_same_shape(twin, pipe, module, adapter)
    return module


def _check_same_shape(twin: Any, pipe: Any, module: nn.Module, adapter: ModelAdapter) -> None:
    view = TwinView(pipe, module, adapter)
    want = len(adapter.blocks(pipe)), adapter.hidden_size(pipe)
    got = len(adapter.blocks(view)), adapter.hidden_size(view)
    if got != want:
        raise ValueError(
            f"twin: {str(twin)!r} has {got[0]} blocks of width {got[1]}; the trained denoiser has "
            f"{want[0]} blocks of width {want[1]}"
        )


class TeacherForcing:
    """Context manager: while active, every call of ``pipe``'s denoiser also runs ``twin`` on the same inputs.

    The twin's output is discarded (``torch.no_grad()``); hook the twin's blocks through
    :attr:`twin_pipe` to record them. The trained denoiser's output, hence the generation, is unchanged.
    """

    def __init__(self, pipe: Any, twin: nn.Module, *, adapter: ModelAdapter | None = None) -> None:
        self.pipe = pipe
        self.adapter = adapter or adapter_for(pipe)
        self.twin = twin
        self.twin_pipe = TwinView(pipe, twin, self.adapter)
        self._handle: Any = None

    def _pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        # Before the trained denoiser runs, so the twin sees its inputs as the sampler passed them; dicts
        # are shallow-copied so that nothing the twin might update in them reaches the trained call.
        with torch.no_grad():
            self.twin(*args, **{k: copy.copy(v) if isinstance(v, dict) else v for k, v in kwargs.items()})
        return None

    def __enter__(self) -> TeacherForcing:
        if self._handle is not None:
            raise RuntimeError("TeacherForcing is already active")
        denoiser = self.adapter.denoiser(self.pipe)
        self._handle = denoiser.register_forward_pre_hook(self._pre_hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> bool:
        self.remove()
        return False

    def remove(self) -> None:
        """Remove the hook (idempotent)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
