"""The claim checks of analysis/reproduction.py on tables whose answer is known by construction,
the seed interval against scipy's t interval, and the committed page against a fresh generation."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.reproduction import (annotate, claim_autolr, claim_fragile, claim_ngdiff, claim_optimizer,
                                   claim_tradeoff, autolr_rates, rate_grid, step_lengths, claim_theorem5, mean_ci, table3)

RETRAIN = {"rouge_f": 0.15, "utility_r": 0.95}


def trial(tid, combiner, params="{}", rule="fixed", lr=1e-4, seed=0, objective="ga", optimizer="adam", **metrics):
    return {"trial_id": tid, "status": "ok", "combiner": combiner, "combiner_params": params,
            "objective": objective, "lr_rule": rule, "lr": lr, "seed": seed, "optimizer": optimizer, **metrics}


def curve(rule="fixed", lr=1e-4, seeds=(0, 1, 2), good_c=None, noise=0.01, offset=0):
    """Static c: Verbmem and Utility both rise with c (a trade-off), plus an optional c good on both."""
    rows, rng = [], np.random.default_rng(offset)
    for seed in seeds:
        for c in np.round(np.linspace(0, 1, 11), 1):
            v, u = 0.1 + 0.8 * c, 0.2 + 0.7 * c
            if good_c is not None and np.isclose(c, good_c):
                v, u = 0.1, 0.95
            rows.append(trial(f"g{rule}{lr}{seed}{c}", "gdiff", json.dumps({"c": float(c)}), rule, lr, seed,
                              rouge_f=v + noise * rng.standard_normal(), utility_r=u + noise * rng.standard_normal(),
                              truth_ratio_r=0.5))
    return rows


def test_tradeoff_holds_on_a_monotone_curve_and_fails_when_one_c_is_good_on_both_sides():
    assert claim_tradeoff(annotate(pd.DataFrame(curve())), RETRAIN).verdict == "holds"
    v = claim_tradeoff(annotate(pd.DataFrame(curve(good_c=0.5))), RETRAIN)
    assert v.verdict == "does not hold" and v.table["c good on both sides"].iloc[0] == "0.5"


def test_ngdiff_above_the_curve_holds_below_it_does_not():
    base = curve()
    above = [trial(f"n{s}", "ngdiff", seed=s, rouge_f=0.5 + 0.01 * s, utility_r=0.9, truth_ratio_r=0.5) for s in range(3)]
    below = [trial(f"n{s}", "ngdiff", seed=s, rouge_f=0.5 + 0.01 * s, utility_r=0.3, truth_ratio_r=0.5) for s in range(3)]
    assert claim_ngdiff(annotate(pd.DataFrame(base + above))).verdict == "holds"
    v = claim_ngdiff(annotate(pd.DataFrame(base + below)))
    assert v.verdict == "does not hold" and v.table["on the front of seed means"].iloc[0] == "no"


def test_optimizer_ablation_compares_ngdiff_with_the_gdiff_family_front_pooled_over_c_and_rate():
    """Two rates of a static-c family whose front is known: at 1e-2 the points (V, U) = (0.1+0.8c, 0.2+0.7c),
    on the line U = 0.1125 + 0.875·V; at 3e-2 (0.8c, 0.1+0.7c), on U = 0.1 + 0.875·V, just below it. Yet
    no 3e-2 point is dominated (none has a 1e-2 point left of it and above): the pooled front interleaves
    both rates' points, (0.42, 0.48) at 1e-2, (0.48, 0.52) at 3e-2, (0.5, 0.55) at 1e-2, …"""
    rows = []
    for opt in ("adam", "sgd"):
        for lr, dv, du in ((1e-2, 0.1, 0.2), (3e-2, 0.0, 0.1)):
            for seed in range(3):
                for c in np.round(np.linspace(0, 1, 11), 1):
                    rows.append(trial(f"{opt}{lr}{seed}{c}", "gdiff", json.dumps({"c": float(c)}), lr=lr, seed=seed,
                                      optimizer=opt, rouge_f=dv + 0.8 * c, utility_r=du + 0.7 * c, truth_ratio_r=0.5))
    lost = trial("lost", "gdiff", json.dumps({"c": 0.5}), lr=0.1, optimizer="sgd", rouge_f=np.nan, utility_r=np.nan)
    rows.append({**lost, "status": "diverged"})

    def ngdiff(opt, lr, v, u):
        return [trial(f"n{opt}{lr}{s}", "ngdiff", lr=lr, seed=s, optimizer=opt, rouge_f=v, utility_r=u + 0.001 * s,
                      truth_ratio_r=0.5) for s in range(3)]

    # V = 0.42 is the 1e-2 point c = 0.4, Utility 0.48
    above = ngdiff("sgd", 1e-2, 0.42, 0.6) + ngdiff("sgd", 3e-2, 0.42, 0.55) + ngdiff("adam", 1e-2, 0.42, 0.45)
    v = claim_optimizer(annotate(pd.DataFrame(rows + above)))
    assert v.verdict == "holds", v.table
    diff = "Utility − GDiff family front at same Verbmem"
    assert list(v.table[diff]) == ["-0.029 ± 0.002", "0.121 ± 0.002", "0.071 ± 0.002"]  # adam (ignored), sgd, sgd
    assert set(v.table["dominated by GDiff (c, η)"]) == {"none"}
    assert set(v.table["GDiff trials lost (diverged/failed)"]) == {"0 of 66", "1 of 67"}
    # below the front at one rate: six static-c points dominate it, the 1e-2 c = 0.4 one by the most Utility
    below = ngdiff("sgd", 1e-2, 0.42, 0.6) + ngdiff("sgd", 3e-2, 0.45, 0.3)
    v = claim_optimizer(annotate(pd.DataFrame(rows + below)))
    assert v.verdict == "inconclusive"
    worse = v.table[v.table["η"] == "3e-02"].iloc[0]
    assert worse["dominated by GDiff (c, η)"] == "6 points, e.g. (0.4, 1e-02)"
    assert worse[diff].startswith("-0.199 ± ")  # front at 0.45: halfway from (0.42, 0.48) to (0.48, 0.52)
    v = claim_optimizer(annotate(pd.DataFrame(rows + ngdiff("sgd", 1e-2, 0.45, 0.3))))
    assert v.verdict == "does not hold"


