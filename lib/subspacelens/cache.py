"""The activation cache: an ``xarray.Dataset`` in a zarr store, written batch by batch, resumable, lazy.

Layout of ``<name>.zarr`` (zarr format 2, not consolidated; see DESIGN.md for the contract):

* ``activations`` (sample, layer, step, branch, feature): mean over image tokens of every kept block
  output; chunks ``(batch_size, n_layers, 1, 1, d)`` so one (step, branch) slice over all samples and
  layers reads whole chunks, and every chunk belongs to exactly one batch.
* ``tokens`` (sample, token_layer, token_step, branch, token, feature), only when full token grids were
  requested (``token_layers`` x ``token_steps``), in ``token_dtype`` (float16 optional), chunked by sample:
  chunks ``(c, 1, 1, 1, T, d)`` with c the largest divisor of ``batch_size`` whose chunk holds at most
  :data:`TOKEN_CHUNK_BYTES` (so every chunk belongs to one batch), zarr's default compressor. ``token`` indexes the
  image-token grid in raster order (``token = row * grid_width + col``); coord ``token_timestep`` on
  ``token_step``.
* ``latents`` (sample, channel, latent_y, latent_x): the final denoised latents (decode with the VAE to
  see the image), unless ``keep_latents=False``.
* coords ``subject``, ``category``, ``seed``, ``prompt`` on ``sample``; ``timestep`` on ``step``;
  ``block_kind`` on ``layer`` (``cross``, ``joint``, ``double``, ``single``: see the model adapters);
  ``branch`` in ``("uncond", "cond")`` or ``("cond",)``.
* attrs: ``model``, ``guidance_scale``, ``num_inference_steps``, ``scheduler``, ``dtype``, ``prompt_set``,
  ``reduction``, ``package_versions`` (JSON), ``config_hash``, ``num_layers_total``, ``capture_seconds``
  (sum of the per-batch wall times, over resumes), ``config`` (JSON of everything hashed), ``batch_size``,
  ``num_batches``, ``shard_index``, ``num_shards``, ``complete``, ``cache_format``.
* ``progress/`` (an empty zarr group): one marker ``batch-<i>.json`` per completed batch, written
  atomically (temp file + rename) only after that batch's chunks are written. A capture killed at any
  point resumes from the markers: a batch without a marker is simply recomputed and overwritten.
  Each marker records the byte count and SHA-256 of every chunk file of its batch (``chunks``), so a
  chunk cut short, deleted or altered afterwards is found (:func:`verify_cache`): sizes are checked on
  every :func:`open_cache`, hashes on request; ``run_capture`` recomputes exactly the damaged batches.

The store is created complete-but-empty (metadata, coords, NaN fill) in a temporary folder and renamed
into place, so a path either holds a well-formed store or nothing. Writers hold :func:`store_lock`, so
two captures to one path never interleave; a temporary folder left by a killed creation is removed by
the next writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import math
import os
import shutil
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from subspacelens.paths import resolve

CACHE_FORMAT = 1
DIMS = ("sample", "layer", "step", "branch", "feature")
TOKEN_DIMS = ("sample", "token_layer", "token_step", "branch", "token", "feature")
LATENT_DIMS = ("sample", "channel", "latent_y", "latent_x")
#: configuration keys that do not enter the hash: every shard of one capture shares its hash.
UNHASHED_KEYS = ("shard_index", "num_shards")
DATA_VARS = ("activations", "tokens", "latents")
_PROGRESS = "progress"
#: target size of one ``tokens`` chunk: a few MB per read keeps a streamed pass near disk speed.
TOKEN_CHUNK_BYTES = 8 * 2**20
#: stored bytes of one dask chunk of ``tokens`` when a store is opened: a whole run of storage chunks, which
#: one task reads in one zarr call. A chunk must divide the capture batch, so at the organism's width it
#: holds 400 KB, and a dask worker spends longer scheduling and opening a task per chunk than the chunk's
#: moments take to compute.
TOKEN_READ_BYTES = 16 * 2**20
_PACKAGES = ("subspacelens", "torch", "diffusers", "transformers", "numpy", "xarray", "zarr", "dask")


class CacheMismatchError(ValueError):
    """The store at this path was made with a different configuration."""


class IncompleteCacheError(RuntimeError):
    """The store at this path is not (yet) a complete capture."""


class DamagedCacheError(IncompleteCacheError):
    """Chunks or progress markers of the store changed after they were written (see :func:`verify_cache`)."""


class CacheLockedError(RuntimeError):
    """Another process holds the store's write lock."""


