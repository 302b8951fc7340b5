#!/usr/bin/env python
"""Per-rank memory of one trial on several workers (issue 16): FSDP at N = 1 vs N = 2, DDP for contrast.

    python benchmarks/parallel_memory.py                      # the table in docs/benchmarks.md
    python benchmarks/parallel_memory.py --json pm.json       # every number to a file
    python benchmarks/parallel_memory.py --arch tiny --steps 2 --seq 32   # a quick check

On the CPU, with gloo processes started by torch.multiprocessing (benchmarks/gpu_step.py's
`--workers` machinery): a transformers model built from its config with random weights (default
`gpt2-30m`, GPT-2 with 8 blocks of width 512 and a vocabulary of 8192: 29.9 M parameters, no
download), wrapped by the strategy before its Adam is built, one engine method (NGDiff, fixed lr)
for `--warmup` + `--steps` steps on random tokens (`--batch` is the global batch, split over the
ranks). Counted on each rank after the steps, in bytes, from the tensors themselves — the local
shards (DTensor.to_local()) under FSDP:

    parameters     every parameter of the model as the rank holds it
    grad buffers   the engine's two flat buffers: g_R (engine.gradient_buffer_bytes()) and the
                   `.grad` buffer (g_F, then d: the engine's _flat_g)
    Adam           exp_avg and exp_avg_sq of every trained parameter

Reported: those per rank, their total, the ratio of the N = 2 total to the N = 1 total of the
same strategy (≈ 0.5 for FSDP, ≈ 1 for DDP, which replicates), and ms/step (the slowest rank's
median; the machine's cores are shared out: N = 1 runs 2 threads, N = 2 one per rank). Not
counted: activations, the unit FSDP all-gathers for compute, and the process itself (Python,
torch), which a GPU's torch.cuda.max_memory_allocated (benchmarks/gpu_step.py) would show.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_step  # (benchmarks/gpu_step.py: models, the spawn machinery, the byte counts)

CONFIGS = (("fsdp", 1), ("fsdp", 2), ("ddp", 1), ("ddp", 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="gpt2-30m", choices=sorted(gpu_step.ARCHS))
    ap.add_argument("--method", default="ngdiff", choices=gpu_step.METHODS)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    for name, n in CONFIGS:
        run_args = gpu_step.parse_args([
            "--cpu", "--arch", args.arch, "--methods", args.method, "--precision", "fp32", "--lr", "1e-4",
            "--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--workers", str(n), "--parallel", name])
        got = gpu_step.run_workers(name, run_args)
        run = got["run"]
        per_rank = [r[args.method] for r in run["per_rank"]]
        rows.append({"parallel": name, "workers": n, "params": run["params"], "threads_per_rank": got["threads_per_rank"],
                     "ms": run["methods"][args.method]["ms"], "per_rank": per_rank})
        print(f"{name} N={n}: {run['methods'][args.method]['ms']:.0f} ms/step, "
              f"{max(r['total_bytes'] for r in per_rank) / 2**20:.1f} MiB/rank", flush=True)
    by = {(r["parallel"], r["workers"]): r for r in rows}
    for r in rows:
        one = by[(r["parallel"], 1)]
        r["ratio_to_n1"] = max(x["total_bytes"] for x in r["per_rank"]) / max(x["total_bytes"] for x in one["per_rank"])
    mib = (lambda b: f"{b / 2**20:.2f}")
    print(f"\n{args.arch}: {rows[0]['params'] / 1e6:.1f} M parameters, fp32, Adam, {args.method}, "
          f"global batch {args.batch} × {args.seq} tokens, gloo on the CPU")
    print("| strategy | workers | rank | parameters MiB | grad buffers MiB (g_R + .grad) | Adam MiB | total MiB "
          "| × N=1 | ms/step | threads/rank |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for k, x in enumerate(r["per_rank"]):
            extra = (f"{r['ratio_to_n1']:.3f} | {r['ms']:.0f} | {r['threads_per_rank']}" if k == 0 else " | | ")
            print(f"| {r['parallel']} | {r['workers']} | {k} | {mib(x['param_bytes'])} | {mib(x['grad_bytes'])} "
                  f"({mib(x['grad_buffer_bytes'])} + {mib(x['grad_bytes'] - x['grad_buffer_bytes'])}) | "
                  f"{mib(x['optim_bytes'])} | {mib(x['total_bytes'])} | {extra} |")
    for name in ("fsdp", "ddp"):
        print(f"{name}: per-rank bytes N=2 / N=1 = {by[(name, 2)]['ratio_to_n1']:.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"arch": args.arch, "method": args.method, "batch": args.batch, "seq": args.seq, "rows": rows},
                      fh, indent=1)


if __name__ == "__main__":
    main()