def test_optimizer_ablation_does_not_interpolate_across_a_gap_in_the_front():
    """A family with nothing between Verbmem 0.05 and 0.9 (a cliff: one rate forgets nothing, the next
    wrecks the model): an NGDiff point in the gap is not comparable, one next to a front point is."""
    rows = []
    for seed in range(3):
        for c, (v, u) in {0.5: (0.05, 0.1), 0.7: (0.9, 0.98), 0.8: (0.95, 0.985)}.items():
            rows.append(trial(f"g{c}{seed}", "gdiff", json.dumps({"c": c}), lr=0.1, seed=seed, optimizer="sgd",
                              rouge_f=v, utility_r=u, truth_ratio_r=0.5))
    ng = [trial(f"n{lr}{s}", "ngdiff", lr=lr, seed=s, optimizer="sgd", rouge_f=v, utility_r=0.9 + 0.001 * s,
                truth_ratio_r=0.5) for lr, v in ((0.01, 0.5), (0.03, 0.85)) for s in range(3)]
    v = claim_optimizer(annotate(pd.DataFrame(rows + ng)))
    cells = list(v.table["Utility − GDiff family front at same Verbmem"])
    assert cells[0].startswith("not comparable") and v.table["dominated by GDiff (c, η)"].iloc[0] == "none"
    # at 0.85: between (0.05, 0.1) and (0.9, 0.98), 0.05 from the right but 0.8 from the left
    assert cells[1].startswith("not comparable")
    assert v.verdict == "inconclusive"
    near = [trial(f"m{s}", "ngdiff", lr=0.1, seed=s, optimizer="sgd", rouge_f=0.9, utility_r=0.99 + 0.001 * s,
                  truth_ratio_r=0.5) for s in range(3)]  # exactly at a front point: comparable
    v = claim_optimizer(annotate(pd.DataFrame(rows + ng + near)))
    assert list(v.table["Utility − GDiff family front at same Verbmem"])[2] == "0.011 ± 0.002"
    assert v.verdict == "holds"
    one = [trial(f"o{s}", "ngdiff", lr=0.3, seed=s, optimizer="sgd", rouge_f=(0.9, 0.5, 0.5)[s], utility_r=0.3,
                 truth_ratio_r=0.5) for s in range(3)]  # one seed comparable (and far below): no interval
    v = claim_optimizer(annotate(pd.DataFrame(rows + ng + near + one)))
    assert list(v.table["Utility − GDiff family front at same Verbmem"])[3].endswith("for 2 of 3 seeds)")
    assert v.verdict == "holds"


