"""Token-moments benchmark (``make bench``): streamed per-class second moments against the GEMM floor.

On synthetic fp16 token stores (zarr, chunked by sample as the cache chunks ``tokens``, opened as a cache
opens them: :func:`subspacelens.cache.open_tokens`), at the organism's
width (d = 64, 64 tokens per image) and at PixArt-α's (d = 1152, 1024 tokens per image):

1. Throughput (tokens/s and GB/s of stored fp16) of ``subspacelens.tokens.token_moments`` (4 classes by
   grid quadrant) on a 1-worker ``LocalCluster``, against the in-memory floor: one float64 GEMM ``XᵀX`` of
   tokens already in memory, single-threaded, on the same machine. Target: streamed ≥ 50 % of the floor
   (PASS/FAIL printed). The PixArt-width store is sized from the measured floor to take ≥ ``--seconds``.
2. The same on a 2-worker cluster: the speed-up 2 workers / 1 worker; and the store read alone (no
   arithmetic) on 1 worker, the I/O ceiling. A one-thread stream reads and then multiplies, so it stays
   under ``1 / (1/c + 1)`` of the floor when reading alone runs at ``c`` × the floor (the floor's own
   product and nothing else after the read): at a small width this bound is below the target.
3. Memory: ``token_moments`` in a fresh subprocess (synchronous scheduler) on a store of n and of 2n
   images; peak RSS (``ru_maxrss``) must move by < 10 %.

All figures are printed as ratios measured in this run, with the load average (a busy machine inflates
timings). Usage: ``python benchmarks/bench_tokens.py [--seconds 10] [--organism-mb 256]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"  # one worker = one core; the floor is single-threaded too

import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from subspacelens.cache import open_tokens, token_chunk_samples  # noqa: E402

MIN_FRACTION_OF_FLOOR = 0.5
MAX_RSS_GROWTH = 0.10

MEMORY_WORKER = """
import json, resource, sys, dask
from subspacelens.cache import open_tokens
from subspacelens.tokens import position_labelling, token_moments
dask.config.set(scheduler="synchronous")
tokens = open_tokens(sys.argv[1])
token_moments(tokens, position_labelling(tokens, "quadrants"))
print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_store(path: Path, n_images: int, n_tokens: int, d: int) -> Path:
    """A token store of standard-normal fp16 tokens, chunked by sample like the cache's ``tokens``."""
    per_chunk = token_chunk_samples(50, n_tokens * d * 2)
    values = da.random.default_rng(0).standard_normal((n_images, n_tokens, d), chunks=(per_chunk, n_tokens, d))
    ds = xr.Dataset({"tokens": (("sample", "token", "feature"), values.astype(np.float16))},
                    coords={"sample": np.arange(n_images), "token": np.arange(n_tokens)})
    ds.to_zarr(path, mode="w", zarr_format=2, consolidated=False)
    return path


def gemm_floor(n_tokens: int, d: int) -> float:
    """Tokens per second of one in-memory float64 ``XᵀX`` (best of 3)."""
    X = np.random.default_rng(0).standard_normal((n_tokens, d))
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        X.T @ X
        best = min(best, time.perf_counter() - start)
    return n_tokens / best


def streamed(path: Path, n_workers: int) -> float:
    """Tokens per second of ``token_moments`` (quadrant labels) on an ``n_workers`` local cluster."""
    from subspacelens.cluster import dask_client
    from subspacelens.tokens import position_labelling, token_moments

    tokens = open_tokens(path)
    labels = position_labelling(tokens, "quadrants")
    with dask_client(n_workers=n_workers) as client:
        client.wait_for_workers(n_workers)
        client.run(importlib.import_module, "subspacelens.tokens")  # imports are not throughput
        start = time.perf_counter()
        token_moments(tokens, labels)
        seconds = time.perf_counter() - start
    return tokens.sizes["sample"] * tokens.sizes["token"] / seconds


def read_only(path: Path) -> float:
    """Tokens per second of reading the store alone (zarr chunks decompressed into fp16 arrays, no arithmetic)
    on a 1-worker cluster: the I/O ceiling any streamed statistic stays under."""
    from subspacelens.cluster import dask_client

    data = open_tokens(path).data
    touched = data.map_blocks(lambda block: np.zeros((1,) * block.ndim, dtype=np.uint8),
                              chunks=tuple((1,) * len(c) for c in data.chunks), dtype=np.uint8)
    with dask_client(n_workers=1) as client:
        client.wait_for_workers(1)
        start = time.perf_counter()
        touched.compute()
        seconds = time.perf_counter() - start
    return data.shape[0] * data.shape[1] / seconds


def peak_rss(path: Path) -> float:
    out = subprocess.run([sys.executable, "-c", MEMORY_WORKER, str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="least streamed time at PixArt-α's width")
    parser.add_argument("--organism-mb", type=float, default=256.0, help="size of the organism-width store (MB)")
    parser.add_argument("--memory-images", type=int, default=40, help="n of the memory check (d = 1152)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        widths = {"organism (d=64, 64 tokens/image)": (64, 64), "PixArt-α (d=1152, 1024 tokens/image)": (1152, 1024)}
        for name, (d, per_image) in widths.items():
            floor = gemm_floor(200_000 if d < 256 else 20_000, d)
            n_images = (int(args.organism_mb * 2**20 / (per_image * d * 2)) if d < 256
                        else int(np.ceil(args.seconds * floor / per_image)))
            path = write_store(tmp / f"tokens-{d}.zarr", n_images, per_image, d)
            one, two, ceiling = streamed(path, 1), streamed(path, 2), read_only(path)
            gigabytes = n_images * per_image * d * 2 / 1e9
            ratio = one / floor
            verdict = "PASS" if ratio >= MIN_FRACTION_OF_FLOOR else "FAIL"
            failures += verdict == "FAIL"
            print(f"\n{name}: {n_images} images, {n_images * per_image:,} tokens, {gigabytes:.2f} GB fp16")
            print(f"  in-memory GEMM floor (1 thread): {floor:,.0f} tokens/s")
            print(f"  streamed, 1 worker : {one:,.0f} tokens/s = {one * d * 2 / 1e9:.3f} GB/s "
                  f"({n_images * per_image / one:.1f} s) -> {ratio:.2f} x floor "
                  f"[{verdict}: target >= {MIN_FRACTION_OF_FLOOR:.2f}]")
            print(f"  streamed, 2 workers: {two:,.0f} tokens/s -> {two / one:.2f} x 1 worker")
            bound = 1 / (floor / ceiling + 1)
            print(f"  reading the store alone, 1 worker: {ceiling:,.0f} tokens/s = {ceiling / floor:.2f} x floor "
                  f"(the I/O ceiling; streamed = {one / ceiling:.2f} x of it)")
            print(f"  read, then the floor's own product: at most {bound:.2f} x floor for one thread "
                  f"(streamed = {ratio / bound:.2f} x of that bound)")
            del path
        small = write_store(tmp / "memory-n.zarr", args.memory_images, 1024, 1152)
        large = write_store(tmp / "memory-2n.zarr", 2 * args.memory_images, 1024, 1152)
        rss_small, rss_large = peak_rss(small), peak_rss(large)
        growth = rss_large / rss_small - 1
        verdict = "PASS" if growth < MAX_RSS_GROWTH else "FAIL"
        failures += verdict == "FAIL"
        print(f"\npeak RSS, {args.memory_images} vs {2 * args.memory_images} images at d=1152: {rss_small:.0f} MiB vs "
              f"{rss_large:.0f} MiB -> {growth:+.1%} [{verdict}: target < {MAX_RSS_GROWTH:.0%}]")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
