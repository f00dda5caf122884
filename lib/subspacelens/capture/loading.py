"""Loading a pipeline by hub id or local folder, safetensors only, with errors that say what to do.

``DiffusionPipeline.from_pretrained(model, use_safetensors=True)``; never ``trust_remote_code``.
A local folder is tried first; a hub id is looked up in the local Hugging Face cache
(``local_files_only=True``) and only then, unless ``HF_HUB_OFFLINE`` is set, downloaded. Every failure
becomes a :class:`ModelNotFoundError` that names the model and how to provide it, instead of a stack
trace from inside the hub client.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from subspacelens.paths import resolve

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class ModelNotFoundError(FileNotFoundError):
    """The requested model's weights are not available here."""


def torch_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"float16"`` -> ``torch.float16``; ``ValueError`` naming ``dtype`` for unknown names."""
    if isinstance(name, torch.dtype):
        return name
    try:
        return DTYPES[str(name).removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"dtype: {name!r} not in {sorted(DTYPES)}") from None


def check_device(device: str) -> torch.device:
    """``device`` as a ``torch.device`` that exists here; ``ValueError`` naming ``device`` otherwise, so a
    GPU parameter file on a CPU machine fails before the model is loaded, not inside torch afterwards."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device: {device!r} is not a torch device ({err}); e.g. 'cpu' or 'cuda'") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device: {device!r}, but CUDA is not available on this machine (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda}); use device 'cpu' or run where a GPU is visible"
            )
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"device: {device!r}, but this machine has {count} CUDA device(s), 0..{count - 1}")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {device!r}, but MPS is not available on this machine; use device 'cpu'")
    return parsed


def is_hub_id(model: str) -> bool:
    """``owner/name`` that is not an existing local path (from the working directory or the repository)."""
    return bool(_HUB_ID.match(model)) and not Path(model).exists() and not resolve(model).exists()


def no_such_folder(path: Path) -> str:
    """``"no such folder <path>"``, with the nearest names in its parent folder when that exists."""
    parent = path.parent
    near = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir()], n=3) if parent.is_dir() else []
    hint = f" (in {parent}: did you mean {' or '.join(map(repr, near))}?)" if near else ""
    return f"no such folder {path}{hint}"


def check_local_model(path: Path) -> None:
    """``ModelNotFoundError`` unless ``path`` is a pipeline folder with safetensors weights."""
    if not path.is_dir():
        raise ModelNotFoundError(
            f"model {str(path)!r}: {no_such_folder(path)}. Give a diffusers pipeline folder (written by "
            "`pipeline.save_pretrained(folder)`; the organism's is made by the 'Training the organism' chapter) "
            "or a Hugging Face hub id such as 'PixArt-alpha/PixArt-XL-2-512x512'."
        )
    if not (path / "model_index.json").is_file():
        raise ModelNotFoundError(
            f"model {str(path)!r}: the folder has no model_index.json, so it is not a diffusers pipeline "
            "folder (write one with `pipeline.save_pretrained(folder)`)."
        )
    if not any(path.rglob("*.safetensors")):
        raise ModelNotFoundError(
            f"model {str(path)!r}: no *.safetensors weights in the folder; only safetensors are loaded "
            "(re-save with `pipeline.save_pretrained(folder, safe_serialization=True)`)."
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence diffusers' and transformers' info logs and loading progress bars for the duration."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    levels = dlog.get_verbosity(), tlog.get_verbosity()
    bars = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.set_verbosity_error(), tlog.set_verbosity_error()
    dlog.disable_progress_bar(), tlog.disable_progress_bar()
    try:
        yield
    finally:
        dlog.set_verbosity(levels[0]), tlog.set_verbosity(levels[1])
        if bars[0]:
            dlog.enable_progress_bar()
        if bars[1]:
            tlog.enable_progress_bar()


def load_pipeline(model: str | os.PathLike, *, dtype: str | torch.dtype = "float32", device: str = "cpu") -> Any:
    """``DiffusionPipeline.from_pretrained(model)`` on ``device`` in ``dtype``, or a clear ``ModelNotFoundError``.

    A relative folder is taken from the repository root (:func:`subspacelens.paths.resolve`). Loading logs and progress bars are silenced.
    """
    from diffusers import DiffusionPipeline

    dtype = torch_dtype(dtype)
    check_device(device)
    model = str(model)
    kwargs = {"dtype": dtype, "use_safetensors": True}
    with _quiet():
        if not is_hub_id(model):
            path = resolve(model)
            check_local_model(path)
            try:
                pipe = DiffusionPipeline.from_pretrained(str(path), local_files_only=True, **kwargs)
            except (OSError, ValueError) as err:
                raise ModelNotFoundError(
                    f"model {model!r}: could not load the pipeline folder: {_first_line(err)}"
                ) from None
        else:
            pipe = _load_hub(DiffusionPipeline, model, kwargs)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_hub(cls: Any, model: str, kwargs: dict) -> Any:
    try:
        return cls.from_pretrained(model, local_files_only=True, **kwargs)
    except (OSError, ValueError) as err:
        local_error = _first_line(err)
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    if not offline:
        try:
            return cls.from_pretrained(model, **kwargs)
        except Exception as err:  # network, auth, missing safetensors: all end in the same advice
            local_error = f"{local_error}; download failed: {_first_line(err)}"
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    raise ModelNotFoundError(
        f"model {model!r}: {no_such_folder(resolve(model))}. "
        f"As a hub id it is not available either: it is not in the local Hugging Face cache ({cache})"
        f"{' and HF_HUB_OFFLINE is set' if offline else ' and could not be downloaded'}. "
        f"On a machine with network run `huggingface-cli download {model}` (safetensors weights are required) "
        "and copy the cache here, or pass the path of a local pipeline folder instead. "
        f"[{local_error}]"
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:400]