def test_rate_grid_puts_each_setting_in_its_cell_and_counts_lost_seeds():
    rows = [trial(f"n{s}", "ngdiff", lr=0.01, seed=s, optimizer="sgd", rouge_f=0.5 + 0.1 * s, utility_r=0.9,
                  truth_ratio_r=0.7) for s in range(3)]
    rows += [trial(f"g{s}", "gdiff", json.dumps({"c": 0.8}), lr=1.0, seed=s, optimizer="sgd", rouge_f=0.1, utility_r=0.2,
                   truth_ratio_r=0.4) for s in range(3)]
    rows[4] = {**rows[4], "status": "diverged"}
    grid = rate_grid(annotate(pd.DataFrame(rows)))
    assert grid.loc["NGDiff", "η=1e-02"] == "0.600 / 0.900 / 0.700"
    assert grid.loc["GDiff-0.8", "η=1e+00"] == "0.100 / 0.200 / 0.400 (2 of 3 seeds)"
    assert pd.isna(grid.loc["NGDiff", "η=1e+00"])


def test_step_lengths_equal_the_norm_of_the_combined_gradient():
    """‖d‖ from the recorded Gram matrix and weights against d = w_R·g_R − w_F·g_F built from vectors."""
    rng = np.random.default_rng(0)
    rows, want = [], {}
    for i, (m, lr) in enumerate((("ngdiff", 0.01), ("gdiff", 0.1))):
        norms = []
        for step in range(5):
            g_r, g_f = rng.standard_normal(50), 3 * rng.standard_normal(50)
            w_r, w_f = rng.uniform(0.1, 1, 2)
            norms.append(np.linalg.norm(w_r * g_r - w_f * g_f))
            rows.append({"trial_id": f"t{i}", "step": step, "gram_rr": g_r @ g_r, "gram_rf": g_r @ g_f,
                         "gram_ff": g_f @ g_f, "w_r": w_r, "w_f": w_f})
        want[i] = np.median(norms)
    t = annotate(pd.DataFrame([trial("t0", "ngdiff", lr=0.01, optimizer="sgd"),
                               trial("t1", "gdiff", json.dumps({"c": 0.5}), lr=0.1, optimizer="sgd")]))
    table = step_lengths(t, pd.DataFrame(rows))
    assert table.loc["NGDiff", "η=1e-02"] == f"{want[0]:.3g} / {0.01 * want[0]:.2g}"
    assert table.loc["GDiff-0.5", "η=1e-01"] == f"{want[1]:.3g} / {0.1 * want[1]:.2g}"
    assert pd.isna(table.loc["NGDiff", "η=1e-01"])


def test_autolr_verdict_follows_the_paired_seed_differences():
    rows = []
    for s in range(3):
        for m in ("ngdiff", "lossnorm", "rlw", "pcgrad"):
            rows.append(trial(f"f{m}{s}", m, seed=s, rouge_f=0.6, utility_r=0.8, truth_ratio_r=0.50 + 0.001 * s))
            rows.append(trial(f"a{m}{s}", m, rule="autolr", seed=s, rouge_f=0.4 - 0.002 * s, utility_r=0.8,
                              truth_ratio_r=0.60 + 0.002 * s))
    t = annotate(pd.DataFrame(rows))
    assert claim_autolr(t).verdict == "holds"
    flipped = t.assign(truth_ratio_r=np.where(t["lr_rule"] == "autolr", 0.4, 0.5) + 0.001 * t["seed"])
    assert claim_autolr(flipped).verdict == "does not hold"


def test_fragile_counts_swings_larger_than_the_seed_spread():
    rows = []
    for m, swing in (("ngdiff", 0.5), ("lossnorm", 0.5), ("rlw", 0.01)):
        for i, lr in enumerate((1e-5, 5e-5, 1e-4)):
            for s in range(3):
                rows.append(trial(f"{m}{lr}{s}", m, lr=lr, seed=s, rouge_f=0.9 - swing * i / 2 + 0.005 * s,
                                  utility_r=0.9, truth_ratio_r=0.5))
    v = claim_fragile(annotate(pd.DataFrame(rows)))
    assert v.verdict == "holds" and list(v.table["fragile"]) == ["yes", "yes", "no"]


