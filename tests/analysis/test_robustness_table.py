"""analysis.robustness: before / after per setting, the share of the forgetting each attack undoes
(against No-unlearn under the same attack), the verdict, and the report's section."""

import numpy as np
import pandas as pd
import pytest

from analysis.report import _robustness_section
from analysis.results import Results
from analysis.robustness import has_robustness, robustness_metric, robustness_table

DIRECTIONS = {"rouge_f": "min", "half_rouge_f": "min", "relearn_rouge_f": "min", "quant_rouge_f": "min",
              "para_rouge_f": "min", "utility_r": "max"}


def trial(combiner, lr, half, relearn, quant, para, seed=0, status="ok"):
    return {"trial_id": f"t{combiner}{lr}{seed}", "combiner": combiner, "combiner_params": "{}", "objective": "ga",
            "lr_rule": "none" if combiner == "no-unlearn" else "fixed", "lr": lr, "seed": seed, "status": status,
            "rouge_f": half + 0.01, "half_rouge_f": half, "relearn_rouge_f": relearn, "quant_rouge_f": quant,
            "para_rouge_f": para, "utility_r": 0.2 if combiner == "gdiff" else 0.8}


@pytest.fixture
def trials():
    return pd.DataFrame([
        trial("no-unlearn", float("nan"), 1.0, 1.0, 0.98, 0.6),
        trial("ngdiff", 1e-3, 0.2, 0.3, 0.2, 0.1),  # relearning undoes 0.1 of a 0.8 gap: deep
        trial("ngdiff", 1e-3, 0.4, 0.5, 0.4, 0.3, seed=1),  # seed mean: half 0.3, relearn 0.4
        trial("gdiff", 1e-4, 0.5, 0.9, 0.5, 0.6),  # relearning undoes 0.8 of 0.5: shallow
        trial("lossnorm", 1e-4, 0.99, 0.99, 0.99, 0.6),  # forgot nothing
        trial("pcgrad", 1e-4, 0.5, 0.9, 0.5, 0.6, status="diverged"),  # excluded
    ])


def test_undone_is_the_share_of_the_gap_to_no_unlearn_under_the_same_attack(trials):
    tab = robustness_table(trials, "rouge_f", "min").set_index("setting")
    assert list(tab.index) == ["No-unlearn", "NGDiff (η=1e-03)", "GDiff (η=1e-04)", "LossNorm (η=1e-04)"]
    ng = tab.loc["NGDiff (η=1e-03)"]
    assert ng["seeds"] == 2 and ng["before (half)"] == pytest.approx(0.3) and ng["relearn"] == pytest.approx(0.4)
    assert ng["Δ relearn"] == pytest.approx(0.1)
    assert ng["undone relearn"] == pytest.approx(1 - (1.0 - 0.4) / (1.0 - 0.3))
    assert ng["undone quantised"] == pytest.approx(1 - (0.98 - 0.3) / 0.7)
    assert ng["undone paraphrased"] == pytest.approx(1 - (0.6 - 0.2) / 0.7)
    assert ng["forgetting"] == "deep"
    assert ng["± relearn"] == pytest.approx(np.std([1 - 0.7 / 0.8, 1 - 0.5 / 0.6], ddof=1))  # each seed's own share
    assert pd.isna(tab.loc["GDiff (η=1e-04)", "± relearn"])  # one seed
    assert tab.loc["GDiff (η=1e-04)", "undone relearn"] == pytest.approx(1 - 0.1 / 0.5)
    assert tab.loc["GDiff (η=1e-04)", "forgetting"] == "shallow, retain lost"  # keeps 0.2 / 0.8 of the utility
    assert tab.loc["GDiff (η=1e-04)", "utility_r kept"] == pytest.approx(0.25) and ng["utility_r kept"] == 1
    assert tab.loc["LossNorm (η=1e-04)", "forgetting"] == "too little to say"
    assert pd.isna(tab.loc["No-unlearn", "undone relearn"])


def test_a_higher_is_better_metric_turns_the_sign():
    rows = [trial("no-unlearn", float("nan"), 0.1, 0.1, 0.1, 0.5), trial("ngdiff", 1e-3, 2.1, 1.1, 2.1, 0.5)]
    t = pd.DataFrame(rows).rename(columns=lambda c: c.replace("rouge_f", "loss_f_eval"))
    tab = robustness_table(t, "loss_f_eval", "max").set_index("setting")
    assert tab.loc["NGDiff (η=1e-03)", "undone relearn"] == pytest.approx(0.5)
    assert tab.loc["NGDiff (η=1e-03)", "forgetting"] == "partial"


def test_the_report_section_appears_only_with_the_columns(trials):
    assert has_robustness(trials) and robustness_metric(trials) == "rouge_f"
    assert not has_robustness(trials.drop(columns=[c for c in trials if c.startswith("half_")]))
    html = _robustness_section(Results("x", trials, directions=DIRECTIONS))
    assert '<h2 id="robustness">Robustness</h2>' in html and "shallow" in html and "deep" in html
    assert "<li><b>deep</b>: NGDiff (η=1e-03)</li><li><b>shallow, retain lost</b>: GDiff (η=1e-04)</li>" in html


def test_the_relearning_curve_gives_each_k_its_seed_mean_and_share_undone_against_no_unlearn_at_that_k():
    import json

    from analysis.robustness import relearning_curve

    def with_curve(row, curve):
        return {**row, "metric_settings": json.dumps({"relearn_rouge_f": {"curve": {str(k): v for k, v in curve.items()}}})}

    t = pd.DataFrame([
        with_curve(trial("no-unlearn", float("nan"), 1.0, 0.9, 1.0, 0.6), {0: 1.0, 5: 0.95, 10: 0.9}),
        with_curve(trial("ngdiff", 1e-3, 0.2, 0.5, 0.2, 0.1), {0: 0.2, 5: 0.3, 10: 0.5}),
        with_curve(trial("ngdiff", 1e-3, 0.4, 0.7, 0.4, 0.3, seed=1), {0: 0.4, 5: 0.5, 10: 0.7}),
        trial("gdiff", 1e-4, 0.5, 0.9, 0.5, 0.6),  # a scalar relearn_steps: no curve, left out
    ])
    curve = relearning_curve(t, "rouge_f", "min").set_index(["setting", "K"])
    assert list(curve.index.get_level_values(0).unique()) == ["No-unlearn", "NGDiff (η=1e-03)"]
    ng = curve.loc["NGDiff (η=1e-03)"]
    assert list(ng.index) == [0, 5, 10] and (ng["seeds"] == 2).all()
    assert ng.loc[5, "value"] == pytest.approx(0.4)
    assert ng.loc[0, "undone"] == pytest.approx(0) and ng.loc[5, "undone"] == pytest.approx(1 - (0.95 - 0.4) / 0.7)
    assert ng.loc[10, "undone"] == pytest.approx(1 - (0.9 - 0.6) / 0.7)
    assert curve.loc["No-unlearn", "undone"].isna().all()
    html = _robustness_section(Results("x", t, directions=DIRECTIONS))
    assert "Relearning curve" in html and "0.400 (21%)" in html and 'alt="Relearning curve"' in html
    assert relearning_curve(t.drop(columns="metric_settings"), "rouge_f", "min").empty
