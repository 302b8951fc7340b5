"""What a sweep costs beyond its trials, how two trials share two cores, and what Optuna saves.

On the embedded default, all in one run (this machine is noisy: the ratios are what count):

1. Orchestration overhead per trial: a sweep of N trials run one at a time; the time from the
   first trial's launch to the results on disk, minus the trials' own wall time, divided by N
   (Ray actor start-up, the target's load into a fresh process, Tune's bookkeeping, the
   callback, the per-trial Parquet parts and the final tables). Target ≤ 2 s.
2. Concurrency: the same N trials with max_concurrent 1 and 2 (cpus_per_trial 1, one torch
   thread each); throughput ratio, for the 30-step trials and for trials 8× longer (a second
   worker's start-up — importing torch — is paid once per sweep, not per trial). Target ≥ 1.7×
   on 2 cores.
3. Search: a grid over GDiff c ∈ {0, 0.1, …, 1}, NGDiff, LossNorm × lr ∈ {1e-5, 1e-4, 1e-3} ×
   {fixed, AutoLR} (78 trials), against Optuna's multi-objective TPE with a third as many trials
   over the continuous version of the same space (c ∈ [0, 1], lr log-uniform on [1e-5, 1e-3]);
   hypervolume on forget ROUGE ↓ × retain ROUGE ↑ with the reference point (1, 0), each relative
   to the grid's. Target ≥ 95 % with ≤ ⅓ of the trials.

    python benchmarks/sweep_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = """name: {name}
unlearn: {{steps: {steps}, batch_size: 8, threads: 1}}
eval: {{metrics: [loss_f_eval, loss_r_eval, rouge_f, utility_r], max_new_tokens: 24, retain_items: 40}}
resources: {{cpus_per_trial: 1, max_concurrent: {concurrent}}}
search:
  baseline: false
{search}
"""
FIXED = """  space:
    combiner: [{gdiff: {c: [0.2, 0.5, 0.8]}}, ngdiff, lossnorm, rlw]
    lr: [1.0e-4]
    lr_rule: [fixed]"""
GRID = """  algorithm: grid
  space:
    combiner: [{gdiff: {c: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]}}, ngdiff, lossnorm]
    lr: [1.0e-5, 1.0e-4, 1.0e-3]
    lr_rule: [fixed, autolr]"""
OPTUNA = """  algorithm: optuna
  sampler: tpe
  seed: 0
  num_samples: {n}
  objectives: [rouge_f, utility_r]
  space:
    combiner: [{{gdiff: {{c: {{uniform: [0.0, 1.0]}}}}}}, ngdiff, lossnorm]
    lr: {{loguniform: [1.0e-5, 1.0e-3]}}
    lr_rule: [fixed, autolr]"""


def run(name: str, search: str, storage: Path, *, steps: int = 30, concurrent: int = 2) -> dict:
    """Run one sweep in this process; its trials, and the time from launch to results on disk."""
    import pandas as pd

    from pareto.spec import parse_spec
    from pareto.sweep import run_sweep

    spec, points = parse_spec(BASE.format(name=name, steps=steps, concurrent=concurrent, search=search))
    marks = {}

    def log(line: str) -> None:
        if line.startswith("running "):
            marks["launch"] = time.perf_counter()

    run_sweep(spec, points, storage=str(storage), log=log)
    end = time.perf_counter()
    trials = pd.read_parquet(storage / name / "trials.parquet")
    return {"trials": trials, "seconds": end - marks["launch"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer steps and a smaller search (a smoke run)")
    args = parser.parse_args()
    import ray

    from analysis.hypervolume import hypervolume_2d
    from pareto.models.embedded import EmbeddedConfig, build_embedded_target

    build_embedded_target(EmbeddedConfig(), log=lambda s: None)
    steps = 10 if args.quick else 30
    out: dict = {"machine": f"{os.cpu_count()} CPUs", "steps_per_trial": steps}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        run("warmup", FIXED.replace("[{gdiff: {c: [0.2, 0.5, 0.8]}}, ngdiff, lossnorm, rlw]", "[ngdiff]"), tmp,
            steps=2, concurrent=1)

        serial = run("serial", FIXED, tmp, steps=steps, concurrent=1)
        n = len(serial["trials"])
        inside = float(serial["trials"].wall_s.sum())
        out["overhead_s_per_trial"] = (serial["seconds"] - inside) / n
        out["serial"] = {"trials": n, "seconds": serial["seconds"], "trial_wall_s_sum": inside}
        parallel = run("parallel", FIXED, tmp, steps=steps, concurrent=2)
        out["parallel"] = {"trials": n, "seconds": parallel["seconds"]}
        out["concurrency_speedup"] = serial["seconds"] / parallel["seconds"]
        # the same with trials long enough that a worker's start-up (importing torch) is amortised
        long_steps = steps * 8
        serial_long = run("serial_long", FIXED, tmp, steps=long_steps, concurrent=1)
        parallel_long = run("parallel_long", FIXED, tmp, steps=long_steps, concurrent=2)
        out["long"] = {"steps_per_trial": long_steps, "serial_seconds": serial_long["seconds"],
                       "parallel_seconds": parallel_long["seconds"],
                       "trial_wall_s_mean": float(serial_long["trials"].wall_s.mean()),
                       "concurrency_speedup": serial_long["seconds"] / parallel_long["seconds"]}
        print(json.dumps({k: v for k, v in out.items()}, indent=1), flush=True)

        grid_search = GRID if not args.quick else GRID.replace("lr: [1.0e-5, 1.0e-4, 1.0e-3]", "lr: [1.0e-4]")
        grid = run("grid", grid_search, tmp, steps=steps)
        n_grid = len(grid["trials"])
        n_opt = n_grid // 3
        opt = run("optuna", OPTUNA.format(n=n_opt), tmp, steps=steps)
        ref, dirs = (1.0, 0.0), ("min", "max")

        def hv(trials):
            ok = trials[trials.status == "ok"]
            return hypervolume_2d(ok[["rouge_f", "utility_r"]].to_numpy(), dirs, ref)

        out["search"] = {"grid_trials": n_grid, "grid_seconds": grid["seconds"], "grid_hypervolume": hv(grid["trials"]),
                         "optuna_trials": len(opt["trials"]), "optuna_seconds": opt["seconds"],
                         "optuna_hypervolume": hv(opt["trials"])}
        out["search"]["optuna_over_grid"] = out["search"]["optuna_hypervolume"] / out["search"]["grid_hypervolume"]
        # how far along its trials Optuna first reached 95 % of the grid's hypervolume
        t = opt["trials"].sort_values("trial_id")
        reached = next((i + 1 for i in range(len(t)) if hv(t.iloc[: i + 1]) >= 0.95 * out["search"]["grid_hypervolume"]),
                       None)
        out["search"]["optuna_trials_to_95pct"] = reached
        ray.shutdown()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
