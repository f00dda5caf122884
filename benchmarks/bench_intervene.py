"""Intervention benchmark (``make bench``): the cost of an edited generation against a plain one.

The organism generates the same batch plainly and under ``EditBlocks`` with a rank-16 mean ablation
(``project_out`` with a centre) at every block and every step, both CFG branches, in interleaved repeats.
Overhead = edited / plain − 1 from the fastest repeat of each (the least disturbed by other load) and the
median of the per-pair ratios. The time spent inside the edit hooks is also printed as a share of an
edited generation: a load-independent cross-check. PASS when the overhead is ≤ 10 % (on the wall clock,
or on the time inside the hooks when identical plain runs differ by more than 10 %: a busy machine).

Usage: ``python benchmarks/bench_intervene.py [--repeats 5] [--prompts 100] [--rank 16]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

MAX_OVERHEAD = 0.10


def throughput(repeats: int, prompts: int, rank: int) -> dict:
    import numpy as np
    import torch

    from subspacelens.capture import PixArtAdapter
    from subspacelens.intervene import EditBlocks, as_edit, project_out, random_basis
    from subspacelens.intervene import hooks as edit_hooks
    from subspacelens.organism import OrganismConfig, build_pipeline
    from subspacelens.prompts import load_prompt_set

    torch.set_num_threads(1)
    pipe = build_pipeline(OrganismConfig.default())
    d = PixArtAdapter().hidden_size(pipe)
    n_blocks = len(PixArtAdapter().blocks(pipe))
    texts = list(load_prompt_set("v2").samples.drop_duplicates("subject")["prompt"])
    texts = (texts * (prompts // len(texts) + 1))[:prompts]
    kwargs = dict(PixArtAdapter().call_kwargs(pipe, 32, 32), num_inference_steps=20, guidance_scale=4.5,
                  output_type="latent")
    centre = np.random.default_rng(0).standard_normal(d)
    edits = {i: as_edit(project_out, basis=random_basis(d, rank, seed=i), center=centre) for i in range(n_blocks)}

    def generate() -> float:
        generators = [torch.Generator().manual_seed(i) for i in range(len(texts))]
        start = time.perf_counter()
        pipe(texts, generator=generators, **kwargs)
        return time.perf_counter() - start

    inside = [0.0]
    make_hook = edit_hooks.EditBlocks._block_hook

    def timed_block_hook(self, layer):
        hook = make_hook(self, layer)

        def timed(*args):
            start = time.perf_counter()
            out = hook(*args)
            inside[0] += time.perf_counter() - start
            return out

        return timed

    edit_hooks.EditBlocks._block_hook = timed_block_hook
    generate()  # warm-up
    plain, edited, share = [], [], []
    try:
        for _ in range(repeats):
            plain.append(generate())
            inside[0] = 0.0
            with EditBlocks(pipe, edits):
                edited.append(generate())
            share.append(inside[0] / edited[-1])
    finally:
        edit_hooks.EditBlocks._block_hook = make_hook
    return {"plain_s": plain, "edited_s": edited, "blocks": n_blocks, "d": d,
            "ratio_min": min(edited) / min(plain),
            "ratio_median_pair": statistics.median(e / p for e, p in zip(edited, plain)),
            "hook_share": statistics.median(share)}


def main() -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()
    t = throughput(args.repeats, args.prompts, args.rank)
    spread = max(t["plain_s"]) / min(t["plain_s"]) - 1
    noisy = spread > 0.10
    overhead = t["hook_share"] if noisy else t["ratio_min"] - 1
    verdict = "PASS" if overhead <= MAX_OVERHEAD else "FAIL"
    print(f"edited generation, organism ({t['blocks']} blocks, d = {t['d']}), {args.prompts} prompts x 20 steps, "
          f"CFG on; rank-{args.rank} mean ablation at every block; {args.repeats} interleaved repeats; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  plain:  {', '.join(f'{s:.2f}' for s in t['plain_s'])} s")
    print(f"  edited: {', '.join(f'{s:.2f}' for s in t['edited_s'])} s")
    print(f"  edited / plain: {t['ratio_min']:.3f} (fastest runs), {t['ratio_median_pair']:.3f} (median of pairs)")
    print(f"  time inside the edit hooks: {100 * t['hook_share']:.2f} % of an edited generation")
    basis = f"time inside hooks (identical plain runs differ by {100 * spread:.0f} %)" if noisy else "wall clock"
    print(f"  verdict on {basis}: overhead {100 * overhead:.1f} %, limit {100 * MAX_OVERHEAD:.0f} %  {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
