"""Faults on a real local Ray, injected with real signals into real processes:

* a trial's worker process SIGKILLed mid-trial → retried from its last checkpoint (checkpoints: last)
  or from the start (checkpoints: none); the results hold the trial once, every step once, equal to
  an uninterrupted run;
* the driver SIGKILLed mid-sweep → `pareto sweep --resume` completes it, equal to an uninterrupted
  sweep (the SIGINT case is in test_sweep.py);
* the storage location full (a real 1 MiB tmpfs) or refusing large files (RLIMIT_FSIZE) → a clear
  error, exit 2, and every Parquet file there whole.

Every process this file starts carries PARETO_FAULT_TAG=<uuid> in its environment, and so does
every Ray process its drivers start; cleanup SIGKILLs exactly those, by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _helpers import ROOT, Driver, assert_same_results, kill_tagged, tagged

SPEC = """name: faults
unlearn: {steps: 40, batch_size: 4}
eval: {every: 8, retain_items: 8, max_new_tokens: 6, metrics: [loss_f_eval, loss_r_eval, rouge_f, utility_r]}
search: {baseline: false, space: {combiner: [rlw], lr_rule: [autolr], lr: [1.0e-4]}}
resources: {cpus_per_trial: 1, max_failures: 2}
storage: {checkpoints: last}
"""


def trial_workers(tag: str) -> list[int]:
    """The trial actors (Tune's function trainables) of the Ray started by the driver that carries `tag`."""
    return [pid for pid, cmd in tagged(tag) if cmd.startswith(b"ray::ImplicitFunc")]


def sweep(*args: str) -> str:
    d = Driver(*args)
    out = d.finish()
    assert d.proc.returncode == 0 and "Traceback" not in out, out[-3000:]
    return out


@pytest.fixture(scope="module")
def calm(tmp_path_factory, embedded_target) -> Path:
    """The uninterrupted run every faulted run must equal."""
    base = tmp_path_factory.mktemp("calm")
    (base / "faults.yaml").write_text(SPEC)
    sweep(str(base / "faults.yaml"), "--storage", str(base))
    return base / "faults"


def kill_worker_mid_trial(spec: Path, storage: Path, when) -> tuple[Driver, str, list[int]]:
    d = Driver(str(spec), "--storage", str(storage))
    killed: list[int] = []

    def strike() -> bool:
        if not when(d):
            return False
        for pid in trial_workers(d.tag):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        return bool(killed)

    d.wait_for(strike, timeout=300)
    out = d.finish()
    assert killed, "the trial finished before it could be interrupted:\n" + out[-2000:]
    assert d.proc.returncode == 0 and "Traceback" not in out, out[-3000:]
    return d, out, killed


@pytest.mark.slow
def test_killed_worker_resumes_from_its_checkpoint(tmp_path, calm):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the trial's worker process")
    spec = tmp_path / "faults.yaml"
    spec.write_text(SPEC)
    # The driver has the step-16 result, so the step-8 checkpoint is registered with Tune. (A checkpoint
    # on disk is not enough: Tune registers it only once its result reaches the driver, and a worker
    # killed in between restarts from the start; the driver then says so, see the next test.)
    _, out, _ = kill_worker_mid_trial(spec, tmp_path / "hurt", lambda d: d.printed("t000 at step 16"))
    hurt_t = assert_same_results(calm, tmp_path / "hurt" / "faults")
    resumed = hurt_t.resumed_from_step.iloc[0]
    assert hurt_t.attempts.iloc[0] == 2 and resumed in (8, 16, 24, 32)
    assert f"retrying from its last checkpoint (step {resumed})" in out, out[-3000:]
    evals = pd.read_parquet(tmp_path / "hurt" / "faults" / "evals.parquet")
    assert list(evals.eval_step) == [8, 16, 24, 32, 40]


@pytest.mark.slow
def test_killed_worker_before_its_first_checkpoint_starts_over_and_says_so(tmp_path, calm):
    """checkpoints: last, but the worker dies before its first evaluation: there is nothing to resume,
    and the driver must not claim otherwise (it did, when a checkpoint was on disk but not registered)."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the trial's worker process")
    spec = tmp_path / "faults.yaml"
    spec.write_text(SPEC)
    _, out, _ = kill_worker_mid_trial(spec, tmp_path / "hurt", lambda d: bool(trial_workers(d.tag)))
    assert "retrying from the start (it had no checkpoint yet)" in out, out[-3000:]
    assert "retrying from its last checkpoint" not in out
    hurt_t = assert_same_results(calm, tmp_path / "hurt" / "faults")
    assert hurt_t.attempts.iloc[0] == 2 and pd.isna(hurt_t.resumed_from_step.iloc[0])


@pytest.mark.slow
def test_killed_worker_without_checkpoints_starts_the_trial_over(tmp_path, calm):
    """checkpoints: none — the retry runs every step again; the rows of the first attempt are replaced,
    never doubled."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the trial's worker process")
    spec = tmp_path / "faults.yaml"
    spec.write_text(SPEC.replace("checkpoints: last", "checkpoints: none"))
    # past its second evaluation: 16 steps reported to the driver, which the retry reports again
    _, out, _ = kill_worker_mid_trial(spec, tmp_path / "hurt", lambda d: d.printed("t000 at step 16"))
    assert "retrying from the start" in out
    hurt_t = assert_same_results(calm, tmp_path / "hurt" / "faults")
    assert hurt_t.attempts.iloc[0] == 2 and pd.isna(hurt_t.resumed_from_step.iloc[0])
    assert not list((tmp_path / "hurt" / "faults" / ".ray").glob("*/*/checkpoint_*"))  # none were made


