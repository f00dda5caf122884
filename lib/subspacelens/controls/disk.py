r"""Disk arithmetic for a capture."""

from __future__ import annotations

import os

import numpy as np


def cache_nbytes(n_samples, n_layers, n_steps, n_branches, d, itemsize=4):
    """Uncompressed size of an activation array: N × layers × steps × branches × d × itemsize bytes."""
    dims = (n_samples, n_layers, n_steps, n_branches, d, itemsize)
    if any(int(x) < 1 for x in dims):
        raise ValueError(f"n_samples: every dimension must be >= 1, got {dims}")
    return int(np.prod([int(x) for x in dims], dtype=np.int64))


def store_nbytes(path) -> int:
    """Bytes on disk of a store (a directory such as a zarr store: the sum of its files' sizes)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total
