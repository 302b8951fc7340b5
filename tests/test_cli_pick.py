"""`pareto pick` on small result folders written here: each rule's answer, and every bad input exits 2
with one message naming the fix (never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers import fails
from click.testing import CliRunner

from pareto.cli import main

DIRECTIONS = {"rouge_f": "min", "utility_r": "max", "loss_f_eval": "max", "loss_r_eval": "min",
              "knowmem_f": "min", "knowmem_r": "max", "verbmem_f": "min", "forget_quality": "max",
              "model_utility": "max"}


def write(folder: Path, evals: list[dict], trials: list[dict] | None = None) -> Path:
    """trials.parquet (directions in its metadata) and evals.parquet, as `pareto sweep` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(dict.fromkeys(e["trial_id"] for e in evals))
    trials = trials or [{"trial_id": t, "status": "ok", "combiner": "gdiff", "combiner_params": '{"c": 0.5}',
                         "objective": "ga", "seed": 0, "steps": 4, "spec": json.dumps({"data": {"source": "tofu"}})}
                        for t in ids]
    table = pa.Table.from_pandas(pd.DataFrame(trials), preserve_index=False)
    meta = {b"pareto.metric_directions": json.dumps(DIRECTIONS).encode(),
            b"pareto.planes": json.dumps([["loss_f_eval", "loss_r_eval"], ["rouge_f", "utility_r"]]).encode()}
    pq.write_table(table.replace_schema_metadata(meta), folder / "trials.parquet")
    pq.write_table(pa.Table.from_pandas(pd.DataFrame(evals), preserve_index=False), folder / "evals.parquet")
    return folder


def tofu(tmp_path: Path) -> Path:
    rows = [("a", 2, 0.6, 0.9), ("a", 4, 0.2, 0.5), ("b", 2, 0.1, 0.4), ("b", 4, 0.0, 0.1), ("c", 4, 0.3, 0.8)]
    return write(tmp_path / "tofu", [{"trial_id": t, "eval_step": s, "rouge_f": f, "utility_r": u,
                                      "loss_f_eval": 1.0 + s, "loss_r_eval": 1.0} for t, s, f, u in rows])


def pick(*args: str):
    return CliRunner().invoke(main, ["pick", *args])


def test_knee_and_at_forget(tmp_path):
    folder = tofu(tmp_path)
    run = pick("--results", str(folder), "--rule", "knee", "--format", "json")
    assert run.exit_code == 0, run.output
    # front over all five evaluations (rouge_f ↓, utility_r ↑): b4 (0, .1), b2 (.1, .4), a4 (.2, .5), c4 (.3, .8),
    # a2 (.6, .9); normalised sums .. b2: .1/.6 + .5/.8 = .792, a4: .333 + .5 = .833, c4: .5 + .125 = .625 → c4
    (row,) = json.loads(run.stdout)
    assert (row["trial_id"], row["eval_step"], row["front_size"]) == ("c", 4, 5)
    run = pick("--results", str(folder), "--rule", "at-forget=0.4", "--format", "csv")
    assert run.exit_code == 0, run.output
    out = pd.read_csv(pd.io.common.StringIO(run.stdout))
    # a: 0.6 → 0.2 between steps 2 and 4 passes 0.4 halfway: utility (0.9 + 0.5)/2 = 0.7
    assert out[["method", "trial_id", "eval_step"]].values.tolist() == [["gdiff(c=0.5)", "a", 3.0]]
    assert out["utility_mean"].tolist() == [pytest.approx(0.7)]
    table = pick("--results", str(folder), "--rule", "at-forget=0.95")
    assert table.exit_code == 0 and "not reached: gdiff(c=0.5) (closest 0.6)" in table.stdout


def test_first_below_retain_with_reference(tmp_path):
    rows = [("a", 2, 0.5, 0.9), ("a", 4, 0.2, 0.6), ("b", 2, 0.25, 0.5), ("b", 4, 0.1, 0.4)]
    folder = write(tmp_path / "muse", [{"trial_id": t, "eval_step": s, "knowmem_f": f, "knowmem_r": u,
                                        "verbmem_f": f} for t, s, f, u in rows])
    run = pick("--results", str(folder), "--rule", "first-below-retain", "--reference", "0.3", "--format", "json")
    assert run.exit_code == 0, run.output
    assert [(r["trial_id"], r["eval_step"], r["reached"]) for r in json.loads(run.stdout)] == [("b", 2, True)]


