"""Which Optuna sampler finds the frontier with a third of the grid's trials: TPE, NSGA-II or GP.

On the embedded default, side by side in one run (issue 18's target: ≥ 95 % of the grid's
hypervolume with ≤ ⅓ of its trials), the same target, plane and reference point as the search
part of `benchmarks/sweep_cost.py`:

- the grid: GDiff c ∈ {0, 0.1, …, 1}, NGDiff, LossNorm × lr ∈ {1e-5, 1e-4, 1e-3} × {fixed, AutoLR}
  (78 trials), run once (its trials are deterministic);
- each of `search.sampler: tpe | nsga2 | gp`, for each seed (`search.seed`), with a third as many
  trials over the continuous version of the same space (c ∈ [0, 1], lr log-uniform on
  [1e-5, 1e-3]), two objectives rouge_f ↓ × utility_r ↑;
- hypervolume of each sweep's finished trials on forget ROUGE ↓ × retain ROUGE ↑, reference (1, 0)
  (`analysis.hypervolume.hypervolume_2d`), as a fraction of the grid's; the sweep's wall time
  (launch → results on disk, two trials at a time); how many of its trials (in trial order) it
  took to first reach 95 % of the grid's.

Each sampler as `search.sampler` builds it (pareto.search.make_sampler): TPE and GP start with 10
random points, GP's model without a noise term (deterministic_objective); NSGA-II's first
generation is its population (50), so with 26 trials NSGA-II is seeded random search. A variant
of a sampler adds make_sampler's options to its name: `gp:startup=5` (random start-up trials),
`gp:det` / `gp:nodet` (deterministic_objective on / off), `gp:every` / `gp:cond` (gdiff's c
suggested in every trial, so GP models it / only when gdiff is chosen). Trials are deterministic,
so the fractions repeat from run to run (TPE's and GP's to within the order two concurrent trials
report in); the wall times are the machine's. `--grid-cache FILE` keeps the grid's result (and
its trials) for the next run; `--keep-trials DIR` keeps each search's trials.

    python benchmarks/search_samplers.py [--seeds 0 1 2] [--samplers tpe nsga2 gp gp:nodet gp:startup=5]
        [--grid-cache FILE] [--keep-trials DIR] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_cost import GRID, OPTUNA, ROOT, run  # noqa: E402

sys.path.insert(0, str(ROOT))

REFERENCE, DIRECTIONS = (1.0, 0.0), ("min", "max")


def hv(trials) -> float:
    from analysis.hypervolume import hypervolume_2d

    ok = trials[trials.status == "ok"]
    return hypervolume_2d(ok[["rouge_f", "utility_r"]].to_numpy(), DIRECTIONS, REFERENCE)


def trials_to(trials, target: float) -> int | None:
    """The first n such that the first n trials (by trial id) reach hypervolume `target`."""
    t = trials.sort_values("trial_id")
    return next((i + 1 for i in range(len(t)) if hv(t.iloc[: i + 1]) >= target), None)


def variant(text: str) -> tuple[str, tuple[str, dict]]:
    """`gp:startup=5:det` → ("gp:startup=5:det", ("gp", {"startup_trials": 5, "deterministic": True}))."""
    sampler, *opts = text.split(":")
    if sampler not in ("tpe", "nsga2", "gp"):
        raise argparse.ArgumentTypeError(f"unknown sampler {sampler!r}: tpe, nsga2 or gp")
    options: dict = {}
    for o in opts:
        if o.startswith("startup="):
            options["startup_trials"] = int(o.split("=", 1)[1])
        elif o in ("every", "cond"):
            options["every_param"] = o == "every"
        elif o in ("det", "nodet"):
            options["deterministic"] = o == "det"
        else:
            raise argparse.ArgumentTypeError(f"unknown option {o!r} (startup=N, det, nodet, every, cond)")
    return text, (sampler, options)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="search.seed values, each sampler")
    parser.add_argument("--samplers", nargs="+", default=[variant(s) for s in ("tpe", "nsga2", "gp")], type=variant,
                        help="tpe, nsga2, gp, or a variant of one: gp:startup=5 (random start-up trials), "
                             "gp:det (deterministic_objective), gp:startup=5:det")
    parser.add_argument("--grid-cache", type=Path, help="a JSON file with the grid's result: read when it "
                        "exists, written after the grid runs otherwise (the grid's trials are deterministic)")
    parser.add_argument("--keep-trials", type=Path, help="a folder for each sweep's trials.parquet (<sweep>.parquet)")
    parser.add_argument("--quick", action="store_true", help="10-step trials and one lr in the grid (a smoke run)")
    args = parser.parse_args()
    import ray

    from pareto.models.embedded import EmbeddedConfig, build_embedded_target
    from pareto.search import make_sampler

    build_embedded_target(EmbeddedConfig(), log=lambda s: None)
    steps = 10 if args.quick else 30
    grid_search = GRID if not args.quick else GRID.replace("lr: [1.0e-5, 1.0e-4, 1.0e-3]", "lr: [1.0e-4]")
    out: dict = {"machine": f"{os.cpu_count()} CPUs", "steps_per_trial": steps, "reference": REFERENCE,
                 "plane": "rouge_f (min) x utility_r (max)", "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        cached = json.loads(args.grid_cache.read_text()) if args.grid_cache and args.grid_cache.exists() else None
        if cached and (cached["steps_per_trial"], cached["quick"]) == (steps, args.quick):
            out["grid"] = cached["grid"]
        else:
            grid = run("grid", grid_search, tmp, steps=steps)
            out["grid"] = {"trials": len(grid["trials"]), "seconds": grid["seconds"], "hypervolume": hv(grid["trials"])}
            if args.grid_cache:
                cols = [c for c in ("trial_id", "label", "status", "rouge_f", "utility_r") if c in grid["trials"]]
                args.grid_cache.write_text(json.dumps({"steps_per_trial": steps, "quick": args.quick,
                                                       "grid": out["grid"],
                                                       "trials": grid["trials"][cols].to_dict("records")}))
        n_grid, grid_hv = out["grid"]["trials"], out["grid"]["hypervolume"]
        n = n_grid // 3
        print(json.dumps(out["grid"]), flush=True)
        import pareto.sweep

        for seed in args.seeds:
            for name, (sampler, options) in args.samplers:
                search = OPTUNA.format(n=n).replace("sampler: tpe", f"sampler: {sampler}") \
                    .replace("seed: 0", f"seed: {seed}")
                # a variant's options reach the sampler the sweep builds (the spec names the sampler only)
                pareto.sweep.make_sampler = functools.partial(make_sampler, **options)
                sweep = f"{name.replace(':', '_').replace('=', '')}_s{seed}"
                r = run(sweep, search, tmp, steps=steps)
                if args.keep_trials:
                    args.keep_trials.mkdir(parents=True, exist_ok=True)
                    r["trials"].to_parquet(args.keep_trials / f"{sweep}.parquet")
                h = hv(r["trials"])
                row = {"sampler": name, "seed": seed, "trials": len(r["trials"]), "seconds": r["seconds"],
                       "hypervolume": h, "over_grid": h / grid_hv,
                       "trials_to_95pct": trials_to(r["trials"], 0.95 * grid_hv),
                       "failed": int((r["trials"].status != "ok").sum())}
                out["runs"].append(row)
                print(json.dumps(row), flush=True)
        ray.shutdown()

    summary = {}
    for sampler, _ in args.samplers:
        rows = [r for r in out["runs"] if r["sampler"] == sampler]
        fr = [r["over_grid"] for r in rows]
        summary[sampler] = {"over_grid_mean": statistics.mean(fr), "over_grid_min": min(fr), "over_grid_max": max(fr),
                            "seeds_at_95pct": sum(f >= 0.95 for f in fr), "seeds": len(fr),
                            "seconds_mean": statistics.mean(r["seconds"] for r in rows)}
    out["summary"] = summary
    print(json.dumps(out, indent=1))
    print(f"\n| sweep | trials | hypervolume / grid's (seeds {', '.join(map(str, args.seeds))}) | mean | "
          f"≥ 95 % | wall s (mean) |\n|---|---|---|---|---|---|")
    print(f"| grid | {n_grid} | {grid_hv:.3f} (itself) | 1.000 | — | {out['grid']['seconds']:.0f} |")
    for sampler, s in summary.items():
        per = ", ".join(f"{r['over_grid']:.3f}" for r in out["runs"] if r["sampler"] == sampler)
        print(f"| {sampler} | {n} | {per} | {s['over_grid_mean']:.3f} | {s['seeds_at_95pct']}/{s['seeds']} | "
              f"{s['seconds_mean']:.0f} |")


if __name__ == "__main__":
    main()