DRIVER_SPEC = SPEC.replace("steps: 40", "steps: 16").replace(
    "space: {combiner: [rlw], lr_rule: [autolr], lr: [1.0e-4]}", "space: {combiner: [rlw, ngdiff, lossnorm]}").replace(
    "max_failures: 2}", "max_failures: 2, max_concurrent: 1}")


@pytest.mark.slow
def test_killed_driver_resumes_to_the_same_results(tmp_path, embedded_target):
    """SIGKILL gives the driver no chance to clean up: its Ray is left behind (ended here by tag), and a
    part may be half written. `--resume` runs exactly the trials without a complete part."""
    spec = tmp_path / "drv.yaml"
    spec.write_text(DRIVER_SPEC.replace("name: faults", "name: drv"))
    sweep(str(spec), "--storage", str(tmp_path / "calm"))

    d = Driver(str(spec), "--storage", str(tmp_path / "hurt"))
    parts = tmp_path / "hurt" / "drv" / "parts"
    assert d.wait_for(lambda: len(list(parts.glob("*/trials.parquet"))) >= 1), "".join(d.lines)[-2000:]
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=60)
    left_behind = kill_tagged(d.tag)  # the dead driver's local Ray: raylet, GCS, workers
    out = d.finish()
    assert d.proc.returncode == -signal.SIGKILL, out[-2000:]
    done_before = len(list(parts.glob("*/trials.parquet")))
    assert 1 <= done_before < 3, f"{done_before} of 3 trials done when the driver died"
    assert not (tmp_path / "hurt" / "drv" / "trials.parquet").exists()
    for f in (tmp_path / "hurt").rglob("*.parquet"):  # whatever it left is whole
        pq.read_table(f)

    out = sweep(str(spec), "--storage", str(tmp_path / "hurt"), "--resume")
    assert f"{done_before} trial(s) already done, {3 - done_before} to run" in out, out[-2000:]
    hurt_t = assert_same_results(tmp_path / "calm" / "drv", tmp_path / "hurt" / "drv", n_steps=16)
    assert len(hurt_t) == 3 and (hurt_t.attempts == 1).all()
    print(f"driver SIGKILLed with {done_before} of 3 trials written; {left_behind} Ray processes left behind")


# ---------------------------------------------------------------------------------------------
# Storage that fills up or refuses large files


def all_parquet_whole(root: Path) -> int:
    """Every .parquet under root opens and reads; no temporary files are left. How many there are."""
    files = list(root.rglob("*.parquet"))
    for f in files:
        pq.read_table(f)
    assert not [p for p in root.rglob("*.tmp")], list(root.rglob("*.tmp"))
    return len(files)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 1 MiB file system (tmpfs) to fill; needs the right to mount (root in a container)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow
