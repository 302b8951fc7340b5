"""Sweeps end to end on a real local Ray: search algorithms, ASHA, resume, storage, readers."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from _helpers import ROOT, TIMING, ok, pareto, pareto_in_one_process, write_spec

RANDOM = """  algorithm: random
  num_samples: 4
  seed: 7
  space:
    combiner: [{gdiff: {c: {uniform: [0.0, 1.0]}}}, ngdiff]
    lr: {loguniform: [1.0e-5, 1.0e-3]}
    lr_rule: [fixed, autolr]"""


@pytest.mark.slow
def test_random_search_resume_equals_an_uninterrupted_run_and_a_finished_sweep_does_nothing(tmp_path, embedded_target):
    spec = write_spec(tmp_path, "rnd", RANDOM)
    # trials long enough, one at a time, that the interruption below lands while some are still to run
    spec.write_text(spec.read_text().replace("steps: 6", "steps: 60")
                    .replace("resources: {cpus_per_trial: 1}", "resources: {cpus_per_trial: 1, max_concurrent: 1}"))
    ok(pareto("sweep", str(spec), "--storage", str(tmp_path / "a")))
    full = pd.read_parquet(tmp_path / "a" / "rnd" / "trials.parquet")
    assert len(full) == 5 and (full.status == "ok").all()
    assert full.label.nunique() == 5  # four distinct draws besides the baseline

    # interrupt a second copy with SIGINT once a trial is written, then resume it
    proc = subprocess.Popen([sys.executable, "-m", "pareto", "sweep", str(spec), "--storage", str(tmp_path / "b")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    parts = tmp_path / "b" / "rnd" / "parts"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(parts.glob("*/trials.parquet"))) < 1:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0 and "--resume" in out, out[-2000:]
    assert not (tmp_path / "b" / "rnd" / "trials.parquet").exists()
    refused = pareto("sweep", str(spec), "--storage", str(tmp_path / "b"))
    assert refused.returncode == 2 and "unfinished run" in refused.stderr and "--resume" in refused.stderr
    resumed = ok(pareto("sweep", str(spec), "--storage", str(tmp_path / "b"), "--resume"))
    assert "already done" in resumed.stdout
    again = pd.read_parquet(tmp_path / "b" / "rnd" / "trials.parquet")
    pd.testing.assert_frame_equal(full.drop(columns=TIMING), again.drop(columns=TIMING))
    steps_a = pd.read_parquet(tmp_path / "a" / "rnd" / "steps.parquet").drop(columns=["step_time_s"])
    steps_b = pd.read_parquet(tmp_path / "b" / "rnd" / "steps.parquet").drop(columns=["step_time_s"])
    pd.testing.assert_frame_equal(steps_a, steps_b)
    assert not steps_b.duplicated(["trial_id", "step"]).any()

    # running the finished sweep again does no work; a changed spec under the same name is refused
    rerun = ok(pareto("sweep", str(spec), "--storage", str(tmp_path / "b")))
    assert "nothing to do" in rerun.stdout and "running" not in rerun.stdout
    changed = pareto("sweep", str(spec), "--storage", str(tmp_path / "b"), "--set", "unlearn.steps=7")
    assert changed.returncode == 2 and "different spec" in changed.stderr


MO = """  algorithm: optuna
  num_samples: 4
  objectives: [rouge_f, utility_r]
  space:
    combiner: [{gdiff: {c: {uniform: [0.0, 1.0]}}}, ngdiff]
    lr: {loguniform: [1.0e-5, 1.0e-3]}"""
ROBUST = MO.replace("num_samples: 4", "num_samples: 2").replace("[rouge_f, utility_r]", "[relearn_rouge_f]")
ASHA = RANDOM.replace("num_samples: 4", "num_samples: 6") + \
    "\nscheduler: {name: asha, metric: loss_r_eval, grace_period: 1, reduction_factor: 2}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, embedded_target) -> dict:
    """Four sweeps, one after another in one process (one torch import, one Ray): {name: (its
    `pareto sweep` exit and output, its results folder)}."""
    tmp = tmp_path_factory.mktemp("sweeps")
    commands = {
        "mo": ["sweep", str(write_spec(tmp, "mo", MO, extra_eval=", every: 2")), "--storage", str(tmp)],
        # one trial at a time: ASHA's decisions depend on the order results arrive in
        "asha": ["sweep", str(write_spec(tmp, "asha", ASHA, extra_eval=", every: 2")), "--storage", str(tmp),
                 "--set", "resources.max_concurrent=1"],
        # one objective that exists only in a trial's final result (eval.robustness), with evaluations before it
        "robust": ["sweep", str(write_spec(tmp, "robust", ROBUST, extra_eval=", every: 2, robustness: "
                                           "{relearn_steps: 2, relearn_lr: 1.0e-3}")), "--storage", str(tmp)],
        "uri": ["sweep", str(write_spec(tmp, "uri", """  space: {combiner: [ngdiff, lossnorm]}""")),
                "--storage", f"file://{tmp}/store"],
    }
    results = pareto_in_one_process(list(commands.values()), tmp / "results.json")
    for name, result in zip(commands, results):
        assert result["returncode"] == 0 and "Traceback" not in result["output"], (name, result["output"][-3000:])
    return {name: (result, tmp / ("store" if name == "uri" else "") / name) for name, result in zip(commands, results)}


@pytest.mark.slow
def test_optuna_multi_objective(runs):
    result, folder = runs["mo"]
    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 5 and (trials.status == "ok").all() and set(trials.search) == {"optuna"}
    assert (folder / "optuna.journal").is_file()
    evals = pd.read_parquet(folder / "evals.parquet")
    assert sorted(evals[evals.trial_id == "t001"].eval_step) == [2, 4, 6]  # every 2 steps and the end
    assert "[5/5 done" in result["output"]


@pytest.mark.slow
def test_optuna_optimises_a_robustness_column_it_gets_at_each_trials_end(runs):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    _, folder = runs["robust"]
    trials = pd.read_parquet(folder / "trials.parquet")
    assert (trials.status == "ok").all() and trials.relearn_rouge_f.notna().all()
    study = optuna.load_study(study_name="robust", storage=JournalStorage(JournalFileBackend(str(folder / "optuna.journal"))))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2 and all(len(t.values) == 1 for t in done)
    assert sorted(t.values[0] for t in done) == sorted(trials.relearn_rouge_f[trials.combiner != "no-unlearn"])


@pytest.mark.slow
def test_asha_stops_trials_with_the_metrics_of_their_last_evaluation(runs):
    _, folder = runs["asha"]
    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 7 and set(trials.status) <= {"ok", "stopped"}
    stopped = trials[trials.status == "stopped"]
    assert len(stopped) >= 1, trials[["label", "status", "steps"]]
    assert (stopped.steps < 6).all() and stopped.loss_r_eval.notna().all()


@pytest.mark.slow
def test_storage_uri_and_every_reader(runs, tmp_path):
    _, folder = runs["uri"]
    shutil.copytree(folder.parent, tmp_path / "store")  # the module's copy stays as it is
    folder = tmp_path / "store" / "uri"
    import duckdb
    import polars as pl

    for name in ("trials", "evals", "steps", "items"):
        path = folder / f"{name}.parquet"
        a, b = pd.read_parquet(path), pl.read_parquet(path)
        c = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]
        assert len(a) == len(b) == c > 0, name
    assert duckdb.sql(f"select count(*) from read_parquet('{folder}/trials.parquet') where status = 'ok'").fetchall()[0][0] == 3
    # several sweeps under one root read together
    shutil.copytree(folder, tmp_path / "store" / "uri_copy")
    both = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/store/*/trials.parquet')").fetchall()[0][0]
    assert both == 6


def test_resource_and_storage_mistakes_exit_2(tmp_path, embedded_target):
    spec = write_spec(tmp_path, "gpu", """  space: {combiner: [ngdiff]}""")
    proc = pareto("sweep", str(spec), "--storage", str(tmp_path), "--set", "resources.gpus_per_trial=1")
    assert proc.returncode == 2 and "GPU(s)" in proc.stderr and "gpus_per_trial=0" in proc.stderr, proc.stderr
    (tmp_path / "a_file").write_text("not a directory")
    proc = pareto("sweep", str(spec), "--storage", str(tmp_path / "a_file" / "results"))
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "--storage" in proc.stderr, proc.stderr
    assert not (tmp_path / "gpu").exists()  # the refused GPU run left nothing behind