def test_theorem5_flags_a_lemma4_violation():
    t = annotate(pd.DataFrame([trial("a", "ngdiff", rouge_f=0.5, utility_r=0.5, truth_ratio_r=0.5)]))
    steps = pd.DataFrame({"trial_id": ["a", "a"], "step": [0, 1], "gram_rr": [1.0, 1.0], "gram_rf": [0.5, 0.5],
                          "gram_ff": [1.0, 1.0], "w_r": [1.0, 1.0], "w_f": [1.0, 1.0], "dot_r_upd": [0.5, 0.5],
                          "dot_f_upd": [-0.5, -0.5], "lr": [0.1, 0.1], "autolr_gd": np.nan, "autolr_dhd": np.nan,
                          "loss_r": [1.0, 1.0], "loss_f": [1.0, 1.0], "loss_r_after": [0.9, 1.1],
                          "loss_f_after": [1.1, 1.1]})
    ok = claim_theorem5(t, steps)
    assert ok.verdict == "holds" and "50%" in ok.evidence  # one of two steps improved both
    bad = claim_theorem5(t, steps.assign(dot_r_upd=[0.5, -0.5]))
    assert bad.verdict == "does not hold"


@pytest.mark.parametrize("values", [[0.1, 0.3, 0.2], [1.0, 2.0, 4.0, 8.0]])
def test_mean_ci_is_the_t_interval(values):
    m, h, n = mean_ci(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert n == len(values) and m == pytest.approx(np.mean(values)) and h == pytest.approx((hi - lo) / 2)


def test_tradeoff_ignores_rank_noise_below_the_reported_precision():
    """A rate too small to move Utility (all values equal to 1e-6) is no trade-off, whatever the ranks."""
    rows = curve()
    for r in rows:
        r["utility_r"] = 0.983 + 1e-7 * json.loads(r["combiner_params"])["c"]  # rises with c, but only as float noise
    v = claim_tradeoff(annotate(pd.DataFrame(rows)), RETRAIN)
    assert v.verdict == "does not hold" and v.table["ρ(c, Utility)"].iloc[0] == "constant"


def test_autolr_effects_below_the_printed_precision_count_as_none():
    """A TruthRatio drop of 0.0002 on every seed is significant but invisible at 3 decimals: not 'against'."""
    rows = []
    for s in range(3):
        rows.append(trial(f"f{s}", "ngdiff", seed=s, rouge_f=0.8 + 0.01 * s, utility_r=0.98, truth_ratio_r=0.7390 + 0.001 * s))
        rows.append(trial(f"a{s}", "ngdiff", rule="autolr", seed=s, rouge_f=0.8 + 0.01 * s, utility_r=0.98,
                          truth_ratio_r=0.7388 + 0.001 * s))
    v = claim_autolr(annotate(pd.DataFrame(rows)))
    assert v.table["paper's way"].iloc[0] == "not significant" and v.verdict == "inconclusive"


def test_table3_puts_each_method_without_and_with_autolr_side_by_side():
    rows = [trial(f"f{s}", "ngdiff", lr=5e-5, seed=s, rouge_f=0.8, utility_r=0.98, truth_ratio_r=0.7) for s in range(3)]
    rows += [trial(f"a{s}", "ngdiff", rule="autolr", lr=5e-5, seed=s, rouge_f=0.1 * s, utility_r=0.5, truth_ratio_r=0.6)
             for s in range(3)]
    rows += [trial(f"r{s}", "rlw", lr=5e-5, seed=s, rouge_f=0.7, utility_r=0.9, truth_ratio_r=0.7) for s in range(3)]
    t = table3(annotate(pd.DataFrame(rows)), ["η=5e-05", "AutoLR"])
    assert list(t.index) == ["NGDiff"]  # RLW has no AutoLR run to compare
    assert t.loc["NGDiff", "Verbmem (η=5e-05)"] == "0.800 ± 0.000"
    assert t.loc["NGDiff", "Verbmem (AutoLR)"] == f"0.100 ± {stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3):.3f}"
    assert t.loc["NGDiff", "TruthRatio (AutoLR)"] == "0.600 ± 0.000"


def test_autolr_rates_reads_the_first_fit_the_final_rate_and_the_rejected_fits():
    rows = [dict(trial(f"a{s}", "ngdiff", rule="autolr", lr=1e-4, seed=s, rouge_f=0.1, utility_r=0.1,
                       truth_ratio_r=0.5), final_lr=1e-4 * (10 + s)) for s in range(3)]
    steps = pd.DataFrame({"trial_id": [f"a{s}" for s in range(3) for _ in range(3)],
                          "step": [0, 5, 10] * 3,
                          "lr": [2e-4, 2e-4, 1e-3] * 3,
                          "autolr_accepted": [True, None, False, True, None, True, True, None, False]})
    t = autolr_rates(annotate(pd.DataFrame(rows)), steps)
    assert list(t["method"]) == ["all methods", "NGDiff"]
    row = t.iloc[0]
    assert row["η after 1st fit / start (median)"] == "2×"
    assert row["final η / start (median, max)"] == "11×, 12×"
    assert row["rejected fits"] == "2 of 6"  # the None rows are steps without a fit


def test_the_committed_page_is_what_the_command_generates(tmp_path):
    """docs/reproduction.md is generated from docs/results alone: regenerating it gives the same text,
    so no number on it was typed in or left stale."""
    from pathlib import Path

    from analysis.reproduction import main

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "reproduction.md"
    main(["--results", str(root / "docs/results"), "--out", str(out)])
    committed = (root / "docs/reproduction.md").read_text().splitlines()
    fresh = out.read_text().splitlines()
    assert fresh[1:] == committed[1:], "docs/reproduction.md is stale: rerun python -m analysis.reproduction"
    assert (tmp_path / "reproduction" / "fig1_sgd.png").stat().st_size > 10_000


def test_rule_effects_switch_each_rule_off_and_report_what_moves():
    """On tables built to need them: Utility that rises with c only as float noise is a trend once rule (a)
    is off, and a TruthRatio drop of 0.0002 on every seed is 'against' once rule (b) is off."""
    from analysis.reproduction import rule_effects

    noise = curve()
    for r in noise:  # below the 'good' Utility everywhere, so only the trend decides
        r["utility_r"] = 0.5 + 1e-7 * json.loads(r["combiner_params"])["c"]
    small = []
    for s in range(3):
        small.append(trial(f"f{s}", "ngdiff", seed=s, rouge_f=0.8 + 0.01 * s, utility_r=0.98, truth_ratio_r=0.7390 + 0.001 * s))
        small.append(trial(f"a{s}", "ngdiff", rule="autolr", seed=s, rouge_f=0.8 + 0.01 * s, utility_r=0.98,
                           truth_ratio_r=0.7388 + 0.001 * s))
    table = rule_effects([("1", claim_tradeoff, (annotate(pd.DataFrame(noise)), RETRAIN)),
                          ("3", claim_autolr, (annotate(pd.DataFrame(small)),))]).set_index(["rule", "claim"])
    a = table.loc[("(a) Spearman on rounded values", "1")]
    assert a["with the rule"].startswith("**does not hold**; holds at 0 of 1")
    assert a["without it"].startswith("**holds**; holds at 1 of 1") and "holds no → yes" in a["without it"]
    b = table.loc[("(b) changes below 0.0005 count as none", "3")]
    assert b["with the rule"] == "**inconclusive**; at least one moves against it significantly in 0"
    assert b["without it"].startswith("**does not hold**; at least one moves against it significantly in 1 — ")
    assert "NGDiff: paper's way not significant → against, Δ TruthRatio -0.000 ± 0.000" in b["without it"]
    # claim 2′'s rule is not taken by either function: no row
    assert not any(r.startswith("(c)") for r, _ in table.index)


def _committed_results():
    from pathlib import Path

    from analysis.reproduction import load
    root = Path(__file__).resolve().parents[1] / "docs/results"
    return root, *load(root)


def test_without_the_rules_the_committed_results_read_as_computed_independently():
    """Rule (a) off: claim 1 at 3 of 4 settings (scipy's Spearman on the raw values); rule (b) off:
    claim 3′ has 2 'against' (paired seed intervals that exclude 0, by hand)."""
    from analysis.reproduction import GEN, load

    root, trials, _, _ = _committed_results()
    meta = json.loads((root / "meta.json").read_text())
    ok = trials[(trials["status"] == "ok") & trials["objective"].fillna("ga").eq("ga") & trials["combiner"].eq("gdiff")]
    ok = ok.assign(c=[json.loads(p)["c"] for p in ok["combiner_params"]])
    good_f, good_r = meta["retrain"]["rouge_f"] + 0.1, meta["retrain"]["utility_r"] - 0.1
    holds = []
    for rate, part in ok.groupby("rate"):
        rf, pf = stats.spearmanr(part["c"], part["rouge_f"])
        rr, pr = stats.spearmanr(part["c"], part["utility_r"])
        means = part.groupby("c")[["rouge_f", "utility_r"]].mean()
        both = ((means["rouge_f"] <= good_f) & (means["utility_r"] >= good_r)).any()
        holds.append(rf > 0 and pf < 0.05 and rr > 0 and pr < 0.05 and not both)
    assert (sum(holds), len(holds)) == (3, 4)
    assert claim_tradeoff(trials, meta["retrain"], digits=None).evidence.startswith("holds at 3 of 4")
    assert claim_tradeoff(trials, meta["retrain"]).evidence.startswith("holds at 2 of 4")

    gen = load(root, (GEN,))[0]
    fixed = trials[(trials["sweep"] == "repro_fixed") & (trials["lr_rule"] == "fixed") & np.isclose(trials["lr"], 5e-5)]
    against = 0
    for method, auto in gen.groupby("method"):
        pair = auto.merge(fixed[fixed["method"] == method], on="seed", suffixes=("_a", "_f"))
        signs = []
        for m, bad in (("truth_ratio_r", -1), ("rouge_f", +1)):
            d = pair[f"{m}_a"] - pair[f"{m}_f"]
            lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
            signs.append((lo > 0 and bad > 0) or (hi < 0 and bad < 0))
        against += any(signs)
    with_gen = pd.concat([trials[trials["sweep"] == "repro_fixed"], gen], ignore_index=True)
    assert against == 2
    assert claim_autolr(with_gen, precision=0.0).evidence.endswith(f"significantly in {against}")
    assert claim_autolr(with_gen).evidence.endswith("significantly in 1")


def test_ct_table_and_the_weak_metrics_note_match_the_raw_files():
    """c_t from the recorded Gram diagonal (NGDiff: ‖g_F‖ / (‖g_R‖ + ‖g_F‖)), and the Forget quality and
    Model utility counts from the trials Parquet files read directly."""
    from analysis.reproduction import ct_table, weak_metrics_note

    root, trials, steps, _ = _committed_results()
    ng = trials[(trials["combiner"] == "ngdiff") & (trials["lr_rule"] == "fixed")]
    s = steps[steps["trial_id"].isin(ng["trial_id"])]
    ct = np.sqrt(s["gram_ff"]) / (np.sqrt(s["gram_rr"]) + np.sqrt(s["gram_ff"]))
    row = ct_table(trials, steps).set_index("rate").loc["all fixed rates"]
    assert row["steps"] == len(s) == 675
    assert row["5–95 % range"] == f"{np.quantile(ct, 0.05):.2f} – {np.quantile(ct, 0.95):.2f}" == "0.33 – 0.93"
    assert row["median c_t"] == f"{np.median(ct):.2f}"

    raw = pd.concat([pd.read_parquet(f) for f in sorted(root.glob("repro_*/trials.parquet"))])
    raw = raw[raw["status"] == "ok"]
    from analysis.reproduction import ALL_SWEEPS, load
    note = weak_metrics_note(load(root, ALL_SWEEPS)[0])
    high = raw[raw["forget_quality"] >= 0.05]
    assert f"≥ 0.05 in {len(high)} of {len(raw)} trials" in note and (len(high), len(raw)) == (9, 325)
    assert f"Utility ≤ {high['utility_r'].max():.3f}" in note
    zero = int((raw["model_utility"] == 0).sum())
    assert f"exactly 0 in {zero} of {len(raw)} trials ({zero / len(raw):.0%})" in note
    assert f"{raw['model_utility'].max():.3f}" in note
