"""Capture benchmark (``make bench``): hook overhead and memory that does not grow with the sample count.

1. Throughput: the same organism pipeline generates the same batch with and without ``TraceBlocks``
   (every block, steps [0, 6, 13, 19] of 20, both CFG branches, mean over tokens -- the default capture),
   in interleaved repeats. Overhead = time with hooks / time without - 1, from the fastest repeat of each
   (the least disturbed by other load) and, for reference, the median of the per-pair ratios.
   PASS when the overhead is <= 5 %. The time spent inside the hooks themselves is printed as a share of
   the hooked generation; when identical plain runs differ by > 10 % (a busy machine) the wall-clock
   ratio measures the load, and the verdict uses that share instead (said in the output).
2. Memory: ``run_capture`` in a fresh subprocess at two sample counts; the peak resident set size
   (``ru_maxrss``, which counts torch's allocations too) must not grow with the number of samples:
   PASS when peak(large) - peak(small) <= max(5 % of peak(small), 25 MiB).

Usage: ``python benchmarks/bench_capture.py [--repeats 7] [--prompts 100] [--small-seeds 2 --large-seeds 10]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_OVERHEAD = 0.05

MEMORY_WORKER = """
import json, resource, sys, torch
from subspacelens.capture import CaptureConfig, run_capture
from subspacelens.organism import OrganismConfig, build_pipeline
config = CaptureConfig(**json.loads(sys.argv[1]))
path = run_capture(config, sys.argv[2], pipeline=build_pipeline(OrganismConfig.default()), progress=False)
import xarray
print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "samples": xarray.open_zarr(path, zarr_format=2).sizes["sample"]}))
"""


def throughput(repeats: int, prompts: int) -> dict:
    import torch

    from subspacelens.capture import PixArtAdapter, TraceBlocks
    from subspacelens.organism import OrganismConfig, build_pipeline
    from subspacelens.prompts import load_prompt_set

    pipe = build_pipeline(OrganismConfig.default())
    texts = list(load_prompt_set("v2").samples.drop_duplicates("subject")["prompt"])[:prompts]
    texts = (texts * (prompts // len(texts) + 1))[:prompts]
    kwargs = dict(PixArtAdapter().call_kwargs(pipe, 32, 32), num_inference_steps=20, guidance_scale=4.5,
                  output_type="latent")

    def generate() -> float:
        generators = [torch.Generator().manual_seed(i) for i in range(len(texts))]
        start = time.perf_counter()
        pipe(texts, generator=generators, **kwargs)
        return time.perf_counter() - start

    records = []

    def sink(record) -> None:  # what run_capture does with a record, minus the copy into its buffer
        records.append(record.value.numpy())

    # Time spent inside the hooks themselves: a load-independent cross-check of the wall-clock ratio.
    inside = [0.0]
    make_hook = TraceBlocks._block_hook

    def timed_block_hook(self, layer):
        hook = make_hook(self, layer)

        def timed(*args):
            start = time.perf_counter()
            hook(*args)
            inside[0] += time.perf_counter() - start

        return timed

    TraceBlocks._block_hook = timed_block_hook
    generate()  # warm-up
    plain, hooked, hook_share = [], [], []
    try:
        for _ in range(repeats):
            plain.append(generate())
            inside[0] = 0.0
            with TraceBlocks(pipe, "all", [0, 6, 13, 19], cfg=True, sink=sink):
                hooked.append(generate())
            hook_share.append(inside[0] / hooked[-1])
            records.clear()
    finally:
        TraceBlocks._block_hook = make_hook
    ratios = [h / p for h, p in zip(hooked, plain)]
    return {
        "prompts": prompts,
        "plain_s": plain,
        "hooked_s": hooked,
        "images_per_s_plain": prompts / min(plain),
        "images_per_s_hooked": prompts / min(hooked),
        "overhead_min": min(hooked) / min(plain) - 1,
        "overhead_median_pair": statistics.median(ratios) - 1,
        "hook_share": statistics.median(hook_share),
    }


def memory(small_seeds: int, large_seeds: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seeds in (small_seeds, large_seeds):
            config = {"model": "organism-random-init", "seeds": seeds, "num_inference_steps": 2, "steps": [0, 1],
                      "batch_size": 25}
            result = subprocess.run(
                [sys.executable, "-c", MEMORY_WORKER, json.dumps(config), str(Path(tmp) / f"m{seeds}.zarr")],
                check=True, capture_output=True, text=True,
            )
            out[seeds] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--small-seeds", type=int, default=2)
    parser.add_argument("--large-seeds", type=int, default=10)
    args = parser.parse_args()

    ok = True
    t = throughput(args.repeats, args.prompts)
    # Identical plain runs that differ by more than 10 % mean the machine is busy: the wall-clock ratio
    # then measures the load, not the hooks, and the verdict falls back to the time inside the hooks.
    spread = max(t["plain_s"]) / min(t["plain_s"]) - 1
    noisy = spread > 0.10
    overhead = t["hook_share"] if noisy else t["overhead_min"]
    verdict = "PASS" if overhead <= MAX_OVERHEAD else "FAIL"
    ok &= verdict == "PASS"
    print(f"capture throughput, organism, {t['prompts']} prompts x 20 steps, CFG on, {args.repeats} interleaved repeats")
    print(f"  without hooks: {', '.join(f'{s:.2f}' for s in t['plain_s'])} s  ({t['images_per_s_plain']:.2f} images/s)")
    print(f"  with hooks:    {', '.join(f'{s:.2f}' for s in t['hooked_s'])} s  ({t['images_per_s_hooked']:.2f} images/s)")
    print(f"  hook overhead: {100 * t['overhead_min']:+.1f} % (fastest runs), "
          f"{100 * t['overhead_median_pair']:+.1f} % (median of pairs)")
    print(f"  time inside the hooks: {100 * t['hook_share']:.2f} % of a hooked generation (load-independent)")
    basis = f"time inside hooks (wall clock too noisy: identical runs differ by {100 * spread:.0f} %)" if noisy else "wall clock"
    print(f"  verdict on {basis}: {100 * overhead:.1f} %, limit {100 * MAX_OVERHEAD:.0f} %  {verdict}")

    m = memory(args.small_seeds, args.large_seeds)
    (s_small, small), (s_large, large) = sorted(m.items())
    growth = large["peak_rss_mib"] - small["peak_rss_mib"]
    allowed = max(0.05 * small["peak_rss_mib"], 25.0)
    verdict = "PASS" if growth <= allowed else "FAIL"
    ok &= verdict == "PASS"
    print("capture peak memory (peak RSS of a fresh process, run_capture, batch 25)")
    print(f"  {small['samples']:4d} samples: {small['peak_rss_mib']:.0f} MiB")
    print(f"  {large['samples']:4d} samples: {large['peak_rss_mib']:.0f} MiB")
    print(f"  growth: {growth:+.1f} MiB for {large['samples'] / small['samples']:.0f}x the samples; "
          f"limit {allowed:.0f} MiB  {verdict}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
