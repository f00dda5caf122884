"""Capture shards on a dask cluster: one task per shard, each worker holding its own pipeline, then merged.

``capture_on_cluster(config, out, client, num_shards=...)`` submits shard i of n as one task
(``run_capture`` with ``shard_index=i``) writing ``<out>.shard<i>of<n>.zarr``; when every shard is done
the stores are merged with :func:`subspacelens.cache.merge_shards` into ``out`` (the store one run would
have written) and the shard stores removed. A failed run is resumed by calling it again: each shard
resumes from its own progress markers. On GPUs start one worker per device with a resource
(``dask worker ... --resources GPU=1``) and pass ``resources={"GPU": 1}``, so no two shards share a device.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from subspacelens.cache import cache_status, merge_shards
from subspacelens.capture.run import CaptureConfig, run_capture, validate
from subspacelens.metrics._checks import as_positive_int
from subspacelens.paths import resolve


def shard_paths(out: Path, num_shards: int) -> list[Path]:
    """Where shard i of ``num_shards`` is written, next to ``out``."""
    return [out.with_name(f"{out.stem}.shard{i}of{num_shards}{out.suffix}") for i in range(num_shards)]


def capture_shard(config: CaptureConfig, out: str, load: Callable[[], Any] | None = None) -> str:
    """One shard's task on a worker: build the pipeline there (``load()``, else from ``config.model``), capture."""
    return str(run_capture(config, out, pipeline=load() if load is not None else None, progress=False))


def capture_on_cluster(
    config: CaptureConfig,
    out: str | os.PathLike,
    client: Any,
    *,
    num_shards: int,
    load: Callable[[], Any] | None = None,
    resources: dict | None = None,
) -> Path:
    """Capture ``config`` into ``out`` as ``num_shards`` tasks on the dask ``client``'s cluster, then merge.

    ``load``: a picklable callable that builds the pipeline on a worker (default: load ``config.model``).
    Parameters are validated before anything is submitted; a complete ``out`` is returned at once.
    """
    out = resolve(out)
    num_shards = as_positive_int("num_shards", num_shards)
    shard_configs = [config.with_(shard_index=i, num_shards=num_shards) for i in range(num_shards)]
    validate(shard_configs[0])
    status = cache_status(out)
    if status["exists"]:
        if status["complete"] and status["num_shards"] == 1:
            return out
        raise FileExistsError(f"out: {out} exists but is not a complete capture; remove it or choose another `out`")
    paths = shard_paths(out, num_shards)
    futures = [
        client.submit(capture_shard, shard, str(path), load, key=f"capture-{path.name}", pure=False, resources=resources)
        for shard, path in zip(shard_configs, paths)
    ]
    client.gather(futures)
    merge_shards(paths, out)
    for path in paths:
        shutil.rmtree(path)
    return out
