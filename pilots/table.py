"""Print one markdown row per pilot run (pilots/runs/*.json), for pilots/RESULTS.md."""

import json
import sys
from pathlib import Path

RUNS = Path(__file__).resolve().parent / "runs"
names = sys.argv[1:] or sorted(p.stem for p in RUNS.glob("*.json"))
print("| run | config | steps | train CPU-min | subj / cat CFG 4.5 | subj / cat CFG 1.0 | diff. classifier subj / cat | snapshots (CFG 4.5 subj/cat) |")
print("|---|---|---|---|---|---|---|---|")
for name in names:
    r = json.loads((RUNS / f"{name}.json").read_text())
    a, o, t = r["args"], r["organism_config"], r["train_config"]
    cfg = (f"{o['num_layers']} blk, w{o['num_attention_heads'] * o['attention_head_dim']}, p{o['patch_size']}, "
           f"bs {t['batch_size']}, lr {t['lr']:g}, wu {t['warmup_steps']}, EMA {t['ema_decay']}, "
           f"t~{t['timestep_sampling']}" + (f"({t['logit_mean']},{t['logit_std']})" if t['timestep_sampling'] != 'uniform' else "")
           + (f", {t['prediction']}" if t.get('prediction', 'epsilon') != 'epsilon' else "") + f", snr {t['snr_gamma']}" + (f", floor {t['snr_floor']}" if t.get('snr_floor') else "") + f", p_unc {t['p_uncond']}")
    s = r["samples"]
    f = lambda d: f"{100 * d['subject']:.1f} / {100 * d['category']:.1f}"  # noqa: E731
    snaps = "; ".join(f"{x['step']}: {100 * x['subject']:.0f}/{100 * x['category']:.0f}" for x in r["snapshots"])
    print(f"| {name} | {cfg} | {t['steps']} | {r['cpu_seconds']['transformer'] / 60:.1f} | {f(s['cfg4.5'])} | "
          f"{f(s['cfg1.0'])} | {f(r['diffusion_classifier'])} | {snaps} |")
