"""The dask engine: a ``dask.distributed`` client on a local cluster by default, or on any running cluster.

``dask_client(scheduler=None, n_workers=2, threads_per_worker=1)`` is a context manager. Without an
address it starts a :class:`distributed.LocalCluster` of ``n_workers`` processes (each with its own
interpreter, so a worker can hold its own pipeline or GPU) and closes it on exit; with an address
(``"tcp://host:8786"``, e.g. a SLURM/PBS cluster started with ``dask-jobqueue``, see the "Reproduce on
PixArt-α" chapter) it connects to that scheduler and leaves the cluster running. While the client is
open it is dask's default scheduler, so ``.compute()`` on any dask graph (the token moments) runs there.
"""

from __future__ import annotations

import contextlib

import dask
from distributed import Client, LocalCluster

from subspacelens.metrics._checks import as_positive_int

CONNECT_TIMEOUT = "10s"
#: Allocations below this size come from the heap of a local worker, not from fresh memory maps. dask's
#: workers start with ``MALLOC_TRIM_THRESHOLD_`` set (freed memory goes back to the OS at once), which also
#: pins glibc's mmap threshold at 128 KiB, so every chunk-sized array a task allocates is a new mapping whose
#: pages fault in again: a worker read token chunks at half the speed of the process that started it.
WORKER_MMAP_THRESHOLD = 32 * 2**20


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 1):
    """Yield a :class:`distributed.Client`: on ``scheduler`` (an address) or on a fresh local cluster.

    An unreachable address raises ``ValueError`` naming ``scheduler`` (after ``CONNECT_TIMEOUT``).
    The local cluster has no dashboard (no port is opened besides the workers' own).
    """
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler:
            raise ValueError(f"scheduler: expected a dask scheduler address like 'tcp://host:8786', got {scheduler!r}")
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise ValueError(f"scheduler: cannot reach a dask scheduler at {scheduler!r} ({error})") from None
        with client:
            yield client
        return
    as_positive_int("n_workers", n_workers)
    as_positive_int("threads_per_worker", threads_per_worker)
    environ = {"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": str(WORKER_MMAP_THRESHOLD)}
    with dask.config.set(environ), LocalCluster(
        n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        yield client