def config_hash(config: dict) -> str:
    """SHA-256 (first 16 hex digits) of the canonical JSON of ``config`` without :data:`UNHASHED_KEYS`."""
    hashed = {k: v for k, v in config.items() if k not in UNHASHED_KEYS}
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package_versions(packages: Iterable[str] = _PACKAGES) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def batch_slices(num_samples: int, batch_size: int) -> list[slice]:
    """Consecutive sample ranges of ``batch_size`` (the last may be shorter)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    return [slice(a, min(a + batch_size, num_samples)) for a in range(0, num_samples, batch_size)]


def shard_batches(num_batches: int, shard_index: int, num_shards: int) -> list[int]:
    """The batches shard ``shard_index`` of ``num_shards`` computes: a contiguous, balanced range.

    Shards own whole batches, so every batch is computed with the same composition (and so the same
    floating-point result) whether the capture runs in one job or in many.
    """
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"num_shards: must be a positive int, got {num_shards!r}")
    if not isinstance(shard_index, int) or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index: must be an int in [0, {num_shards}), got {shard_index!r}")
    if num_shards > num_batches:
        raise ValueError(f"num_shards: {num_shards} shards for only {num_batches} batches")
    bounds = np.linspace(0, num_batches, num_shards + 1).round().astype(int)
    return list(range(bounds[shard_index], bounds[shard_index + 1]))


@dataclass
class CacheSpec:
    """Everything needed to preallocate a store (built by :func:`subspacelens.capture.run_capture`)."""

    samples: pd.DataFrame  # columns subject, category, seed, prompt (+ any further sample coords); row i is sample i
    layers: list[int]
    steps: list[int]
    timesteps: list[float]  # one per step
    branches: tuple[str, ...]
    hidden_size: int
    batch_size: int
    dtype: str
    config: dict  # everything that determines the values (hashed)
    attrs: dict  # DESIGN.md attrs (model, guidance_scale, ...); hash, versions, bookkeeping added here
    token_layers: list[int] = field(default_factory=list)
    token_steps: list[int] = field(default_factory=list)
    token_dtype: str = "float32"
    num_tokens: int = 0
    latent_shape: tuple[int, ...] | None = None  # (channel, y, x)
    shard_index: int = 0
    num_shards: int = 1
    block_kinds: list[str] = field(default_factory=list)  # one per kept layer (coord block_kind); [] = none
    token_foreground: np.ndarray | None = None  # (sample, token) object fraction of each token (procedural inputs)

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    @property
    def num_batches(self) -> int:
        return len(batch_slices(len(self.samples), self.batch_size))

    def batches(self) -> list[slice]:
        return batch_slices(len(self.samples), self.batch_size)

    def my_batches(self) -> list[int]:
        return shard_batches(self.num_batches, self.shard_index, self.num_shards)


#: The sample coords every cache has; further columns of ``CacheSpec.samples`` become coords of their own.
SAMPLE_COORDS = ("subject", "category", "seed", "prompt")


def _sample_coord(column: pd.Series) -> np.ndarray:
    """A further sample column as a coord: numbers as float64, anything else as str."""
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64)
    return np.asarray(column.astype(str).tolist(), dtype=str)


def _timestep_coord(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr.astype(np.int64) if np.all(arr == np.round(arr)) else arr


def token_chunk_samples(batch_size: int, sample_bytes: int) -> int:
    """Samples per ``tokens`` chunk: the largest divisor of ``batch_size`` within :data:`TOKEN_CHUNK_BYTES` (≥ 1)."""
    fitting = [c for c in range(1, batch_size + 1) if batch_size % c == 0 and c * sample_bytes <= TOKEN_CHUNK_BYTES]
    return max(fitting, default=1)


def _empty_dataset(spec: CacheSpec) -> tuple[xr.Dataset, dict]:
    n, d = len(spec.samples), spec.hidden_size
    bs = spec.batch_size
    dtype = np.dtype(spec.dtype)
    shape = (n, len(spec.layers), len(spec.steps), len(spec.branches), d)
    chunks = (bs, len(spec.layers), 1, 1, d)
    data_vars = {"activations": (DIMS, da.full(shape, np.nan, dtype=dtype, chunks=chunks))}
    encoding = {"activations": {"chunks": chunks}}
    coords: dict[str, Any] = {
        "sample": np.arange(n),
        "subject": ("sample", np.asarray(spec.samples["subject"].tolist(), dtype=str)),
        "category": ("sample", np.asarray(spec.samples["category"].tolist(), dtype=str)),
        "seed": ("sample", spec.samples["seed"].to_numpy(dtype=np.int64)),
        "prompt": ("sample", np.asarray(spec.samples["prompt"].tolist(), dtype=str)),
        **{name: ("sample", _sample_coord(spec.samples[name])) for name in spec.samples.columns if name not in SAMPLE_COORDS},
        "layer": np.asarray(spec.layers, dtype=np.int64),
        **({"block_kind": ("layer", np.asarray(spec.block_kinds, dtype=str))} if spec.block_kinds else {}),
        "step": np.asarray(spec.steps, dtype=np.int64),
        "timestep": ("step", _timestep_coord(spec.timesteps)),
        "branch": np.asarray(spec.branches, dtype=str),
        "feature": np.arange(d),
    }
    if spec.token_layers:
        tshape = (n, len(spec.token_layers), len(spec.token_steps), len(spec.branches), spec.num_tokens, d)
        tdtype = np.dtype(spec.token_dtype)
        tchunks = (token_chunk_samples(bs, spec.num_tokens * d * tdtype.itemsize), 1, 1, 1, spec.num_tokens, d)
        data_vars["tokens"] = (TOKEN_DIMS, da.full(tshape, np.nan, dtype=tdtype, chunks=tchunks))
        encoding["tokens"] = {"chunks": tchunks}
        step_timestep = dict(zip(spec.steps, spec.timesteps))
        coords["token_layer"] = np.asarray(spec.token_layers, dtype=np.int64)
        coords["token_step"] = np.asarray(spec.token_steps, dtype=np.int64)
        coords["token_timestep"] = ("token_step", _timestep_coord([step_timestep[s] for s in spec.token_steps]))
        coords["token"] = np.arange(spec.num_tokens)
        if spec.token_foreground is not None:
            coords["token_foreground"] = (("sample", "token"), np.asarray(spec.token_foreground, dtype=np.float32))
    if spec.latent_shape is not None:
        lshape = (n, *spec.latent_shape)
        lchunks = (bs, *spec.latent_shape)
        data_vars["latents"] = (LATENT_DIMS, da.full(lshape, np.nan, dtype=np.float32, chunks=lchunks))
        encoding["latents"] = {"chunks": lchunks}
    attrs = dict(spec.attrs)
    attrs.update(
        config_hash=spec.hash,
        config=json.dumps({k: v for k, v in spec.config.items() if k not in UNHASHED_KEYS}, sort_keys=True, default=str),
        package_versions=json.dumps(package_versions(), sort_keys=True),
        dtype=str(dtype),
        batch_size=bs,
        num_batches=spec.num_batches,
        shard_index=spec.shard_index,
        num_shards=spec.num_shards,
        complete=False,
        capture_seconds=0.0,
        cache_format=CACHE_FORMAT,
    )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs), encoding


class CacheWriter:
    """A store being filled batch by batch. Use :meth:`open` (creates or resumes)."""

    def __init__(self, path: Path, spec: CacheSpec) -> None:
        self.path = Path(path)
        self.spec = spec
        self.group = zarr.open_group(str(self.path), mode="r+", zarr_format=2)

    @classmethod
    def open(cls, path: str | os.PathLike, spec: CacheSpec) -> CacheWriter:
        """Resume the store at ``path`` if it has the same configuration hash, create it if absent,
        refuse (:class:`CacheMismatchError`) if it holds a different configuration or shard."""
        path = Path(path)
        if path.exists():
            _check_same(path, spec)
        else:
            create_store(path, spec)
        return cls(path, spec)

    def done_batches(self) -> set[int]:
        return done_batches(self.path)

    def todo_batches(self) -> list[int]:
        done = self.done_batches()
        return [b for b in self.spec.my_batches() if b not in done]

    def write_batch(
        self,
        batch: int,
        activations: np.ndarray,
        *,
        tokens: np.ndarray | None = None,
        latents: np.ndarray | None = None,
        seconds: float = 0.0,
    ) -> None:
        """Write batch ``batch``'s region of every variable, then (only then) its completion marker."""
        region = self.spec.batches()[batch]
        n = region.stop - region.start
        arrays = {"activations": activations, "tokens": tokens, "latents": latents}
        for name, values in arrays.items():
            if name not in self.group:
                if values is not None:
                    raise ValueError(f"{name}: this store has no {name!r} variable")
                continue
            if values is None:
                raise ValueError(f"{name}: the store expects {name!r} for every batch")
            target = self.group[name]
            expected = (n, *target.shape[1:])
            if values.shape != expected:
                raise ValueError(f"{name}: batch {batch} has shape {values.shape}, expected {expected}")
            target[region] = values
        info = {"batch": batch, "start": region.start, "stop": region.stop, "seconds": seconds}
        _write_marker(self.path, batch, info | {"chunks": chunk_records(self.path, region)})

    def finalize(self) -> bool:
        """Mark the store complete when all of this shard's batches are done; returns whether it is."""
        return _finalize(self.path, self.spec.my_batches())


