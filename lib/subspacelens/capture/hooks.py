"""Forward hooks on a diffusion transformer's blocks: a context manager that leaves nothing behind.

In the spirit of TransformerLens' ``run_with_cache`` (named hook points ``blocks.<i>``) and baukit's
``TraceDict``::

    with TraceBlocks(pipe, layers=[0, 7], steps=[0, 19]) as trace:
        pipe(prompts, ...)
    trace.cache["blocks.7", 19, "cond"]          # (n_prompts, d) mean over image tokens

Plain ``torch`` hooks: one forward hook (``with_kwargs=True``) per chosen block and one forward pre-hook
on the denoiser that records the current denoising-step index and the scheduler timestep. Every handle
is removed on exit, also when generation raises.

Branches: with the adapter's ``cfg_split == "batch"`` (PixArt, SANA, SD3) each call's batch is split into
``adapter.cfg_layout``. With ``"calls"`` (Flux true CFG: one call per branch and step) the branch of a call
is the name the pipeline gives it with ``transformer.cache_context(name)``; for the duration of the trace
the denoiser's ``cache_context`` is wrapped to record that name (the wrapper is removed on exit).

Each captured value is detached, reduced on the model's device, and moved to CPU in the chosen dtype as
soon as the block returns; it is handed to ``sink(record)`` (a :class:`BlockRecord`). Without a sink the
records are kept in ``trace.records`` (fine for a few prompts; :func:`~subspacelens.capture.run_capture`
passes a sink that writes each batch to the cache instead).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import contextlib

import torch

from subspacelens.capture.adapters import BlockOutputError, ModelAdapter, adapter_for
from subspacelens.capture.adapters.base import describe

REDUCTIONS = ("mean", "tokens")


@dataclass(frozen=True)
class BlockRecord:
    """One block output at one denoising step, for one CFG branch of one pipeline call."""

    layer: int
    step: int
    timestep: float
    branch: str
    reduction: str  # "mean": value (n, d); "tokens": value (n, tokens, d)
    value: torch.Tensor

    @property
    def hook_name(self) -> str:
        return hook_name(self.layer)


def hook_name(layer: int) -> str:
    """The hook point of block ``layer``: ``"blocks.7"``."""
    return f"blocks.{layer}"


def parse_layers(layers: str | int | Iterable[int | str], num_layers: int) -> list[int]:
    """``"all"``, an int, or a list of ints / hook names (``"blocks.7"``) -> sorted unique block indices.

    Negative indices count from the end. ``ValueError`` naming ``layers`` on anything else.
    """
    if isinstance(layers, str) and layers == "all":
        return list(range(num_layers))
    items = [layers] if isinstance(layers, (int, str)) else list(layers)
    out = set()
    for item in items:
        index = item
        if isinstance(item, str):
            name = item.removeprefix("blocks.")
            if not name.lstrip("-").isdigit():
                raise ValueError(f"layers: {item!r} is not 'all', an int or a hook name like 'blocks.7'")
            index = int(name)
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"layers: {item!r} is not an int")
        if not -num_layers <= index < num_layers:
            raise ValueError(f"layers: block {item!r} out of range for a model with {num_layers} blocks")
        out.add(index % num_layers)
    if not out:
        raise ValueError("layers: empty selection")
    return sorted(out)


def parse_steps(steps: Iterable[int] | None, num_inference_steps: int | None = None) -> list[int] | None:
    """Validated sorted unique step indices (``None`` = every step); ``ValueError`` naming ``steps``."""
    if steps is None:
        return None
    items = [steps] if isinstance(steps, int) else list(steps)
    if not items:
        raise ValueError("steps: empty selection")
    for s in items:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"steps: {s!r} is not a non-negative int")
        if num_inference_steps is not None and s >= num_inference_steps:
            raise ValueError(f"steps: step {s} out of range for num_inference_steps={num_inference_steps}")
    return sorted(set(items))


class TraceBlocks:
    """Context manager capturing block outputs during diffusers generation.

    Parameters
    ----------
    pipe : a diffusers pipeline the adapter understands (``adapter_for(pipe)`` by default).
    layers : ``"all"``, block indices or hook names (``"blocks.7"``).
    steps : denoising-step indices (0-based, in call order) to keep; ``None`` keeps every step.
    cfg : whether the pipeline runs an unconditional branch (guidance on). With ``cfg=True`` the branches
        are ``adapter.cfg_layout`` (``("uncond", "cond")``), split off the batch or named per call (see the
        module docstring); otherwise one branch ``"cond"``.
    reduction : ``"mean"`` (mean over image tokens, ``(n, d)``) or ``"tokens"`` (full grid, ``(n, T, d)``).
    token_layers, token_steps : extra full-token-grid records (``reduction="tokens"``) at these layers
        x steps, in addition to ``reduction`` everywhere in ``layers`` x ``steps``.
    dtype : dtype of the CPU copies (reductions are computed in at least float32 first).
    sink : ``callable(BlockRecord)``; default: append to ``self.records``.

    The step index counts denoising steps since the start of the current generation (with one call per
    branch, the calls of one step share its timestep); a generation starts when the timestep does not
    decrease (or after :meth:`reset`). ``self.timesteps`` maps step -> timestep.
    """

    def __init__(
        self,
        pipe: Any,
        layers: str | int | Iterable[int | str] = "all",
        steps: Iterable[int] | None = None,
        *,
        cfg: bool = True,
        reduction: str = "mean",
        token_layers: Iterable[int | str] = (),
        token_steps: Iterable[int] = (),
        dtype: torch.dtype = torch.float32,
        sink: Callable[[BlockRecord], None] | None = None,
        adapter: ModelAdapter | None = None,
    ) -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction: {reduction!r} not in {REDUCTIONS}")
        self.pipe = pipe
        self.adapter = adapter or adapter_for(pipe)
        self._blocks = self.adapter.blocks(pipe)
        n = len(self._blocks)
        self.layers = parse_layers(layers, n)
        self.steps = parse_steps(steps)
        token_layers, token_steps = list(token_layers), list(token_steps)
        if bool(token_layers) != bool(token_steps):
            raise ValueError("token_layers, token_steps: give both (full token grids at layers x steps) or neither")
        self.token_layers = parse_layers(token_layers, n) if token_layers else []
        self.token_steps = parse_steps(token_steps) if token_steps else []
        self.branches: tuple[str, ...] = tuple(self.adapter.cfg_layout) if cfg else ("cond",)
        self.per_call = cfg and self.adapter.cfg_split == "calls"
        self.reduction = reduction
        self.dtype = dtype
        self.sink = sink if sink is not None else self.records_append
        self.records: list[BlockRecord] = []
        self.timesteps: dict[int, float] = {}
        self._handles: list[Any] = []
        self.reset()

    # -- step bookkeeping -------------------------------------------------------------------------
    def reset(self) -> None:
        """Start counting steps afresh (the next denoiser call is step 0)."""
        self.step = -1
        self._last_t: float | None = None
        self._context: str | None = None  # the pipeline's cache_context name of the running call
        self._step_branches: set[str] = set()  # branches already called at this step ("calls" layout)
        self._call_branch: str | None = None

    def _pre_hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        t = self.adapter.timestep(args, kwargs)
        branch = self._branch_of_call() if self.per_call else None
        same_step = self.per_call and t == self._last_t and branch not in self._step_branches
        if not same_step:
            if self._last_t is not None and t >= self._last_t:
                self.step = -1  # timesteps decrease within a generation: this is a new one
            self.step += 1
            self._step_branches = set()
        self._step_branches.add(branch)
        self._call_branch = branch
        self._last_t = t
        self.timesteps[self.step] = t

    def _branch_of_call(self) -> str:
        if self._context not in self.branches:
            raise RuntimeError(
                f"{type(self.pipe).__name__}: a denoiser call ran inside cache_context({self._context!r}); "
                f"with one call per branch every call must be named one of {self.branches}"
            )
        return self._context

    @contextlib.contextmanager
    def _recording_context(self, original: Callable, name: str, **kwargs: Any):
        self._context = name
        try:
            with original(name, **kwargs):
                yield
        finally:
            self._context = None

    def _wanted(self, layer: int) -> tuple[bool, bool]:
        step = self.step
        mean = layer in self._layer_set and (self.steps is None or step in self._step_set)
        tokens = layer in self._token_layer_set and step in self._token_step_set
        return mean, tokens

    # -- block hooks -------------------------------------------------------------------------------
    def _block_hook(self, layer: int) -> Callable:
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            primary, extra_tokens = self._wanted(layer)
            if not (primary or extra_tokens):
                return None
            x = self._read_tokens(layer, module, output)
            if self.per_call:
                parts = [(self._call_branch, x)]
            elif x.shape[0] % len(self.branches):
                raise RuntimeError(
                    f"{hook_name(layer)}: batch of {x.shape[0]} does not split into CFG branches {self.branches};"
                    " was TraceBlocks built with the right cfg= for this call?"
                )
            else:
                parts = list(zip(self.branches, x.chunk(len(self.branches), dim=0)))
            for branch, part in parts:
                if primary:
                    self._emit(layer, branch, self.reduction, part)
                if extra_tokens and not (primary and self.reduction == "tokens"):
                    self._emit(layer, branch, "tokens", part)
            return None

        return hook

    def _read_tokens(self, layer: int, module: torch.nn.Module, output: Any) -> torch.Tensor:
        """The block's image tokens, or an error naming the block when the adapter cannot read them."""
        where = f"{hook_name(layer)} ({type(module).__name__})"
        try:
            x = self.adapter.image_tokens(output)
        except BlockOutputError as err:
            raise BlockOutputError(f"{where}: {err}") from None
        if x.ndim != 3 or x.shape[-1] != self._hidden_size:
            raise BlockOutputError(
                f"{where}: {type(self.adapter).__name__} read {describe(x)} as image tokens, expected "
                f"(batch, tokens, {self._hidden_size})"
            )
        return x.detach()

    def _emit(self, layer: int, branch: str, reduction: str, part: torch.Tensor) -> None:
        if reduction == "mean":
            work = part if part.dtype in (torch.float32, torch.float64) else part.float()
            value = work.mean(dim=1).to(device="cpu", dtype=self.dtype)
        else:
            value = part.to(device="cpu", dtype=self.dtype)
        self.sink(BlockRecord(layer, self.step, self.timesteps[self.step], branch, reduction, value))

    def records_append(self, record: BlockRecord) -> None:
        self.records.append(record)

    # -- context manager ---------------------------------------------------------------------------
    def __enter__(self) -> TraceBlocks:
        if self._handles:
            raise RuntimeError("TraceBlocks is already active")
        self._layer_set = set(self.layers)
        self._step_set = set(self.steps or ())
        self._token_layer_set = set(self.token_layers)
        self._token_step_set = set(self.token_steps)
        self._hidden_size = self.adapter.hidden_size(self.pipe)
        self.reset()
        try:
            denoiser = self.adapter.denoiser(self.pipe)
            self._handles.append(denoiser.register_forward_pre_hook(self._pre_hook, with_kwargs=True))
            if self.per_call:
                self._handles.append(_ContextWrapper(denoiser, self._recording_context))
            for layer in sorted(self._layer_set | self._token_layer_set):
                block = self._blocks[layer]
                self._handles.append(block.register_forward_hook(self._block_hook(layer), with_kwargs=True))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> bool:
        self.remove()
        return False

    def remove(self) -> None:
        """Remove every hook this object registered (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    # -- convenience -------------------------------------------------------------------------------
    @property
    def cache(self) -> dict[tuple[str, int, str], torch.Tensor]:
        """Kept records keyed ``(hook_name, step, branch)`` (tokens: ``(hook_name, step, branch, "tokens")``),
        concatenated over pipeline calls along the sample axis."""
        parts: dict[tuple, list[torch.Tensor]] = defaultdict(list)
        for r in self.records:
            key = (r.hook_name, r.step, r.branch)
            if r.reduction != self.reduction:
                key = key + (r.reduction,)
            parts[key].append(r.value)
        return {k: torch.cat(v) for k, v in parts.items()}


class _ContextWrapper:
    """Shadows ``module.cache_context`` with ``wrapper(original, name, **kw)`` until :meth:`remove`
    (a handle like torch's, so :meth:`TraceBlocks.remove` undoes it with the hooks)."""

    def __init__(self, module: torch.nn.Module, wrapper: Callable) -> None:
        if not hasattr(module, "cache_context"):
            raise ValueError(f"{type(module).__name__} has no cache_context: its calls cannot be named per branch")
        original = module.cache_context
        self.module = module
        module.cache_context = lambda name, **kw: wrapper(original, name, **kw)

    def remove(self) -> None:
        self.module.__dict__.pop("cache_context", None)


def run_with_cache(
    pipe: Any,
    *args: Any,
    layers: str | Sequence[int | str] = "all",
    steps: Iterable[int] | None = None,
    reduction: str = "mean",
    dtype: torch.dtype = torch.float32,
    **pipe_kwargs: Any,
) -> tuple[Any, dict]:
    """Call ``pipe(*args, **pipe_kwargs)`` under :class:`TraceBlocks`; return ``(output, trace.cache)``.

    Whether there is an unconditional branch is the adapter's reading of ``pipe_kwargs``
    (``adapter.guided``; the pipelines' default ``guidance_scale`` when not given is taken as on).
    """
    adapter = adapter_for(pipe)
    cfg = adapter.guided({"guidance_scale": 4.5, **pipe_kwargs})
    with TraceBlocks(pipe, layers, steps, cfg=cfg, reduction=reduction, dtype=dtype, adapter=adapter) as trace:
        output = pipe(*args, **pipe_kwargs)
    return output, trace.cache
