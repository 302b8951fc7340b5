"""The training-path frontier: analysis.paths and `pareto frontier --points evals`.

The real-sweep test places every evaluation of a real sweep (the session's SGD sweep: 4 steps,
eval.every=2, so three evaluations per unlearning trial) and checks the CLI's front against a
brute-force front computed straight from evals.parquet by an independent float64 pairwise check.
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import analysis.paths as paths_mod
from analysis import format_table, frontier_table
from analysis.paths import path_lines, path_points
from analysis.results import load_results

ROOT = Path(__file__).resolve().parents[2]


def frontier_cli(*args: str):
    from pareto.cli import main

    return CliRunner().invoke(main, ["frontier", *args])


def brute_front(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Non-dominated mask by the definition: for each pair, every objective compared in float64."""
    v = np.asarray(values, dtype=np.float64)
    out = np.ones(len(v), dtype=bool)
    for i in range(len(v)):
        for j in range(len(v)):
            ge = all((v[j, c] <= v[i, c]) if d == "min" else (v[j, c] >= v[i, c]) for c, d in enumerate(directions))
            gt = any((v[j, c] < v[i, c]) if d == "min" else (v[j, c] > v[i, c]) for c, d in enumerate(directions))
            if ge and gt:
                out[i] = False
                break
    return out


# ---------------------------------------------------------------------------- analysis.paths
def test_doctests():
    assert doctest.testmod(paths_mod).failed == 0


def test_path_points_of_the_synthetic_sweep(sweep_dir):
    r = load_results(sweep_dir)
    p = path_points(r.trials, r.evals)
    ev = pd.read_parquet(sweep_dir / "evals.parquet")
    assert len(p.points) == len(ev)  # every evaluation, none invented
    assert p.points["point"].tolist()[:3] == ["t000@0", "t001@2", "t001@4"]
    assert p.points.columns[:3].tolist() == ["point", "trial_id", "step"]
    assert p.unevaluated == ["t007", "t008"]  # the failed and the diverged trial wrote no evaluation
    assert p.per_trial["t001"] == 2 and not p.single_evaluation
    # the evaluation's metrics, the trial's other columns (method for --by method)
    row = p.points.set_index("point").loc["t002@2"]
    e = ev.set_index(["trial_id", "eval_step"]).loc[("t002", 2)]
    assert row["rouge_f"] == e["rouge_f"] and row["utility_r"] == e["utility_r"]
    assert row["method"] == "gdiff(c=0.2)" and row["lr_rule"] == "autolr" and row["status"] == "ok"
    # the final evaluation is the trial's final metrics
    last = p.points.set_index("point").loc["t002@4"]
    assert last["rouge_f"] == pytest.approx(r.trials.set_index("trial_id").loc["t002", "rouge_f"])


def test_path_points_edge_cases():
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": ["ok", "ok", "diverged"], "m": [1.0, 2.0, 3.0]})
    evals = pd.DataFrame({"trial_id": ["a", "b", "zz", "b", "c"], "eval_step": [5, 5, 5, 5, 3],
                          "m": [0.1, 0.2, 0.3, 0.25, 0.4]})
    p = path_points(trials, evals)
    assert p.points["point"].tolist() == ["a@5", "b@5", "c@3"]  # zz: not a trial; b@5 twice: the last
    assert p.points.set_index("point").loc["b@5", "m"] == 0.25
    assert p.single_evaluation and p.per_trial == {"a": 1, "b": 1, "c": 1}
    t = frontier_table(p.points, [("m", "min")], id_col="point")
    assert t.excluded[["point", "reason"]].values.tolist() == [["c@3", "status=diverged"]]
    assert "excluded 1 point(s): status=diverged (1)" in format_table(t)
    with pytest.raises(ValueError, match="eval_step"):
        path_points(trials, evals.drop(columns="eval_step"))
    with pytest.raises(ValueError, match="'step' already exists"):
        path_points(trials.assign(step=1), evals)
    with pytest.raises(ValueError, match="repeated trial_id"):
        path_points(pd.concat([trials, trials]), evals)
    assert path_points(trials, evals.iloc[:0]).points.empty


def test_path_lines_order_each_trial_by_step(sweep_dir):
    r = load_results(sweep_dir)
    p = path_points(r.trials, r.evals)
    t = frontier_table(p.points, [("rouge_f", "min"), ("utility_r", "max")], id_col="point")
    lines = path_lines(t)
    assert len(lines) == len(t.rows) and set(lines["point"]) == set(t.rows["point"])
    for _, part in lines.groupby("trial_id", sort=False):
        assert (np.diff(part["step"].to_numpy()) > 0).all()
    assert list(dict.fromkeys(lines["trial_id"])) == list(dict.fromkeys(t.rows["trial_id"]))
    front = set(t.front["point"])
    assert set(lines.loc[~lines["dominated"], "point"]) == front