def create_store(path: str | os.PathLike, spec: CacheSpec) -> Path:
    """Preallocate the store (metadata and coords only) in a temporary folder, then rename it to ``path``."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        ds, encoding = _empty_dataset(spec)
        ds.to_zarr(str(tmp), mode="w-", compute=False, zarr_format=2, consolidated=False, encoding=encoding)
        zarr.open_group(str(tmp), mode="r+", zarr_format=2).create_group(_PROGRESS)
        os.replace(tmp, path)  # atomic for a directory on one filesystem; fails if path appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _read_attrs(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"no store at {path}")
    try:
        return dict(zarr.open_group(str(path), mode="r", zarr_format=2).attrs)
    except Exception as err:
        raise CacheMismatchError(f"{path} exists but is not a SubspaceLens cache ({type(err).__name__}: {err})") from None


def _check_same(path: Path, spec: CacheSpec) -> None:
    attrs = _read_attrs(path)
    if attrs.get("config_hash") != spec.hash:
        old = json.loads(attrs.get("config", "{}"))
        diff = sorted(k for k in set(old) | set(spec.config) if k not in UNHASHED_KEYS and old.get(k) != spec.config.get(k))
        raise CacheMismatchError(
            f"{path} holds a capture with config hash {attrs.get('config_hash')!r}, not {spec.hash!r} "
            f"(differs in {diff}); it is not overwritten: delete it or choose another `out`."
        )
    theirs = (attrs.get("shard_index"), attrs.get("num_shards"))
    if theirs != (spec.shard_index, spec.num_shards):
        raise CacheMismatchError(
            f"{path} is shard {theirs[0]} of {theirs[1]}, not shard {spec.shard_index} of {spec.num_shards}"
        )


def _marker_dir(path: Path) -> Path:
    return Path(path) / _PROGRESS


def _write_marker(path: Path, batch: int, info: dict) -> None:
    folder = _marker_dir(path)
    tmp = folder / f".batch-{batch:06d}.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, folder / f"batch-{batch:06d}.json")


def _read_marker(file: Path) -> dict:
    """The marker's JSON; :class:`DamagedCacheError` naming the file when it is unreadable."""
    try:
        info = json.loads(file.read_text())
        if int(info["batch"]) != int(file.stem.removeprefix("batch-")):
            raise ValueError(f"it names batch {info['batch']}")
    except (ValueError, KeyError, TypeError) as err:
        raise DamagedCacheError(
            f"{file}: corrupt progress marker ({type(err).__name__}: {err}); rerun the capture with the same "
            f"parameters to recompute that batch (`python -m subspacelens verify {file.parent.parent}` lists the damage)"
        ) from None
    return info


