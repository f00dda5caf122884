"""Edit a diffusion transformer's block outputs during generation: a context manager that leaves nothing behind.

The editing twin of :class:`~subspacelens.capture.TraceBlocks`, with the same hook points (``blocks.<i>``),
the same :class:`~subspacelens.capture.ModelAdapter` (so any family with an adapter can be edited) and the
same step pre-hook on the denoiser that tells each block call its denoising-step index and timestep::

    with EditBlocks(pipe, {"blocks.7": as_edit(project_out, basis=U)}, steps=None, branches=("cond",)):
        pipe(prompts, ...)

An edit is ``edit(tokens, context) -> tokens``: ``tokens`` are the image tokens ``(batch, tokens, d)`` of one
CFG branch (the adapter's ``image_tokens``), ``context`` an :class:`EditContext`; what it returns is written
back with the adapter's ``replace_image_tokens``. Every hook is removed on exit, also when generation raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from subspacelens.capture.adapters import ModelAdapter
from subspacelens.capture.hooks import TraceBlocks, hook_name, parse_layers


@dataclass(frozen=True)
class EditContext:
    """Where an edit is applied: block, denoising-step index (0-based), scheduler timestep, CFG branch."""

    layer: int
    step: int
    timestep: float
    branch: str

    @property
    def hook_name(self) -> str:
        return hook_name(self.layer)


Edit = Callable[[torch.Tensor, EditContext], torch.Tensor]


def as_edit(function: Callable[..., torch.Tensor], **arguments: Any) -> Edit:
    """A pure edit ``function(tokens, **arguments)`` as an :data:`Edit` that ignores its context.

    A ``basis`` argument is checked once here; array arguments are converted to the tokens' dtype and
    device once per dtype/device rather than at every block call.
    """
    if "basis" in arguments:
        from subspacelens.intervene.edits import check_basis

        check_basis(arguments["basis"])
    prepared: dict[tuple, dict] = {}

    def edit(tokens: torch.Tensor, context: EditContext) -> torch.Tensor:
        key = (tokens.dtype, tokens.device)
        if key not in prepared:
            prepared[key] = {name: torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value,
                                                   dtype=tokens.dtype, device=tokens.device)
                             if isinstance(value, (np.ndarray, torch.Tensor)) else value
                             for name, value in arguments.items()}
        return function(tokens, **prepared[key])

    edit.__name__ = getattr(function, "__name__", "edit")
    return edit


def by_step(edits: dict[int, Edit]) -> Edit:
    """One :data:`Edit` per anchor step (e.g. the cache's steps, where bases were estimated): every call runs
    the edit of the anchor nearest to ``context.step`` (the earlier one on a tie)."""
    if not edits:
        raise ValueError("edits: expected at least one anchor step")
    anchors = np.array(sorted(edits))

    def edit(tokens: torch.Tensor, context: EditContext) -> torch.Tensor:
        return edits[int(anchors[np.argmin(np.abs(anchors - context.step))])](tokens, context)

    return edit


class EditBlocks(TraceBlocks):
    """Context manager replacing chosen blocks' image tokens by ``edit(tokens, context)`` during generation.

    Parameters
    ----------
    pipe : a diffusers pipeline its adapter understands (``adapter_for(pipe)`` by default).
    edits : mapping hook point (``"blocks.<i>"`` or an int) -> :data:`Edit`.
    steps : denoising-step indices to edit (``None``: every step).
    branches : CFG branches to edit (``None``: every branch of the call).
    cfg : whether the pipeline batches CFG branches (guidance on), as in :class:`TraceBlocks`.

    It is a :class:`TraceBlocks` whose block hooks write instead of record: the step bookkeeping, hook
    points, branch split and the removal of every handle on exit are TraceBlocks' own.
    """

    def __init__(
        self,
        pipe: Any,
        edits: Mapping[str | int, Edit],
        *,
        steps: Iterable[int] | None = None,
        branches: Iterable[str] | None = None,
        cfg: bool = True,
        adapter: ModelAdapter | None = None,
    ) -> None:
        if not isinstance(edits, Mapping) or not edits:
            raise ValueError(f"edits: expected a non-empty mapping hook point -> edit, got {edits!r}")
        try:
            super().__init__(pipe, list(edits), steps, cfg=cfg, adapter=adapter)
        except ValueError as error:
            raise ValueError(f"edits: {error}") from None
        n = len(self._blocks)
        self.edits: dict[int, Edit] = {}
        for key, edit in edits.items():
            if not callable(edit):
                raise ValueError(f"edits: the edit of {key!r} is not callable: {edit!r}")
            self.edits[parse_layers([key], n)[0]] = edit
        self.edit_branches = tuple(self.branches) if branches is None else tuple(branches)
        unknown = set(self.edit_branches) - set(self.branches)
        if unknown or not self.edit_branches:
            raise ValueError(f"branches: {sorted(unknown) or list(self.edit_branches)} not among this call's "
                             f"CFG branches {list(self.branches)}")

    def _block_hook(self, layer: int) -> Callable:
        edit = self.edits[layer]

        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
            if not self._wanted(layer)[0]:
                return None
            tokens = self.adapter.image_tokens(output)
            if tokens.shape[0] % len(self.branches):
                raise RuntimeError(f"{hook_name(layer)}: batch of {tokens.shape[0]} does not split into CFG "
                                   f"branches {self.branches}; was EditBlocks built with the right cfg=?")
            parts = []
            for branch, part in zip(self.branches, tokens.chunk(len(self.branches), dim=0)):
                if branch in self.edit_branches:
                    context = EditContext(layer, self.step, self.timesteps[self.step], branch)
                    edited = edit(part, context)
                    if edited.shape != part.shape:
                        raise ValueError(f"edits: the edit of {hook_name(layer)} returned shape "
                                         f"{tuple(edited.shape)} for tokens of shape {tuple(part.shape)}")
                    part = edited.to(part.dtype)
                parts.append(part)
            return self.adapter.replace_image_tokens(output, torch.cat(parts, dim=0))

        return hook