def test_analysis_paths_imports_no_torch_or_pareto():
    code = ("import sys, analysis.paths; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pareto')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ----------------------------------------------------------------------- the CLI, synthetic sweep
def test_points_evals_names_trial_at_step_in_every_format(sweep_dir, tmp_path):
    res = frontier_cli("--results", str(sweep_dir), "--points", "evals", "--x", "rouge_f", "--y", "utility_r")
    assert res.exit_code == 0, res.output
    assert "point" in res.stdout and "t001@2" in res.stdout and "t000@0" in res.stdout
    for fmt in ("csv", "json", "markdown", "latex", "table"):
        res = frontier_cli("--results", str(sweep_dir), "--points", "evals", "--x", "rouge_f", "--y", "utility_r",
                           "--format", fmt)
        assert res.exit_code == 0, (fmt, res.output)
        assert "t002@4" in res.stdout
    res = frontier_cli("--results", str(sweep_dir), "--points", "evals", "--format", "csv", "--x", "rouge_f",
                       "--y", "utility_r")
    import io

    csv = pd.read_csv(io.StringIO(res.stdout))
    assert csv.columns[0] == "point" and len(csv) == 13  # 1 + 6 trials × 2 evaluations
    for names in csv["dominated_by"].dropna():
        for n in names.split(","):
            tid, _, step = n.partition("@")
            assert tid.startswith("t") and step.isdigit()


def test_points_evals_by_method_and_objectives_and_plot(sweep_dir, tmp_path):
    png = tmp_path / "paths.png"
    res = frontier_cli("--results", str(sweep_dir), "--points", "evals", "--by", "method", "--format", "json",
                       "--plot", str(png))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [d["plane"] for d in doc["planes"]][0].endswith("(fronts per method)")
    r = load_results(sweep_dir)
    p = path_points(r.trials, r.evals).points.set_index("point")
    for plane in doc["planes"]:
        for row in plane["rows"]:
            for d in filter(None, (row["dominated_by"] or "").split(",")):  # dominators: same method
                assert p.loc[d, "method"] == p.loc[row["point"], "method"]
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] > 500
    res = frontier_cli("--results", str(sweep_dir), "--points", "evals", "--objectives",
                       "rouge_f,utility_r,loss_f_eval", "--format", "markdown", "--plot", str(png))
    assert res.exit_code == 0, res.output
    assert "| point |" in res.stdout and "loss_f_eval" in res.stdout


def test_single_evaluation_per_trial_notes_and_shows_the_final_front(sweep_dir):
    ev = pd.read_parquet(sweep_dir / "evals.parquet")
    last = ev.sort_values("eval_step").groupby("trial_id").tail(1)  # eval.every 0: the end only
    pq.write_table(pa.Table.from_pandas(last, preserve_index=False), sweep_dir / "evals.parquet")
    res = frontier_cli("--results", str(sweep_dir), "--points", "evals", "--format", "csv")
    assert res.exit_code == 0, res.output
    assert "one evaluation only (eval.every was 0)" in res.stderr
    final = frontier_cli("--results", str(sweep_dir), "--format", "csv")
    assert res.stdout == final.stdout and res.stdout.startswith("trial_id,")


def test_points_evals_without_evals_parquet_exits_2(sweep_dir):
    (sweep_dir / "evals.parquet").unlink()
    res = frontier_cli("--results", str(sweep_dir), "--points", "evals")
    assert res.exit_code == 2
    assert "no evals.parquet" in res.stderr and "Drop --points evals" in res.stderr


# -------------------------------------------------------------------------- a real sweep
def test_points_evals_agrees_with_a_brute_force_front_of_evals_parquet(sgd_sweep, tmp_path):
    """Every plane the CLI prints for a real sweep: its non-dominated points are exactly those
    of a pairwise float64 check over evals.parquet (read here with pyarrow, directions from the
    trials' metadata), each dominated point names real dominators, and per method too."""
    ev = pq.read_table(sgd_sweep / "evals.parquet").to_pandas()
    meta = pq.read_schema(sgd_sweep / "trials.parquet").metadata
    directions = json.loads(meta[b"pareto.metric_directions"])
    status = pq.read_table(sgd_sweep / "trials.parquet", columns=["trial_id", "status"]).to_pandas()
    assert (ev.groupby("trial_id").size() > 1).any()  # a real path, not the final point only
    png = tmp_path / "paths.png"
    res = frontier_cli("--results", str(sgd_sweep), "--points", "evals", "--format", "json", "--plot", str(png))
    assert res.exit_code == 0, res.output
    assert png.stat().st_size > 0
    planes = json.loads(res.stdout)["planes"]
    assert planes
    ok = set(status.loc[status["status"] == "ok", "trial_id"])
    for plane in planes:
        cols = [c for c, _ in plane["objectives"]]
        dirs = [directions[c] for c in cols]
        sub = ev[ev["trial_id"].isin(ok)].dropna(subset=cols)
        sub = sub[np.isfinite(sub[cols].to_numpy(float)).all(axis=1)]
        names = [f"{t}@{s}" for t, s in zip(sub["trial_id"], sub["eval_step"])]
        mask = brute_front(sub[cols].to_numpy(), dirs)
        rows = {r["point"]: r for r in plane["rows"]}
        assert set(rows) == set(names)
        assert {n for n, m in zip(names, mask) if m} == {n for n, r in rows.items() if not r["dominated"]}
        vals = dict(zip(names, sub[cols].to_numpy(float)))
        for n, r in rows.items():
            for d in filter(None, (r["dominated_by"] or "").split(",")):
                assert not brute_front(np.stack([vals[n], vals[d]]), dirs)[0], (n, d)  # d dominates n
            assert bool(r["dominated_by"]) == r["dominated"]
