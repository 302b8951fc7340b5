"""The objectives × rules table (analysis.tables.objective_rule_table) on trials with known means,
and the report section that shows it."""

import json

import pandas as pd

from analysis.tables import objective_rule_table


def _trial(tid, combiner, objective, lr, seed, f, u, params=None):
    return {"trial_id": tid, "status": "ok", "combiner": combiner, "combiner_params": json.dumps(params or {}),
            "objective": objective, "lr_rule": "fixed" if combiner != "no-unlearn" else "none",
            "lr": lr, "seed": seed, "rouge_f": f, "utility_r": u}


def test_rows_are_objectives_columns_rules_and_cells_seed_means():
    rows = [_trial("t0", "no-unlearn", "ga", None, 0, 0.99, 0.98)]
    for s in (0, 1):
        rows += [_trial(f"a{s}", "ngdiff", "ga", 1e-3, s, 0.1 + 0.1 * s, 0.5),
                 _trial(f"b{s}", "ngdiff", "idknll", 1e-3, s, 0.3, 0.8 + 0.1 * s),
                 _trial(f"c{s}", "gdiff", "idknll", 1e-4, s, 0.6, 0.9, {"c": 0.5})]
    t = objective_rule_table(pd.DataFrame(rows), "rouge_f", "utility_r")
    assert list(t.index) == ["ga", "idknll"]  # ga first, the baseline left out
    assert set(t.columns) == {"NGDiff (η=1e-03)", "GDiff-0.5 (η=1e-04)"}
    assert t.loc["ga", "NGDiff (η=1e-03)"] == "0.150 / 0.500" and t.loc["idknll", "NGDiff (η=1e-03)"] == "0.300 / 0.850"
    assert t.loc["ga", "GDiff-0.5 (η=1e-04)"] == "–"  # not run


def test_one_objective_gives_no_table():
    rows = [_trial("a", "ngdiff", "ga", 1e-3, 0, 0.1, 0.5), _trial("b", "gdiff", "ga", 1e-3, 0, 0.2, 0.6, {"c": 0.5})]
    assert objective_rule_table(pd.DataFrame(rows), "rouge_f", "utility_r").empty
