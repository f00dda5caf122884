"""What a lens costs: wall-clock seconds and the peak growth of the process's resident memory.

Memory is sampled from ``/proc/self/statm`` every millisecond by a background thread while the call runs;
the peak minus the resident size before the call is reported. Memory the allocator reuses from earlier
work is not counted, so the figure is a floor on what the call needs, not a bound.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

__all__ = ["Cost", "measure"]

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Cost:
    seconds: float
    peak_mib: float


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


def measure(function, *args, **kwargs):
    """``(function(*args, **kwargs), Cost)``: the result and what computing it took."""
    baseline = _resident_bytes()
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _resident_bytes())
            done.wait(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = function(*args, **kwargs)
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    peak[0] = max(peak[0], _resident_bytes())
    return result, Cost(seconds=seconds, peak_mib=(peak[0] - baseline) / 2**20)
