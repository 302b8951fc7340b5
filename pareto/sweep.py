"""Run a sweep on Ray Tune and write its results to Parquet.

The driver builds (or reuses) the target once, fans the grid out as Ray Tune trials of
`trainables.unlearn.trainable`, collects every reported row through a Tune callback (so it
works the same on a laptop and on a cluster), and writes trials.parquet and steps.parquet
atomically under <storage.root>/<name>/<run id>/.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import ray
from ray import tune

import pareto
from pareto.prepare import prepare_target
from pareto.results.schema import METRICS
from pareto.results.writer import write_results
from pareto.spec import SweepSpec, trial_label


def versions() -> dict:
    import torch
    import transformers

    return {"pareto_version": pareto.__version__, "torch_version": torch.__version__,
            "transformers_version": transformers.__version__, "ray_version": ray.__version__}


def _trial_row(spec: SweepSpec, point: dict, trial_id: str, run_id: str, final: dict, meta: dict) -> dict:
    def comp(key):
        c = point.get(key)
        return (c["name"], json.dumps(c["params"], sort_keys=True)) if c else ("none", "{}")

    (cn, cp), (on, op), (ln, lp) = comp("combiner"), comp("objective"), comp("lr_rule")
    return {
        "trial_id": trial_id, "label": trial_label(point), "sweep": spec.name, "run_id": run_id,
        "status": final.get("status", "failed"), "error": final.get("error"),
        "diverged_step": final.get("diverged_step"),
        "combiner": "no-unlearn" if point.get("baseline") else cn, "combiner_params": cp,
        "objective": on, "objective_params": op, "lr_rule": ln, "lr_rule_params": lp,
        "lr": point.get("lr"), "final_lr": final.get("final_lr"), "seed": point.get("seed"),
        "steps": final.get("steps_done", 0), "optimizer": spec.unlearn.optimizer,
        "batch_size": spec.unlearn.batch_size,
        **{k: final.get(k) for k in (*METRICS, "metric_settings", "wall_s", "grad_buffer_bytes", "device", "dtype")},
        **meta,
    }


def run_sweep(spec: SweepSpec, points: list[dict], *, address: str | None = None,
              results_root: str | None = None, log: Callable[[str], None] = print) -> Path:
    from trainables.unlearn import trainable

    t0 = time.time()
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + spec.hash()[:8]
    out_dir = Path(results_root or spec.storage.root) / spec.name / run_id
    out_dir.mkdir(parents=True, exist_ok=False)  # fail early on an unwritable root

    prepared = prepare_target(spec, log)
    target_dir, manifest = prepared.target_dir, prepared.manifest
    log(f"target: {target_dir} ({manifest.get('n_params', 0):,} parameters, answer accuracy "
        f"{manifest.get('answer_accuracy', float('nan')):.3f}, {manifest.get('n_forget')} forget / "
        f"{manifest.get('n_retain')} retain QA pairs)")
    setup = {"spec": spec.to_dict(), "target_dir": str(target_dir), "eval_splits": prepared.eval_splits,
             "reference": prepared.reference}
    meta = {"spec_hash": spec.hash(), "spec": json.dumps(spec.to_dict(), sort_keys=True),
            "data_hash": manifest["data_hash"], "target_hash": manifest["hash"],
            "add_bos": True, "prompt_template": "plain", **versions()}
    indexed = [{**p, "index": i} for i, p in enumerate(points)]

    collector = _Collector(log, len(points))
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # pareto prints its own progress lines
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # rows reach the driver via _Collector
    if not ray.is_initialized():
        if address:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, logging_level="ERROR",
                     log_to_driver=False)
    resources = {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial}
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, setup=setup), resources),
        param_space={"point": tune.grid_search(indexed)},
        tune_config=tune.TuneConfig(max_concurrent_trials=spec.resources.max_concurrent or 0),
        run_config=tune.RunConfig(name=f"{spec.name}-{run_id}", storage_path=str((out_dir / "ray").resolve()),
                                  callbacks=[collector], verbose=0),
    )
    log(f"running {len(points)} trials on Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs)")
    tuner.fit()

    trials, steps, items = [], [], []
    for point in indexed:
        tid = f"t{point['index']:03d}"
        rows = collector.rows.get(point["index"], [])
        final = next((r for r in rows if r.get("kind") == "final"),
                     {"status": "failed", "error": collector.errors.get(point["index"], "trial reported no result")})
        trials.append(_trial_row(spec, point, tid, run_id, final, meta))
        steps += [{**r, "trial_id": tid} for r in rows if r.get("kind") == "step"]
        items += [{**item, "trial_id": tid} for item in final.get("items") or []]
    write_results(out_dir, trials, steps, items)
    log(f"{len(trials)} trials in {time.time() - t0:.0f}s → {out_dir}")
    return out_dir


class _Collector(tune.Callback):
    """Every row each trial reports, gathered in the driver and keyed by grid index."""

    def __init__(self, log: Callable[[str], None], total: int) -> None:
        self.rows: dict[int, list[dict]] = {}
        self.errors: dict[int, str] = {}
        self.log, self.total, self.done = log, total, 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        point = trial.config["point"]
        self.rows.setdefault(point["index"], []).append(dict(result))
        if result.get("kind") == "final":
            self.done += 1
            metrics = "  ".join(f"{k} {result[k]:.3f}" for k in ("rouge_f", "utility_r") if k in result)
            self.log(f"[{self.done}/{self.total}] t{point['index']:03d} {trial_label(point)}: "
                     f"{result.get('status')}  {metrics}")

    def on_trial_error(self, iteration, trials, trial, **info):
        point = trial.config["point"]
        self.errors[point["index"]] = _error_text(trial)
        self.done += 1
        self.log(f"[{self.done}/{self.total}] t{point['index']:03d} {trial_label(point)}: failed: {self.errors[point['index']]}")


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    if path and Path(path).is_file():
        lines = [ln for ln in Path(path).read_text().strip().splitlines() if ln.strip()]
        return lines[-1] if lines else "trial raised an error"
    return "trial raised an error"