def test_first_below_retain_reads_the_recorded_retrain_value(tmp_path):
    rows = [("a", 2, 0.5, 0.9), ("a", 4, 0.2, 0.6), ("b", 2, 0.25, 0.5), ("b", 4, 0.1, 0.4)]
    evals = [{"trial_id": t, "eval_step": s, "knowmem_f": f, "knowmem_r": u} for t, s, f, u in rows]
    recorded = json.dumps({"knowmem_f": 0.22, "knowmem_r": 0.7, "privleak": None})
    trials = [{"trial_id": t, "status": "ok", "combiner": "gdiff", "seed": 0, "steps": 4, "reference_metrics": recorded,
               "spec": json.dumps({"data": {"source": "muse_news"}})} for t in ("a", "b")]
    folder = write(tmp_path / "muse", evals, trials)
    run = pick("--results", str(folder), "--rule", "first-below-retain", "--utility", "knowmem_r", "--format", "json")
    assert run.exit_code == 0, run.output
    # 0.22: a reaches it at step 4 (0.2), b at step 4 (0.1; 0.25 at step 2 is above) → tie on step, a's utility wins
    assert [(r["trial_id"], r["eval_step"], r["reference"]) for r in json.loads(run.stdout)] == [("a", 4, 0.22)]
    run = pick("--results", str(folder), "--rule", "first-below-retain", "--reference", "0.3", "--format", "json")
    assert [(r["trial_id"], r["eval_step"]) for r in json.loads(run.stdout)] == [("b", 2)]  # the flag overrides


def test_fq_mu(tmp_path):
    rows = [("a", 2, 0.9, 0.1), ("a", 4, 0.5, 0.6), ("b", 4, 0.3, 0.7)]
    folder = write(tmp_path / "fq", [{"trial_id": t, "eval_step": s, "forget_quality": f, "model_utility": u,
                                      "rouge_f": 0.1, "utility_r": 0.5} for t, s, f, u in rows])
    run = pick("--results", str(folder), "--rule", "fq-mu", "--format", "json")
    assert run.exit_code == 0, run.output
    (row,) = json.loads(run.stdout)
    assert (row["trial_id"], row["eval_step"], row["fq_mu"]) == ("a", 4, pytest.approx(0.55))


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("rule", ["kneee", "at-forget=", "at-forget=low", "first_below_retain"])
def test_bad_rule_syntax(tmp_path, rule):
    fails(pick("--results", str(tofu(tmp_path)), "--rule", rule), "--rule", "at-forget=")


def test_missing_metric_fq_mu(tmp_path):
    fails(pick("--results", str(tofu(tmp_path)), "--rule", "fq-mu"), "forget_quality and model_utility",
          "eval.metrics", "target.retain_model: true")


def test_no_reference(tmp_path):
    rows = [{"trial_id": "a", "eval_step": 2, "knowmem_f": 0.2, "knowmem_r": 0.5}]
    folder = write(tmp_path / "muse", rows)
    fails(pick("--results", str(folder), "--rule", "first-below-retain"), "--reference VALUE", "knowmem_f",
          "target.retain_model: true")
    fails(pick("--results", str(tofu(tmp_path)), "--rule", "first-below-retain", "--reference", "0.1"),
          "add knowmem_f to eval.metrics")


def test_unknown_and_absent_metrics(tmp_path):
    folder = str(tofu(tmp_path))
    fails(pick("--results", folder, "--rule", "at-forget=0.1", "--forget", "rouge_ff"), "no such metric",
          "rouge_f")
    fails(pick("--results", folder, "--rule", "knee", "--x", "rouge_f", "--y", "knowmem_r"), "--y knowmem_r",
          "Add knowmem_r to eval.metrics")
    fails(pick("--results", folder, "--rule", "knee", "--x", "rouge_f"), "--x and --y go together")
    fails(pick("--results", folder, "--rule", "knee", "--by", "optimiser"), "--by", "method")


def test_no_plane_with_values_and_no_results(tmp_path):
    folder = write(tmp_path / "bare", [{"trial_id": "a", "eval_step": 2, "verbmem_f": 0.3}])
    fails(pick("--results", str(folder), "--rule", "knee"), "--x NAME --y NAME", "verbmem_f")
    fails(pick("--results", str(tmp_path / "nothing"), "--rule", "knee"), "--results")
