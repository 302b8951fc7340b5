"""`pareto sweep` with `resources.workers_per_trial: 2` and `unlearn.parallel: fsdp` on the embedded
default, on a real local Ray (Ray Train starts 2 gloo CPU workers per trial): it completes on a
2-CPU machine, its results read like any other sweep's and equal the one-process sweep's, and a
worker SIGKILLed mid-trial loses nothing (Ray Train restarts the workers from the checkpoint).

SGD: under Adam a gradient entry that is rounding noise (GPT-2's attention key bias, whose true
gradient is 0) still moves by ±lr, in directions the noise decides, so Adam runs on 1 and 2
workers drift apart by ~1e-5 over a few steps (tests/test_parallel_trial.py bounds that case)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from _helpers import Driver, pareto, pareto_in_one_process, tagged

SPEC = """name: {name}
unlearn: {{steps: {steps}, batch_size: 4, optimizer: sgd{parallel}}}
eval: {{every: {every}, retain_items: 8, max_new_tokens: 6, metrics: [loss_f_eval, loss_r_eval, rouge_f, utility_r]}}
search: {{baseline: {baseline}, space: {{combiner: [ngdiff], objective: [npo], lr_rule: [autolr], lr: [0.05]}}}}
resources: {{cpus_per_trial: 2, max_failures: 2{workers}}}
storage: {{checkpoints: last}}
"""
#: Columns that say how a trial ran (its workers, where, how long), not what it computed.
HOW = ["wall_s", "cpu_s", "gpu_s", "run_id", "node_id", "spec", "spec_hash", "workers", "parallel",
       "grad_buffer_bytes", "resumed_from_step", "attempts"]


def write(tmp_path: Path, name: str, workers: bool, steps: int = 6, every: int = 3, baseline: str = "true") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, steps=steps, every=every, baseline=baseline,
                                parallel=", parallel: fsdp" if workers else "",
                                workers=", workers_per_trial: 2" if workers else ""))
    return path


def assert_close_frames(a: pd.DataFrame, b: pd.DataFrame, rel: float = 1e-5) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        if pd.api.types.is_float_dtype(a[c]):
            pd.testing.assert_series_equal(a[c], b[c], rtol=rel, atol=1e-6, obj=c)
        else:
            pd.testing.assert_series_equal(a[c], b[c], obj=c)


@pytest.mark.slow
def test_fsdp_sweep_completes_and_equals_the_one_process_sweep(tmp_path, embedded_target):
    fsdp, single = write(tmp_path, "fsdp", True), write(tmp_path, "single", False)
    store = str(tmp_path / "results")
    runs = pareto_in_one_process([["sweep", str(fsdp), "--storage", store],
                                  ["sweep", str(single), "--storage", store]], tmp_path / "runs.json")
    for r in runs:
        assert r["returncode"] == 0 and "Traceback" not in r["output"], r["output"][-3000:]
    a, b = (pd.read_parquet(tmp_path / "results" / n / "trials.parquet").sort_values("trial_id") for n in ("fsdp", "single"))
    assert (a.workers == 2).all() and (a.parallel == "fsdp").all() and (a.status == "ok").all()
    assert (b.workers == 1).all() and b.parallel.isna().all()
    unlearning = a[a.combiner != "no-unlearn"]
    # FSDP: each rank's g_R buffer holds half the parameters
    assert int(unlearning.grad_buffer_bytes.iloc[0]) * 2 == pytest.approx(
        int(b[b.combiner != "no-unlearn"].grad_buffer_bytes.iloc[0]), rel=0.01)
    # a count over the entries d moves: those with d ≈ 0 change or not by rounding
    changed = "first_step_changed_frac"
    assert unlearning[changed].iloc[0] == pytest.approx(b[b.combiner != "no-unlearn"][changed].iloc[0], abs=1e-4)
    assert unlearning[changed].iloc[0] > 0.99
    assert_close_frames(a.drop(columns=HOW + ["sweep", changed]).reset_index(drop=True),
                        b.drop(columns=HOW + ["sweep", changed]).reset_index(drop=True))
    for name in ("steps", "evals"):
        x, y = (pd.read_parquet(tmp_path / "results" / n / f"{name}.parquet") for n in ("fsdp", "single"))
        drop = [c for c in ("step_time_s", "wall_s") if c in x.columns]
        assert_close_frames(x.drop(columns=drop), y.drop(columns=drop))
    frontier = pareto("frontier", "--results", str(tmp_path / "results" / "fsdp"))
    assert frontier.returncode == 0 and "t001" in frontier.stdout, frontier.stdout + frontier.stderr


def train_workers(tag: str) -> list[int]:
    """The Ray Train worker processes of the Ray started by the driver that carries `tag`."""
    return [pid for pid, cmd in tagged(tag) if cmd.startswith(b"ray::RayTrainWorker")]


@pytest.mark.slow
def test_a_killed_worker_loses_nothing(tmp_path, embedded_target):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the trial's worker processes")
    spec = write(tmp_path, "kill", True, steps=24, every=8, baseline="false")
    calm = Driver(str(spec), "--storage", str(tmp_path / "calm"))
    assert calm.finish() and calm.proc.returncode == 0
    hurt = Driver(str(spec), "--storage", str(tmp_path / "hurt"))
    killed: list[int] = []

    def strike() -> bool:  # one rank, once the step-8 checkpoint has reached the driver
        if not hurt.printed("t000 at step 8") or not train_workers(hurt.tag):
            return False
        pid = train_workers(hurt.tag)[-1]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        return True

    hurt.wait_for(strike, timeout=300)
    out = hurt.finish()
    assert killed, "the trial finished before a worker could be killed:\n" + out[-2000:]
    assert hurt.proc.returncode == 0 and "Traceback" not in out, out[-3000:]
    t = pd.read_parquet(tmp_path / "hurt" / "kill" / "trials.parquet")
    assert t.status.tolist() == ["ok"] and t.resumed_from_step.iloc[0] in (8, 16), t.to_dict("records")
    c = pd.read_parquet(tmp_path / "calm" / "kill" / "trials.parquet")
    pd.testing.assert_frame_equal(c.drop(columns=HOW), t.drop(columns=HOW))
    for name, varying in (("steps", ["step_time_s"]), ("evals", ["wall_s"]), ("items", [])):
        a = pd.read_parquet(tmp_path / "calm" / "kill" / f"{name}.parquet").drop(columns=varying)
        b = pd.read_parquet(tmp_path / "hurt" / "kill" / f"{name}.parquet").drop(columns=varying)
        assert not b.duplicated([k for k in ("step", "eval_step", "metric", "item_id") if k in b.columns]).any()
        pd.testing.assert_frame_equal(a, b, obj=name)
