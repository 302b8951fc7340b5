"""The CLI end to end, as a user runs it: a real local Ray, real Parquet, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _helpers import local_data, local_data_overrides

from pareto.core.engine import STEP_COLUMNS
from pareto.results.schema import TRIAL_SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def pareto(*args, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory, embedded_target):
    out = tmp_path_factory.mktemp("results")
    proc = pareto("sweep", "sweeps/quickstart.yaml", "--storage", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, out / "quickstart"


@pytest.mark.slow
def test_quickstart_sweep_writes_parquet_and_prints_the_frontier(quickstart):
    proc, run = quickstart
    assert "== loss_f_eval ↑ vs loss_r_eval ↓ ==" in proc.stdout
    assert "== rouge_f ↓ vs utility_r ↑ ==" in proc.stdout
    assert f"results: {run}/ (trials, evals, steps, items .parquet)" in proc.stdout
    assert "[11/11 done" in proc.stdout and "ETA" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    trials = pd.read_parquet(run / "trials.parquet")
    steps = pd.read_parquet(run / "steps.parquet")
    assert list(trials.columns) == TRIAL_SCHEMA.names
    assert list(steps.columns) == ["trial_id", *STEP_COLUMNS]
    evals = pd.read_parquet(run / "evals.parquet")  # one evaluation per trial (eval.every is 0)
    assert len(evals) == 11 and (evals.eval_step == trials.set_index("trial_id").steps.loc[evals.trial_id].values).all()
    assert (trials.cpu_s > 0).all() and (trials.gpu_s == 0).all() and (trials.attempts == 1).all()
    # no-unlearn + (3 gdiff + lossnorm + ngdiff) × (fixed, autolr)
    assert len(trials) == 11 and (trials.status == "ok").all()
    assert set(trials.combiner) == {"no-unlearn", "gdiff", "lossnorm", "ngdiff"}
    assert set(trials.lr_rule) == {"none", "fixed", "autolr"}
    assert len(steps) == 10 * 30 and steps.groupby("trial_id").step.apply(list).map(lambda s: s == list(range(30))).all()
    # every row records what produced it
    for col in ("spec_hash", "data_hash", "target_hash", "torch_version", "ray_version"):
        assert trials[col].notna().all() and trials[col].nunique() == 1
    assert json.loads(trials.spec.iloc[0])["name"] == "quickstart"
    # the telemetry means what it says: c_t, Eq. 5 dots from the Gram matrix, AutoLR fits every 10 steps
    s = steps
    assert ((s.c_t - s.w_r / (s.w_r + s.w_f)).abs() < 1e-12).all()
    assert ((s.dot_r_upd - (s.w_r * s.gram_rr - s.w_f * s.gram_rf)).abs() < 1e-9 * (1 + s.dot_r_upd.abs())).all()
    ng = s[s.trial_id.isin(trials[trials.combiner == "ngdiff"].trial_id)]
    assert (ng.dot_r_upd >= 0).all() and (ng.dot_f_upd <= 0).all()  # Lemma 4
    auto = s[s.trial_id.isin(trials[trials.lr_rule == "autolr"].trial_id)]
    assert set(auto[auto.autolr_accepted.notna()].step) == {0, 10, 20}
    # unlearning happened: every unlearned trial's forget loss rose above the target's
    base = trials[trials.combiner == "no-unlearn"].iloc[0]
    assert (trials[trials.combiner != "no-unlearn"].loss_f_eval > base.loss_f_eval).all()
    assert base.rouge_f > 0.9 and base.utility_r > 0.9  # the target had memorised both sets
    # items.parquet: what each model answered; every metric is the mean of its items
    items = pd.read_parquet(run / "items.parquet")
    for metric in ("rouge_f", "utility_r"):
        means = items[items.metric == metric].groupby("trial_id").score.mean()
        pd.testing.assert_series_equal(means, trials.set_index("trial_id")[metric].loc[means.index], check_names=False)
    assert items[items.metric == "rouge_f"].groupby("trial_id").size().eq(20).all()  # the whole forget set
    assert items.generation.notna().any() and items.reference.notna().all()
    assert json.loads(trials.metric_settings.iloc[0])["rouge_f"]["use_stemmer"] is True


@pytest.mark.slow
def test_frontier_command_reprints_and_formats(quickstart):
    _, run = quickstart
    proc = pareto("frontier", "--results", str(run))
    assert proc.returncode == 0, proc.stderr
    assert "dominated_by" in proc.stdout and "no-unlearn" in proc.stdout
    proc = pareto("frontier", "--results", str(run), "--x", "rouge_f", "--y", "utility_r", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert "trial_id,label,rouge_f,utility_r,dominated,dominated_by" in proc.stdout
    proc = pareto("frontier", "--results", str(run), "--by", "combiner")
    assert proc.returncode == 0 and "fronts per combiner" in proc.stdout


def test_user_mistakes_exit_2_with_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nunlearn: {stepz: 3}\nsearch: {space: {combiner: [ngdif]}}\n")
    for args, expected in [
        (("sweep", str(bad)), "Did you mean 'steps'"),
        (("validate", str(bad)), "Did you mean 'ngdiff'"),
        (("sweep", str(tmp_path / "missing.yaml")), "no such spec file"),
        (("frontier", "--results", str(tmp_path)), "holds no trials.parquet"),
        (("frontier", "--results", str(tmp_path), "--x", "rouge_f"), "holds no trials.parquet"),
    ]:
        proc = pareto(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def assert_validates(specs: list[Path], overrides: list[str] = ()) -> None:
    """`pareto validate` exits 0 and says "ok" for each spec; besides, it may only print notes on
    what this machine lacks to run one (a GPU, torchvision, the hub)."""
    rels = [str(p.relative_to(ROOT)) for p in specs]
    proc = pareto("validate", "--no-estimate", *rels, *(a for o in overrides for a in ("--set", o)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rel in rels:
        assert f"{rel}: ok (" in proc.stdout, proc.stdout + proc.stderr
    others = [ln for ln in proc.stderr.splitlines() if ": note: not runnable on this machine as it is: " not in ln]
    assert not others, proc.stderr


def test_validate_accepts_every_shipped_spec(real_data):
    specs = sorted(p for p in (ROOT / "sweeps").glob("*.yaml") if not p.name.startswith("_"))  # _: bases
    assert_validates([p for p in specs if not local_data(p)])
    for spec in filter(local_data, specs):  # last: against the test data's copy, skipped without it
        assert_validates([spec], local_data_overrides(spec, real_data))
