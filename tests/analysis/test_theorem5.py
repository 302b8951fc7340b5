"""analysis.theorem5 on synthetic steps with known answers, and NGDiff on random gradients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.theorem5 import RTOL, failures, lemma4_violations, step_checks, summarize

NAN = float("nan")


def steps(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"trial_id": ["a"] * n, "step": list(range(n)), "gram_rr": [1.0] * n, "gram_rf": [0.0] * n,
            "gram_ff": [1.0] * n, "w_r": [1.0] * n, "w_f": [1.0] * n, "dot_r_upd": [1.0] * n,
            "dot_f_upd": [-1.0] * n, "lr": [0.1] * n, "autolr_gd": [NAN] * n, "autolr_dhd": [NAN] * n,
            "loss_r": [1.0] * n, "loss_f": [1.0] * n, "loss_r_after": [NAN] * n, "loss_f_after": [NAN] * n}
    base.update(cols)
    return pd.DataFrame(base)


def as_list(series) -> list:
    return ["nan" if (isinstance(v, float) and np.isnan(v)) else v for v in series]


def test_eq5_with_relative_tolerance():
    # scale s_R = |w_r|·rr + |w_f|·|rf| = 1·1 + 1·1 = 2; tolerance 2e-6 at rtol 1e-6
    s = steps(gram_rf=[1.0] * 5, dot_r_upd=[0.0, -1e-6, -3e-6, 1.0, NAN],
              dot_f_upd=[-1.0, -1.0, -1.0, 1.5e-6, -1.0])
    c = step_checks(s, rtol=1e-6)
    assert RTOL == 1e-4 and step_checks(s)["eq5"].iloc[2] is True
    assert as_list(c["eq5_r"]) == [True, True, False, True, "nan"]
    assert as_list(c["eq5_f"]) == [True, True, True, True, True]
    assert as_list(c["eq5"]) == [True, True, False, True, "nan"]
    assert as_list(step_checks(s, rtol=0.0)["eq5"]) == [True, False, False, False, "nan"]


def test_lr_bound_only_where_curvature_was_measured_and_positive():
    s = steps(lr=[0.1, 0.3, 0.1, 0.1, 0.1, 0.1],
              autolr_gd=[1.0, 1.0, -1.0, 1.0, 1.0, NAN],
              autolr_dhd=[8.0, 8.0, 8.0, -2.0, 0.0, NAN])
    c = step_checks(s)
    # bound 2·gd/dhd = 0.25: 0.1 passes, 0.3 fails; gd < 0: fails; dhd ≤ 0: not applicable
    assert as_list(c["lr_bound"]) == [True, False, False, "nan", "nan", "nan"]
    assert c["bound_eta"].iloc[0] == pytest.approx(0.25)
    assert c["bound_ratio"].iloc[0] == pytest.approx(0.4) and np.isnan(c["bound_ratio"].iloc[2])
    assert as_list(c["descent_r"]) == [True, True, False, True, True, "nan"]


def test_autolr_eta_star_is_half_the_bound():
    gd, dhd = 2.5, 1e4
    c = step_checks(steps(lr=[gd / dhd], autolr_gd=[gd], autolr_dhd=[dhd]))
    assert c["bound_ratio"].iloc[0] == pytest.approx(0.5) and c["lr_bound"].iloc[0] is True


def test_realised_improvement_is_nan_where_not_measured():
    s = steps(loss_r_after=[0.9, 1.1, 0.9, NAN, 1.0], loss_f_after=[1.1, 1.1, 0.9, 1.2, 1.2])
    c = step_checks(s)
    assert as_list(c["improved_r"]) == [True, False, True, "nan", False]  # equal is not an improvement
    assert as_list(c["improved_f"]) == [True, True, False, True, True]
    assert as_list(c["improved"]) == [True, False, False, "nan", False]


def test_summaries_failures_and_lemma4():
    s = pd.concat([
        steps(dot_r_upd=[1.0, -1.0, 1.0], loss_r_after=[0.5, 0.5, NAN], loss_f_after=[2.0, 0.5, NAN]),
        steps(dot_r_upd=[1.0, 1.0], autolr_gd=[1.0, NAN], autolr_dhd=[1.0, NAN]).assign(trial_id="b"),
    ], ignore_index=True)
    trials = pd.DataFrame({"trial_id": ["a", "b"], "combiner": ["gdiff", "ngdiff"],
                           "method": ["gdiff(c=0.2)", "ngdiff"], "lr_rule": ["fixed", "autolr"]})
    c = step_checks(s)
    per_trial = summarize(c).set_index("trial_id")
    assert per_trial.loc["a", "eq5"] == pytest.approx(2 / 3) and per_trial.loc["a", "eq5_n"] == 3
    assert per_trial.loc["a", "improved"] == pytest.approx(0.5) and per_trial.loc["a", "improved_n"] == 2
    assert np.isnan(per_trial.loc["a", "lr_bound"]) and per_trial.loc["a", "lr_bound_n"] == 0
    per_method = summarize(c, trials).set_index("method")
    assert per_method.loc["ngdiff", "lr_bound"] == 1.0 and per_method.loc["ngdiff", "lr_bound_n"] == 1
    assert per_method.loc["ngdiff", "lr_rule"] == "autolr" and per_method.loc["ngdiff", "trials"] == 1
    assert failures(c, "eq5")[["trial_id", "step"]].values.tolist() == [["a", 1]]
    assert lemma4_violations(c, trials).empty
    assert len(lemma4_violations(c, trials.assign(combiner=["ngdiff", "gdiff"]))) == 1


def _ngdiff_steps(g_r: np.ndarray, g_f: np.ndarray) -> pd.DataFrame:
    """What the engine records for NGDiff: fp32 gradients, Gram entries summed in fp32."""
    r, f = g_r.astype(np.float32), g_f.astype(np.float32)
    rr, rf, ff = float(r @ r), float(r @ f), float(f @ f)
    nr, nf = np.sqrt(rr), np.sqrt(ff)
    w_r, w_f = (1 / nr if nr else 0.0), (1 / nf if nf else 0.0)
    return steps(gram_rr=[rr], gram_rf=[rf], gram_ff=[ff], w_r=[w_r], w_f=[w_f],
                 dot_r_upd=[w_r * rr - w_f * rf], dot_f_upd=[w_r * rf - w_f * ff])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 1e-9, 1e-6, 1e-3, 1.0]),
       st.sampled_from([1.0, -1.0]), st.sampled_from([1e-3, 1.0, 1e3]))
def test_lemma4_holds_for_ngdiff_within_the_tolerance(seed, noise, sign, scale):
    """Random and nearly (anti)parallel gradients: Eq. 5 holds up to float rounding."""
    rng = np.random.default_rng(seed)
    g_r = rng.standard_normal(4096) * scale
    g_f = sign * g_r * rng.uniform(0.1, 10) + noise * rng.standard_normal(4096)
    c = step_checks(_ngdiff_steps(g_r, g_f), rtol=1e-5)  # 10x tighter than the default
    assert c["eq5"].iloc[0] is True


def test_the_tolerance_is_needed_for_nearly_parallel_gradients():
    """Exact ≥ 0 flags float rounding: about half of nearly parallel NGDiff steps 'fail'."""
    rng = np.random.default_rng(0)
    exact = []
    for _ in range(200):
        g_r = rng.standard_normal(4096)
        s = _ngdiff_steps(g_r, g_r * rng.uniform(0.1, 10) + 1e-9 * rng.standard_normal(4096))
        exact.append(step_checks(s, rtol=0.0)["eq5"].iloc[0])
        assert step_checks(s)["eq5"].iloc[0] is True
    assert exact.count(False) > 20
