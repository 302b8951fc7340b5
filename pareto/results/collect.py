"""The collector beside the results writer: every row each Ray Tune trial reports reaches the driver
through `Collector` (a Tune callback), and each finished trial is written at once as its own part,
`<storage>/<name>/parts/<trial id>/`, with the progress line (and the running front) printed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
import time
from typing import TYPE_CHECKING

from ray import tune

from pareto.results.schema import METRICS
from pareto.results.store import StorageError
from pareto.results.writer import part_tables, write_tables
from pareto.spec import SweepSpec, trial_label

if TYPE_CHECKING:
    from pareto.results.state import Sweep
    from pareto.sweep import Log


class Collector(tune.Callback):
    """Every row each trial reports, gathered in the driver; a finished trial is written at once."""

    def __init__(self, sweep: Sweep, spec: SweepSpec, meta: dict, log: Log, total: int) -> None:
        self.sweep, self.spec, self.meta, self.log, self.total = sweep, spec, meta, log, total
        self.live: dict[int, dict] = {}  # index → {"point", "steps": {step: row}, "evals": {...}, ...}
        self.indices: set[int] = set()
        self.done = self.failed = 0
        self.held: dict = {}  # trial id → the tables of the part this run wrote (pareto.results.writer.consolidate)
        self.t0 = time.time()
        # the plane whose running front the progress line shows: the optuna objectives, else a default plane
        from pareto.sources import source_of

        asked = spec.eval.metrics
        planes = [tuple(spec.search.objectives[:2])] if len(spec.search.objectives) >= 2 else []
        own = source_of(spec.data.source).planes  # the loss plane first, then the source's own metrics
        planes += [p for p in (*own[1:], *own[:1]) if len(p) == 2 and all(m in asked for m in p)]
        self.plane = next((p for p in planes if all(METRICS[m] in ("min", "max") for m in p)), None)
        self.points: dict[str, tuple] = self._earlier_points()  # --resume: the front counts earlier runs' trials
        self.storage_error: StorageError | None = None

    def _plane_values(self, row: dict) -> tuple | None:
        """A finished trial's values on the progress plane; None unless it counts for the front."""
        import math

        values = tuple(row.get(m) for m in self.plane)
        if row.get("status") in ("ok", "stopped") and all(isinstance(v, float) and math.isfinite(v) for v in values):
            return values
        return None

    def _earlier_points(self) -> dict[str, tuple]:
        """The plane's values of the trials that earlier runs of this sweep finished (their parts)."""
        if self.plane is None:
            return {}
        out = {}
        for tid, status in self.sweep.finished_parts().items():
            if status not in ("ok", "stopped"):
                continue
            row = self.sweep.store.read_table(f"{self.sweep.part(tid)}/trials.parquet").to_pylist()[0]
            values = self._plane_values(row)
            if values is not None:
                out[tid] = values
        return out

    @staticmethod
    def _running(trials, trial) -> int:
        """How many other trials Tune is running now (its trials list holds each one's status)."""
        from ray.tune.experiment import Trial

        return sum(1 for t in trials or () if t is not trial and t.status == Trial.RUNNING)

    def _state(self, trial) -> dict:
        point = trial.config["point"]
        self.indices.add(point["index"])
        return self.live.setdefault(point["index"], {"point": point, "steps": {}, "evals": {}, "items": {},
                                                     "attempts": 1, "last": {}})

    def on_trial_recover(self, iteration, trials, trial, **info):
        # counted here, not in on_trial_start: a worker that dies before Tune sees it start is a failure too
        self._state(trial)["attempts"] += 1
        # Tune registers a checkpoint only after the result that carries it reaches the driver: a worker
        # killed in between has its checkpoint on disk but not registered, and Tune restarts the trial.
        saved = trial.latest_checkpoint_result if self.spec.storage.checkpoints == "last" else None
        if saved is not None:
            again = f"its last checkpoint (step {saved.metrics.get('eval_step', '?')})"
        elif self.spec.storage.checkpoints == "last":
            again = "the start (it had no checkpoint yet)"
        else:
            again = "the start"
        self.log(f"       t{trial.config['point']['index']:03d} failed ({_error_text(trial)}); retrying from {again}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        st = self._state(trial)
        for row in result.get("step_rows") or []:  # keyed by step: a retried trial overwrites, never duplicates
            st["steps"][row["step"]] = row
        if result.get("evaluated"):
            st["evals"][result["eval_step"]] = {k: result.get(k) for k in (*METRICS, "wall_s")}
            st["items"][result["eval_step"]] = result.get("items") or []
            if not result.get("final"):  # an evaluation on the way (eval.every): where a long trial is
                shown = "  ".join(f"{k} {result[k]:.3f}" for k in self.spec.eval.metrics[:4]
                                  if isinstance(result.get(k), float))
                self.log(f"       t{st['point']['index']:03d} at step {result['eval_step']}: {shown}")
        st["last"] = dict(result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        st = self._state(trial)
        final = st["last"]
        if not final.get("final"):  # stopped by the scheduler after an evaluation
            final = {**final, "status": "stopped", "steps_done": final.get("eval_step", 0)}
        self._finish(trial, final, self._running(trials, trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        self._finish(trial, {"status": "failed", "error": _error_text(trial), "node_id": self._state(trial)["last"].get("node_id")},
                     self._running(trials, trial))

    def _finish(self, trial, final: dict, running: int = 0) -> None:
        st = self._state(trial)
        index = st["point"]["index"]
        tid = f"t{index:03d}"
        rows = {
            "steps": [{**r, "trial_id": tid} for _, r in sorted(st["steps"].items())],
            "evals": [{**r, "eval_step": s, "trial_id": tid} for s, r in sorted(st["evals"].items())],
            "items": [{**it, "trial_id": tid, "eval_step": s} for s, its in sorted(st["items"].items()) for it in its],
            "trials": [_trial_row(self.spec, st["point"], tid, final, {**self.meta, "attempts": st["attempts"]})],
        }
        tables = part_tables(rows)
        try:
            write_tables(self.sweep.store, self.sweep.part(tid), tables)
        except StorageError as exc:  # every file is whole or absent; the sweep stops (StopOnStorageError)
            self.log(f"       could not write {tid}: {exc}")
            self.storage_error = self.storage_error or exc
            return
        self.held[tid] = tables  # the sweep's top tables are made from these, not from the files again
        self.done += 1
        self._progress(tid, st["point"], final, running)

    def _progress(self, tid: str, point: dict, final: dict, running: int = 0) -> None:
        metrics = "  ".join(f"{k} {final[k]:.3f}" for k in ("rouge_f", "utility_r", "verbmem_f", "knowmem_r",
                                                               "forget_acc", "retain_acc")
                            if isinstance(final.get(k), float))
        elapsed = time.time() - self.t0
        left = max(self.total - self.done, 0)
        eta = f"ETA {elapsed / self.done * left:.0f}s" if self.done and left else "last one"
        why = f"  ({final.get('error')})" if final.get("status") in ("failed", "diverged") else ""
        self.log(f"[{self.done}/{self.total} done, {running} running, {self.failed} failed, {eta}] {tid} "
                 f"{trial_label(point)}: {final.get('status')}  {metrics}{why}" + self._front(tid, final))

    def _front(self, tid: str, final: dict) -> str:
        """The non-dominated trials so far on the progress plane (Definition 1), earlier runs' included."""
        if self.plane is None:
            return ""
        values = self._plane_values(final)
        if values is not None:
            self.points[tid] = values
        if not self.points:
            return ""
        import numpy as np

        from analysis.dominance import non_dominated_mask

        ids = sorted(self.points)
        mask = non_dominated_mask(np.array([self.points[i] for i in ids]), [METRICS[m] for m in self.plane])
        front = [i for i, keep in zip(ids, mask) if keep]
        shown = " ".join(front[:8]) + (" …" if len(front) > 8 else "")
        return f"  | front on {self.plane[0]}×{self.plane[1]}: {shown}"


def with_departures(settings: str | None, data: dict) -> str | None:
    """`metric_settings` (JSON) with the departures from the reference tools that the spec's data
    section (`data`) makes, added to each metric's own list ("departures"; pareto.sources
    DataSource.departures)."""
    from pareto.sources import source_of

    extra = source_of(data).departures(data)
    if not settings or not extra:
        return settings
    values = json.loads(settings)
    for name, notes in extra.items():
        if isinstance(values.get(name), dict):
            values[name]["departures"] = [*notes, *values[name].get("departures", [])]
    return json.dumps(values, sort_keys=True)


def _trial_row(spec: SweepSpec, point: dict, trial_id: str, final: dict, meta: dict) -> dict:
    def comp(key):
        c = point.get(key)
        return (c["name"], json.dumps(c["params"], sort_keys=True)) if c else ("none", "{}")

    (cn, cp), (on, op), (ln, lp) = comp("combiner"), comp("objective"), comp("lr_rule")
    ok = final.get("status") in ("ok", "stopped")
    return {
        "trial_id": trial_id, "label": trial_label(point), "sweep": spec.name,
        "status": final.get("status", "failed"), "error": final.get("error"),
        "diverged_step": final.get("diverged_step"),
        "combiner": "no-unlearn" if point.get("baseline") else cn, "combiner_params": cp,
        "objective": on, "objective_params": op, "lr_rule": ln, "lr_rule_params": lp,
        "lr": point.get("lr"), "final_lr": final.get("final_lr"), "seed": point.get("seed"),
        "steps": final.get("steps_done", 0), "optimizer": spec.unlearn.optimizer,
        "batch_size": spec.unlearn.batch_size,
        **{k: final.get(k) if ok else None for k in METRICS},
        **{k: final.get(k) for k in ("wall_s", "cpu_s", "gpu_s", "grad_buffer_bytes", "gpu_peak_bytes",
                                     "first_step_changed_frac", "workers", "parallel", "device", "dtype", "node_id",
                                     "resumed_from_step")},
        **meta,
        "metric_settings": with_departures(final.get("metric_settings"), asdict(spec.data)),
    }


def _error_text(trial) -> str:
    from pathlib import Path

    path = getattr(trial, "error_file", None)
    if path and Path(path).is_file():
        lines = [ln for ln in Path(path).read_text().strip().splitlines() if ln.strip()]
        return lines[-1] if lines else "trial raised an error"
    return "trial raised an error"
