"""`pareto frontier --eaf A,B`: the EAF difference of two methods over their seeds, as the analysis
computes it, and each bad input exits 2 naming the fix."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from analysis.attainment import eaf_difference
from analysis.results import load_results, resolve_objectives
from pareto.cli import main


@pytest.fixture()
def sweep(tmp_path):
    rng = np.random.default_rng(7)
    rows = [{"trial_id": "t000", "combiner": "no-unlearn", "seed": 0, "lr": 0.0}]
    for comb in ("ngdiff", "gdiff"):
        for seed in range(3):
            for lr in (1e-4, 3e-4, 1e-3):
                rows.append({"trial_id": f"t{len(rows):03d}", "combiner": comb, "seed": seed, "lr": lr})
    t = pd.DataFrame(rows).assign(
        status="ok", objective="ga", lr_rule="fixed", combiner_params="{}",
        spec=json.dumps({"name": "e", "data": {"source": "embedded"}}),
        rouge_f=rng.random(len(rows)), utility_r=rng.random(len(rows)),
        loss_f_eval=rng.random(len(rows)) * 5, loss_r_eval=rng.random(len(rows)))
    t.loc[t.combiner == "gdiff", "rouge_f"] += 0.2
    t.to_parquet(tmp_path / "trials.parquet")
    return tmp_path


def test_eaf_prints_the_analysis_table_and_draws_it(sweep, tmp_path):
    r = CliRunner().invoke(main, ["frontier", "--results", str(sweep), "--eaf", "ngdiff,gdiff", "--x", "rouge_f",
                                  "--y", "utility_r", "--format", "csv", "--plot", str(tmp_path / "eaf.png")])
    assert r.exit_code == 0, r.output
    res = load_results(sweep)
    tr, objs = resolve_objectives(res.trials, ["rouge_f", "utility_r"], {"rouge_f": "min", "utility_r": "max"})
    expected = eaf_difference(tr, objs, "ngdiff", "gdiff")
    got = pd.read_csv(io.StringIO(r.stdout))
    assert len(got) == len(expected) > 0
    np.testing.assert_allclose(got["diff"], expected["diff"])
    assert "3 seeds" in r.stderr and "region(s) favour NGDiff" in r.stderr
    assert (tmp_path / "eaf.png").stat().st_size > 1000


@pytest.mark.parametrize("args, message", [
    (["--eaf", "ngdiff"], "--eaf takes two methods"),
    (["--eaf", "ngdiff,pcgrad"], "no trials of method 'pcgrad'. Methods in this sweep: gdiff, ngdiff, no-unlearn"),
    (["--eaf", "ngdiff,gdiff", "--objectives", "rouge_f,utility_r,loss_f_eval"], "give --x and --y"),
])
def test_bad_eaf_input_exits_2_naming_the_fix(sweep, args, message):
    r = CliRunner().invoke(main, ["frontier", "--results", str(sweep), *args])
    assert r.exit_code == 2 and message in r.output, r.output