def test_full_disk_stops_the_sweep_with_a_clear_error_and_no_partial_parquet(tmp_path, tiny_tmpfs, embedded_target):
    spec = tmp_path / "full.yaml"
    spec.write_text(DRIVER_SPEC.replace("name: faults", "name: full").replace("checkpoints: last", "checkpoints: none"))
    (tiny_tmpfs / "ballast").write_bytes(b"\0" * (1024 * 1024 - 256 * 1024))  # 256 KiB left: less than the sweep writes
    d = Driver(str(spec), "--storage", str(tiny_tmpfs))
    out = d.finish()
    assert d.proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out
    assert "No space left on device" in out and "--storage" in out and "--resume" in out, out[-3000:]
    all_parquet_whole(tiny_tmpfs)  # what it wrote is whole
    assert not (tiny_tmpfs / "full" / "trials.parquet").exists()  # a stopped sweep has no final table
    done_before = len(list((tiny_tmpfs / "full" / "parts").glob("*/trials.parquet")))
    # space freed → the same command with --resume runs exactly the trials without a complete part
    (tiny_tmpfs / "ballast").unlink()
    out = sweep(str(spec), "--storage", str(tiny_tmpfs), "--resume")
    assert f"{done_before} trial(s) already done, {3 - done_before} to run" in out, out[-2000:]
    trials = pd.read_parquet(tiny_tmpfs / "full" / "trials.parquet")
    assert len(trials) == 3 and not trials.trial_id.duplicated().any() and (trials.status == "ok").all()
    all_parquet_whole(tiny_tmpfs)


def test_a_write_refused_midway_leaves_no_partial_file(tmp_path):
    """RLIMIT_FSIZE (any Linux, no privileges): the kernel refuses the write past the limit (EFBIG);
    the store says so and the file is absent, not torn; the file before it is whole."""
    code = f"""
import resource, pyarrow as pa
from pareto.results.store import Store, StorageError
store = Store({str(tmp_path)!r})
store.write_table("small.parquet", pa.table({{"x": list(range(10))}}))
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
try:
    store.write_table("big.parquet", pa.table({{"x": [float(i) for i in range(200_000)]}}))
except StorageError as exc:
    print("REFUSED", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "REFUSED cannot write" in proc.stdout and "File too large" in proc.stdout, proc.stdout + proc.stderr
    assert "--storage" in proc.stdout
    assert not (tmp_path / "big.parquet").exists()
    assert all_parquet_whole(tmp_path) == 1


# ---------------------------------------------------------------------------------------------
# Divergence: a trial whose loss or gradient stops being finite


DIVERGING = """name: div
unlearn: {steps: 12, batch_size: 4, optimizer: sgd}
eval: {retain_items: 8, max_new_tokens: 6, metrics: [loss_f_eval, loss_r_eval, rouge_f, utility_r]}
search: {baseline: false, space: {combiner: [ngdiff], lr: [1.0e-3, 1.0e+6]}}
resources: {cpus_per_trial: 1}
"""


@pytest.mark.slow
def test_a_diverged_trial_stops_at_its_step_the_sweep_goes_on_and_analysis_excludes_it(tmp_path, embedded_target):
    """SGD at lr 1e6 sends the weights to infinity after one step: the next step's gradient Gram matrix
    is not finite, so that trial stops there as `diverged`; the other trial runs all its steps."""
    spec = tmp_path / "div.yaml"
    spec.write_text(DIVERGING)
    out = sweep(str(spec), "--storage", str(tmp_path))
    assert "t001 ngdiff/ga/fixed/lr=1e+06/seed=0: diverged" in out and "is not finite" in out, out[-2000:]
    trials = pd.read_parquet(tmp_path / "div" / "trials.parquet").set_index("trial_id")
    assert list(trials.status) == ["ok", "diverged"]
    bad = trials.loc["t001"]
    assert bad.diverged_step == 1 and bad.steps == 1 and "step 1: gradient Gram matrix is not finite" in bad.error
    assert pd.isna(bad.rouge_f) and pd.isna(bad.loss_r_eval)  # no metrics from a diverged model
    steps = pd.read_parquet(tmp_path / "div" / "steps.parquet")
    assert list(steps[steps.trial_id == "t001"].step) == [0]  # every finite step before it, recorded
    assert list(steps[steps.trial_id == "t000"].step) == list(range(12))
    state = (tmp_path / "div" / "sweep.json").read_text()
    assert '"complete": true' in state  # diverging is a result, not a failure to retry
    proc = subprocess.run([sys.executable, "-m", "pareto", "frontier", "--results", str(tmp_path / "div")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "excluded: t001 (status=diverged" in proc.stdout, proc.stdout + proc.stderr