def _markers(path: Path) -> dict[int, dict]:
    return {int(info["batch"]): info for info in map(_read_marker, sorted(_marker_dir(path).glob("batch-*.json")))}


def _batch_chunk_keys(group: zarr.Group, region: slice) -> list[str]:
    """The chunk files (``"<variable>/<i>.<j>…"``) holding samples ``region`` of every data variable."""
    keys = []
    for name in DATA_VARS:
        if name not in group:
            continue
        array = group[name]
        per_dim = [range(-(-size // chunk)) for size, chunk in zip(array.shape, array.chunks)]
        per_dim[0] = range(region.start // array.chunks[0], -(-region.stop // array.chunks[0]))
        keys += [f"{name}/" + ".".join(map(str, index)) for index in itertools.product(*per_dim)]
    return keys


def _file_record(file: Path) -> list | None:
    """``[byte count, SHA-256 hex]`` of a chunk file, ``None`` when zarr left it unwritten (all fill value)."""
    if not file.is_file():
        return None
    return [file.stat().st_size, hashlib.sha256(file.read_bytes()).hexdigest()]


def chunk_records(path: str | os.PathLike, region: slice) -> dict[str, list | None]:
    """Byte count and hash of every chunk file of the samples ``region`` (what a batch marker records)."""
    path = Path(path)
    group = zarr.open_group(str(path), mode="r", zarr_format=2)
    return {key: _file_record(path / key) for key in _batch_chunk_keys(group, region)}


def _chunk_problems(path: Path, records: dict[str, list | None], hashes: bool) -> list[str]:
    problems = []
    for key, record in records.items():
        if record is None:
            continue
        file = path / key
        if not file.is_file():
            problems.append(f"{key} is missing")
        elif file.stat().st_size != record[0]:
            problems.append(f"{key} has {file.stat().st_size} bytes, {record[0]} were written")
        elif hashes and hashlib.sha256(file.read_bytes()).hexdigest() != record[1]:
            problems.append(f"{key} has changed (SHA-256 differs)")
    return problems


@dataclass(frozen=True)
class DamagedBatch:
    """One batch whose chunks or marker no longer match what was written."""

    batch: int
    start: int
    stop: int
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"batch {self.batch} (samples {self.start}..{self.stop - 1}): {'; '.join(self.problems)}"


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_cache` found: ``intact`` batches, ``damaged`` ones, and ``unrecorded`` batches
    (markers written before checksums were recorded, so their chunks cannot be checked)."""

    path: Path
    intact: tuple[int, ...]
    damaged: tuple[DamagedBatch, ...]
    unrecorded: tuple[int, ...]
    hashes: bool

    @property
    def ok(self) -> bool:
        return not self.damaged

    def __str__(self) -> str:
        checked = "sizes and SHA-256" if self.hashes else "sizes"
        lines = [f"{self.path}: {len(self.intact)} batches intact, {len(self.damaged)} damaged ({checked} checked)"]
        lines += [f"  {damage}" for damage in self.damaged]
        if self.unrecorded:
            lines.append(f"  batches {list(self.unrecorded)} have no recorded checksums (written by an older version)")
        if self.damaged:
            lines.append("  rerun the capture with the same parameters to recompute exactly the damaged batches")
        return "\n".join(lines)


def verify_cache(path: str | os.PathLike, *, hashes: bool = False) -> VerifyReport:
    """Check every finished batch's chunk files against the byte counts (and, with ``hashes``, the SHA-256)
    recorded in its marker; an unreadable marker makes its batch damaged."""
    path = resolve(path)
    attrs = _read_attrs(path)
    markers = sorted(_marker_dir(path).glob("batch-*.json"))
    if markers:
        n_samples = zarr.open_group(str(path), mode="r", zarr_format=2)["sample"].shape[0]
        slices = batch_slices(int(n_samples), int(attrs["batch_size"]))
    intact, damaged, unrecorded = [], [], []
    for file in markers:
        batch = int(file.stem.removeprefix("batch-"))
        region = slices[batch]
        try:
            info = _read_marker(file)
        except DamagedCacheError as err:
            damaged.append(DamagedBatch(batch, region.start, region.stop, (str(err).split(";")[0],)))
            continue
        if "chunks" not in info:
            unrecorded.append(batch)
            intact.append(batch)
            continue
        problems = _chunk_problems(path, info["chunks"], hashes)
        if problems:
            damaged.append(DamagedBatch(batch, region.start, region.stop, tuple(problems)))
        else:
            intact.append(batch)
    return VerifyReport(path, tuple(intact), tuple(damaged), tuple(unrecorded), hashes)


def forget_batches(path: str | os.PathLike, batches: Iterable[int]) -> None:
    """Delete the markers of ``batches`` (and the store's ``complete`` flag) so a capture recomputes them."""
    path = Path(path)
    for batch in batches:
        (_marker_dir(path) / f"batch-{batch:06d}.json").unlink(missing_ok=True)
    zarr.open_group(str(path), mode="r+", zarr_format=2).attrs.update({"complete": False})


@contextlib.contextmanager
def store_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the write lock of the store ``path`` (a ``flock`` on ``.<name>.lock`` beside it, released when
    the holder exits or dies); :class:`CacheLockedError` at once if another process holds it. On entry,
    temporary ``.<name>.partial-*`` folders left by a killed store creation are removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CacheLockedError(
                f"out: {path} is being written by {holder} (lock {lock}); wait for that capture to finish "
                "(it resumes from the same store) or choose another `out`"
            ) from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        for stale in path.parent.glob(f".{path.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield path


def done_batches(path: str | os.PathLike) -> set[int]:
    """Indices of the batches whose data are written (their markers exist)."""
    return set(_markers(Path(path)))


def _finalize(path: Path, batches: Iterable[int]) -> bool:
    markers = _markers(path)
    if any(b not in markers for b in batches):
        return False
    group = zarr.open_group(str(path), mode="r+", zarr_format=2)
    seconds = float(sum(m["seconds"] for m in markers.values()))
    group.attrs.update({"complete": True, "capture_seconds": round(seconds, 3)})
    return True


def cache_status(path: str | os.PathLike) -> dict:
    """``{"exists", "complete", "config_hash", "done", "total", "shard_index", "num_shards"}`` of a store."""
    path = Path(path)
    if not path.exists():
        return {"exists": False, "complete": False, "config_hash": None, "done": 0, "total": 0}
    attrs = _read_attrs(path)
    mine = shard_batches(attrs["num_batches"], attrs["shard_index"], attrs["num_shards"])
    done = done_batches(path)
    return {
        "exists": True,
        "complete": bool(attrs.get("complete")),
        "config_hash": attrs.get("config_hash"),
        "done": sum(b in done for b in mine),
        "total": len(mine),
        "shard_index": attrs["shard_index"],
        "num_shards": attrs["num_shards"],
    }


class WholeChunkReader:
    """Array-like view of a zarr array in a local store that reads a run of whole storage chunks fast.

    A selection of whole chunks along the first axis and one whole chunk along every other axis (a dask
    chunk of :func:`open_tokens`) reads each chunk's file and decodes it with the array's compressor
    straight into its rows of the output. Zarr's own read sends every chunk through its async codec
    pipeline on an event-loop thread and copies it twice after decoding; at the organism's 400 KB chunks
    that cost several times the decoding, and in a dask worker the loop thread contends with the worker's
    own for the GIL. Any other selection, a store that is not a local folder, or an array with filters or
    in Fortran order is read by zarr.
    """

    def __init__(self, array: zarr.Array) -> None:
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim
        meta, store = array.metadata, array.store_path.store
        direct = (meta.zarr_format == 2 and not meta.filters and meta.order == "C" and meta.compressor is not None
                  and isinstance(store, zarr.storage.LocalStore))
        self._folder = Path(store.root) / array.store_path.path if direct else None

    def _chunks(self, key) -> tuple[range, tuple[int, ...]] | None:
        """The storage chunks a selection is made of: a range along the first axis, one index along each other."""
        key = key if isinstance(key, tuple) else (key,)
        if self._folder is None or len(key) != self.ndim or not all(isinstance(k, slice) for k in key):
            return None
        chunks, spans = self.array.metadata.chunks, [k.indices(n) for k, n in zip(key, self.shape)]
        if any(step != 1 or start % c for (start, _, step), c in zip(spans, chunks)):
            return None
        (start, stop, _), rest = spans[0], spans[1:]
        if stop <= start or (stop % chunks[0] and stop != self.shape[0]):
            return None
        if any(stop != min(start + c, n) for (start, stop, _), c, n in zip(rest, chunks[1:], self.shape[1:])):
            return None
        return range(start // chunks[0], -(-stop // chunks[0])), tuple(start // c for (start, _, _), c in zip(rest, chunks[1:]))

    def __getitem__(self, key) -> np.ndarray:
        found = self._chunks(key)
        if found is None:
            return np.asarray(self.array[key])
        (along, rest), meta = found, self.array.metadata
        out = np.empty(tuple(stop - start for start, stop, _ in (k.indices(n) for k, n in zip(key, self.shape))), self.dtype)
        per, first = meta.chunks[0], along.start * meta.chunks[0]
        for c in along:
            rows = out[c * per - first : (c + 1) * per - first]
            file = self._folder / meta.encode_chunk_key((c, *rest))
            if not file.exists():  # never written: the fill value
                rows[...] = meta.fill_value
            elif rows.shape == tuple(meta.chunks):
                meta.compressor.decode(file.read_bytes(), out=rows)
            else:  # a chunk at the array's edge is stored whole, padded past the end
                whole = np.frombuffer(meta.compressor.decode(file.read_bytes()), dtype=self.dtype).reshape(meta.chunks)
                rows[...] = whole[tuple(slice(0, n) for n in rows.shape)]
        return out


def open_tokens(path: str | os.PathLike) -> xr.DataArray:
    """The ``tokens`` variable of a store, lazily, in dask chunks of whole runs of its storage chunks along
    ``sample`` (about :data:`TOKEN_READ_BYTES` each; every other dim chunked as stored), each read by one
    :class:`WholeChunkReader` call."""
    stored = xr.open_zarr(str(path), consolidated=False, chunks={}, zarr_format=2)
    if "tokens" not in stored.data_vars:
        raise ValueError(f"path: the store at {path} has no 'tokens' variable")
    tokens = stored["tokens"]
    if tokens.dims[0] != "sample":
        raise ValueError(f"path: the 'tokens' of {path} have dims {tokens.dims}; 'sample' must come first")
    array = zarr.open_group(str(path), mode="r", zarr_format=2)["tokens"]
    chunks = array.metadata.chunks
    run = chunks[0] * max(1, TOKEN_READ_BYTES // (math.prod(chunks) * array.dtype.itemsize))
    if tokens.dtype != array.dtype:  # stored with a CF encoding (scale_factor, ...): xarray decodes it
        return tokens.chunk({"sample": run})
    return tokens.copy(data=da.from_array(WholeChunkReader(array), chunks=(run, *chunks[1:]), name=False))


def open_cache(path: str | os.PathLike, *, allow_incomplete: bool = False, verify_hashes: bool = False) -> xr.Dataset:
    """Open a cache lazily (dask-backed data; the small per-sample/step coords are loaded).

    Every finished batch's chunk files are checked against the byte counts recorded when they were written
    (and their SHA-256 with ``verify_hashes=True``, which reads the whole store). A shard store, an
    unfinished capture or a damaged store raises :class:`IncompleteCacheError` (:class:`DamagedCacheError`
    for damage), unless ``allow_incomplete=True``: then only the samples of intact, finished batches are
    returned.
    """
    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"no activation cache at {path}; run the 'Capturing activations' chapter to make it")
    attrs = _read_attrs(path)
    report = verify_cache(path, hashes=verify_hashes)
    ds = xr.open_zarr(str(path), consolidated=False, chunks={}, zarr_format=2)
    if "tokens" in ds.data_vars:
        ds["tokens"] = open_tokens(path)
    small = [name for name in ds.coords if name not in ds.dims]
    ds = ds.assign_coords({name: ds[name].compute() for name in small})
    whole = bool(attrs.get("complete")) and attrs.get("num_shards") == 1 and report.ok
    if whole:
        return ds
    if not allow_incomplete:
        if not report.ok:
            raise DamagedCacheError(f"{report}\n(pass allow_incomplete=True to open the intact samples only)")
        status = cache_status(path)
        what = (
            f"shard {attrs['shard_index']} of {attrs['num_shards']} (merge the shards with merge_shards)"
            if attrs.get("num_shards", 1) > 1
            else "an unfinished capture (rerun it with the same parameters to resume)"
        )
        raise IncompleteCacheError(
            f"{path} is {what}: {status['done']} of {status['total']} batches done; "
            "pass allow_incomplete=True to open the finished samples only"
        )
    slices = batch_slices(ds.sizes["sample"], int(attrs["batch_size"]))
    keep = [i for b in report.intact for i in range(slices[b].start, slices[b].stop)]
    return ds.isel(sample=keep)


def merge_shards(shards: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Merge the stores of shards ``0..N-1`` of one capture into the store a single run would have made.

    Every shard must be complete and share one configuration hash; together they must cover every batch
    exactly once. The merged store is built in a temporary folder and renamed into place.
    """
    paths = [resolve(p) for p in shards]
    if not paths:
        raise ValueError("shards: no shard stores given")
    missing_paths = [str(p) for p in paths if not p.exists()]
    if missing_paths:
        raise FileNotFoundError(f"shards: no store at {missing_paths}")
    out = resolve(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; merge_shards does not overwrite")
    attrs = [_read_attrs(p) for p in paths]
    hashes = {a.get("config_hash") for a in attrs}
    if len(hashes) != 1:
        raise CacheMismatchError(f"shards: different configuration hashes {sorted(map(str, hashes))}")
    _check_shard_indices(paths, attrs)
    for p, a in zip(paths, attrs):
        if not a.get("complete"):
            raise IncompleteCacheError(f"shards: {p} (shard {a['shard_index']}) is not complete")
        report = verify_cache(p)
        if not report.ok:
            raise DamagedCacheError(f"shards: {report}")
    owner: dict[int, Path] = {}
    for p in paths:
        for b in done_batches(p):
            if b in owner:
                raise ValueError(f"shards: batch {b} is in both {owner[b]} and {p}")
            owner[b] = p
    n_batches = attrs[0]["num_batches"]
    if sorted(owner) != list(range(n_batches)):
        raise ValueError(f"shards: batches {sorted(set(range(n_batches)) - set(owner))} are in no shard")

    with store_lock(out):
        _build_merged(out, paths, attrs, owner)
    return out


def _build_merged(out: Path, paths: Sequence[Path], attrs: Sequence[dict], owner: dict[int, Path]) -> None:
    """Copy shard 0, write every other shard's batches into the copy, then rename it to ``out``."""
    n_batches = attrs[0]["num_batches"]
    tmp = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        first = paths[[a["shard_index"] for a in attrs].index(0)]
        shutil.copytree(first, tmp)
        target = zarr.open_group(str(tmp), mode="r+", zarr_format=2)
        sources = {p: zarr.open_group(str(p), mode="r", zarr_format=2) for p in paths}
        slices = batch_slices(target["sample"].shape[0], int(attrs[0]["batch_size"]))
        data_vars = [name for name in DATA_VARS if name in target]
        for b, p in sorted(owner.items()):
            if p == first:
                continue
            for name in data_vars:
                target[name][slices[b]] = sources[p][name][slices[b]]
            _write_marker(tmp, b, _markers(p)[b] | {"chunks": chunk_records(tmp, slices[b])})
        target.attrs.update({"shard_index": 0, "num_shards": 1, "complete": False})
        _finalize(tmp, range(n_batches))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_shard_indices(paths: Sequence[Path], attrs: Sequence[dict]) -> None:
    """Every store is a shard of one ``num_shards``-way capture, and each of ``0..num_shards-1`` is given once."""
    declared = sorted({int(a.get("num_shards", 1)) for a in attrs})
    if len(declared) != 1:
        raise ValueError(f"shards: the stores belong to captures of {declared} shards, not one capture")
    num_shards = declared[0]
    given: dict[int, list[str]] = {}
    for p, a in zip(paths, attrs):
        given.setdefault(int(a.get("shard_index", 0)), []).append(str(p))
    missing = sorted(set(range(num_shards)) - set(given))
    if missing:
        raise ValueError(f"shards: shard(s) {missing} of {num_shards} missing; given shards {sorted(given)}")
    twice = {index: stores for index, stores in given.items() if len(stores) > 1}
    if twice:
        raise ValueError(f"shards: shard given more than once: {twice}")


def activation_norms(ds: xr.Dataset) -> xr.DataArray:
    """Mean over samples of the l2 norm of each cached activation vector: dims (layer, step, branch)."""
    norms = np.sqrt((ds.activations.astype(np.float64) ** 2).sum("feature")).mean("sample")
    return norms.compute().rename("norm")
