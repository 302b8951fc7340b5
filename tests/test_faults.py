"""Faults on a real local Ray: a trial's worker killed mid-trial is retried from its checkpoint, and
the results hold each trial once, every step once, equal to an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from test_sweep import ROOT, TIMING

SPEC = """name: faults
unlearn: {steps: 40, batch_size: 4}
eval: {every: 8, retain_items: 8, max_new_tokens: 6, metrics: [loss_f_eval, loss_r_eval, rouge_f, utility_r]}
search: {baseline: false, space: {combiner: [rlw], lr_rule: [autolr], lr: [1.0e-4]}}
resources: {cpus_per_trial: 1, max_failures: 2}
storage: {checkpoints: last}
"""


def _workers_tagged(tag: str) -> list[int]:
    """The trial actors (Tune's function trainables) of the Ray started by the driver that carries `tag`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::ImplicitFunc") and f"PARETO_FAULT_TAG={tag}".encode() in env:  # the trial's actor
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_killed_worker_resumes_from_its_checkpoint(tmp_path, embedded_target):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the trial's worker process")
    spec = tmp_path / "faults.yaml"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-m", "pareto", "sweep", str(spec)]
    calm = subprocess.run(cmd + ["--storage", str(tmp_path / "calm")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert calm.returncode == 0, calm.stderr[-3000:]

    tag = uuid.uuid4().hex
    proc = subprocess.Popen(cmd + ["--storage", str(tmp_path / "hurt")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "PARETO_FAULT_TAG": tag})
    ray_dir = tmp_path / "hurt" / "faults" / ".ray"
    killed, deadline = [], time.time() + 300
    while time.time() < deadline and not killed and proc.poll() is None:
        if any(ray_dir.glob("*/*/checkpoint_*")):  # a checkpoint exists: the trial is mid-way
            for pid in _workers_tagged(tag):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    out = proc.communicate(timeout=600)[0]
    assert killed, "the trial finished before it could be interrupted"
    assert proc.returncode == 0, out[-3000:]
    assert "retrying from its last checkpoint" in out

    calm_t = pd.read_parquet(tmp_path / "calm" / "faults" / "trials.parquet")
    hurt_t = pd.read_parquet(tmp_path / "hurt" / "faults" / "trials.parquet")
    assert len(hurt_t) == 1 and hurt_t.attempts.iloc[0] == 2 and hurt_t.resumed_from_step.iloc[0] > 0
    pd.testing.assert_frame_equal(calm_t.drop(columns=[*TIMING, "resumed_from_step"]),
                                  hurt_t.drop(columns=[*TIMING, "resumed_from_step"]))
    calm_s = pd.read_parquet(tmp_path / "calm" / "faults" / "steps.parquet").drop(columns=["step_time_s"])
    hurt_s = pd.read_parquet(tmp_path / "hurt" / "faults" / "steps.parquet").drop(columns=["step_time_s"])
    assert list(hurt_s.step) == list(range(40))  # every step exactly once
    pd.testing.assert_frame_equal(calm_s, hurt_s)
    evals = pd.read_parquet(tmp_path / "hurt" / "faults" / "evals.parquet")
    assert list(evals.eval_step) == [8, 16, 24, 32, 40]
