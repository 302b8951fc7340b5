"""analysis.pick: every selection rule on small tables whose answer is known by hand, and
`pareto pick` on a tiny real sweep (several evaluations per trial)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.pick import at_forget, candidates, crossings, default_plane, first_below, fq_mu, knee, parse_rule, pick

T_975_DF2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom


def evals(rows, cols=("trial_id", "eval_step", "f", "u")):
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


# ------------------------------------------------------------------------------------- rules
def test_docstring_example_and_no_pareto_or_torch_import():
    import doctest
    import subprocess
    import sys
    from pathlib import Path

    import analysis.pick

    assert doctest.testmod(analysis.pick).failed == 0
    code = ("import sys, analysis.pick as p, pandas as pd; "
            "p.at_forget(pd.DataFrame({'trial_id': ['a', 'a', 'b'], 'eval_step': [1, 2, 1], 'f': [1.0, 0.0, 0.5], "
            "'u': [1.0, 0.0, 0.2], 'seed': [0, 0, 1], 'method': 'm'}), 0.5, 'f', 'u', {}); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pareto')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True)


def test_parse_rule_forms_and_errors():
    assert parse_rule("knee") == ("knee", None)
    assert parse_rule("at-forget=0.03") == ("at-forget", 0.03)
    assert parse_rule(" fq-mu ") == ("fq-mu", None)
    for bad in ("kneee", "at-forget=", "at-forget=abc", "at-forget=nan", "first-below"):
        with pytest.raises(ValueError, match="at-forget|rules"):
            parse_rule(bad)


def test_candidates_every_evaluation_of_ok_trials():
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": ["ok", "failed", "ok"], "method": ["m", "m", "n"],
                           "seed": [0, 0, 1], "steps": [4, 4, 4], "f": [9.0, 9.0, 9.0]})
    ev = evals([("a", 4, 0.1, 0.5), ("a", 2, 0.3, 0.8), ("b", 2, 0.2, 0.2), ("c", 4, 0.4, 0.9)])
    c = candidates(trials, ev)
    assert c[["trial_id", "eval_step"]].values.tolist() == [["a", 2], ["a", 4], ["c", 4]]
    assert c["method"].tolist() == ["m", "m", "n"] and c["f"].tolist() == [0.3, 0.1, 0.4]
    final = candidates(trials, pd.DataFrame())  # no evals: the trials' final metrics at their last step
    assert final[["trial_id", "eval_step", "f"]].values.tolist() == [["a", 4, 9.0], ["c", 4, 9.0]]


def test_knee_known_front_is_invariant_to_scale_and_direction():
    # front a(0, 1), b(.1, .4), c(.5, .3), d(1, 0); e(.6, .6) dominated. Normalised sums 1, .5, .8, 1: b.
    t = pd.DataFrame({"trial_id": list("abcde"), "eval_step": [1, 1, 2, 3, 1],
                      "x": [0, 0.1, 0.5, 1.0, 0.6], "y": [1.0, 0.4, 0.3, 0.0, 0.6]})
    k = knee(t, [("x", "min"), ("y", "min")])
    assert k["trial_id"].tolist() == ["b"] and k["front_size"].tolist() == [4]
    assert k["knee_distance"].iloc[0] == pytest.approx(0.5 / math.sqrt(2))
    # the same front with y as a utility to maximise (1 − y) on another scale: the same knee
    t2 = t.assign(y=100 * (1 - t["y"]) + 7)
    assert knee(t2, [("x", "min"), ("y", "max")])["trial_id"].tolist() == ["b"]
    # a point beyond the line but dominated never wins; one knee per group
    g = pd.concat([t.assign(method="m"), t.assign(method="n", x=t["x"][::-1].values, y=t["y"][::-1].values)])
    g = g.assign(trial_id=g["trial_id"] + g["method"])
    per = knee(g, [("x", "min"), ("y", "min")], by="method")
    assert per[["method", "trial_id"]].values.tolist() == [["m", "bm"], ["n", "dn"]]


def test_knee_ties_and_one_point_front():
    # two front points, both on the line: tie → the first objective's best
    t = pd.DataFrame({"trial_id": ["p", "q", "r"], "eval_step": 1, "x": [0.8, 0.2, 0.9], "y": [0.1, 0.7, 0.9]})
    assert knee(t, [("x", "min"), ("y", "min")])["trial_id"].tolist() == ["q"]
    one = knee(t.iloc[[0]], [("x", "min"), ("y", "min")])
    assert one["trial_id"].tolist() == ["p"] and math.isnan(one["knee_distance"].iloc[0])


def knowmem_table():
    cols = ("trial_id", "eval_step", "knowmem_f", "knowmem_r", "method")
    return evals([
        ("A", 1, 0.5, 0.9, "m"), ("A", 2, 0.3, 0.6, "m"), ("A", 3, 0.1, 0.5, "m"),  # at the reference at step 2
        ("B", 1, 0.4, 0.9, "m"), ("B", 2, 0.2, 0.7, "m"),                          # below at step 2, better utility
        ("C", 1, 0.9, 0.9, "m"), ("C", 2, 0.8, 0.9, "m"), ("C", 3, 0.7, 0.9, "m"),  # never at or below
        ("D", 1, 0.6, 0.99, "m"), ("D", 3, 0.0, 0.99, "m"),                         # below only later
        ("E", 1, 0.9, 0.9, "n"), ("E", 2, 0.45, 0.8, "n"), ("E", 3, 0.6, 0.7, "n"),  # group n never below
    ], cols)


def test_first_below_retain_first_step_then_utility():
    d = {"knowmem_f": "min", "knowmem_r": "max"}
    r = first_below(knowmem_table(), "knowmem_f", 0.3, "knowmem_r", d, by="method")
    m, n = r.iloc[0], r.iloc[1]
    assert (m["method"], m["trial_id"], m["eval_step"], bool(m["reached"])) == ("m", "B", 2, True)
    assert (n["method"], n["trial_id"], n["eval_step"], bool(n["reached"])) == ("n", "E", 2, False)
    assert n["knowmem_f"] == 0.45  # the closest to the reference
    # equal utility at the tied step: the lower metric, then trial_id
    t = knowmem_table()
    t.loc[(t["trial_id"] == "B") & (t["eval_step"] == 2), "knowmem_r"] = 0.6
    assert first_below(t, "knowmem_f", 0.3, "knowmem_r", d)["trial_id"].tolist() == ["B"]
    t.loc[(t["trial_id"] == "B") & (t["eval_step"] == 2), "knowmem_f"] = 0.3
    assert first_below(t, "knowmem_f", 0.3, "knowmem_r", d)["trial_id"].tolist() == ["A"]
    # a lower reference: only D gets there (step 3)
    assert first_below(knowmem_table(), "knowmem_f", 0.05, "knowmem_r", d)[["trial_id", "eval_step"]].values.tolist() == [["D", 3]]


def test_fq_mu_argmax_per_group():
    t = evals([("a", 1, 0.9, 0.1, "m"), ("a", 2, 0.4, 0.8, "m"), ("b", 1, 0.7, 0.6, "m"), ("b", 2, np.nan, 1.0, "m"),
               ("c", 1, 0.2, 0.2, "n")], ("trial_id", "eval_step", "forget_quality", "model_utility", "method"))
    whole = fq_mu(t)
    assert whole[["trial_id", "eval_step"]].values.tolist() == [["b", 1]]
    assert whole["fq_mu"].iloc[0] == pytest.approx(0.65)
    assert fq_mu(t, by="method")["trial_id"].tolist() == ["b", "c"]
    with pytest.raises(KeyError, match="forget_quality"):
        fq_mu(t.drop(columns="forget_quality"))


def at_forget_table():
    cols = ("trial_id", "eval_step", "f", "u", "method", "seed")
    return evals([
        ("a", 2, 0.8, 0.9, "m", 0), ("a", 4, 0.4, 0.7, "m", 0), ("a", 6, 0.0, 0.3, "m", 0),  # 0.2 at step 5: u 0.5
        ("b", 2, 0.3, 0.8, "m", 0), ("b", 4, 0.1, 0.6, "m", 0),                            # 0.2 at step 3: u 0.7
        ("c", 2, 0.5, 0.9, "m", 1), ("c", 4, 0.1, 0.5, "m", 1),                            # 0.2 at 3.5: u 0.6
        ("d", 2, 0.2, 0.8, "m", 2), ("d", 4, 0.1, 0.2, "m", 2),                            # exactly 0.2: u 0.8
        ("e", 2, 0.9, 0.9, "n", 0), ("e", 4, 0.6, 0.8, "n", 0),                            # never reaches 0.2
    ], cols)


def test_crossings_interpolate_between_two_evaluations():
    t = at_forget_table()
    assert crossings(t[t.trial_id == "a"], 0.2, "f", "u") == [pytest.approx((5.0, 0.5))]
    assert crossings(t[t.trial_id == "e"], 0.2, "f", "u") == []
    back = evals([("z", 1, 0.5, 0.9), ("z", 2, 0.1, 0.8), ("z", 3, 0.3, 0.2)])  # down through 0.2 and up again
    assert [tuple(map(float, c)) for c in crossings(back, 0.2, "f", "u")] == [
        pytest.approx((1.75, 0.825)), pytest.approx((2.5, 0.5))]


def test_at_forget_seeds_mean_and_t_interval_and_never_reached():
    r = at_forget(at_forget_table(), 0.2, "f", "u", {"f": "min", "u": "max"}, by="method").set_index("method")
    m = r.loc["m"]
    assert bool(m["reached"]) and m["n_seeds"] == 3 and m["seeds_reached"] == 3
    assert m["utility_mean"] == pytest.approx(0.7)  # seeds: 0 → b 0.7 (a's 0.5 is worse), 1 → 0.6, 2 → 0.8
    half = T_975_DF2 * 0.1 / math.sqrt(3)
    assert (m["ci_low"], m["ci_high"]) == (pytest.approx(0.7 - half), pytest.approx(0.7 + half))
    assert (m["trial_id"], m["eval_step"], m["utility_at_closest"]) == ("d", 2.0, pytest.approx(0.8))
    n = r.loc["n"]
    assert not bool(n["reached"]) and math.isnan(n["utility_mean"]) and n["seeds_reached"] == 0
    assert (n["closest"], n["trial_id"], n["eval_step"], n["utility_at_closest"]) == (0.6, "e", 4, 0.8)
    # one seed: the value, no interval; a utility to minimise picks the lowest crossing
    one = at_forget(at_forget_table().query("seed == 0"), 0.2, "f", "u", {"u": "min"}, by="method")
    assert one.set_index("method").loc["m", "utility_mean"] == pytest.approx(0.5)
    assert math.isnan(one["ci_low"].iloc[0])


def test_at_forget_path_starts_at_the_target():
    t = evals([("a", 4, 0.1, 0.5, "m", 0)], ("trial_id", "eval_step", "f", "u", "method", "seed"))
    assert not at_forget(t, 0.2, "f", "u", {}, by="method")["reached"].iloc[0]
    start = pd.DataFrame({"trial_id": ["t0"], "eval_step": [0], "f": [1.0], "u": [1.0]})
    r = at_forget(t, 0.2, "f", "u", {}, by="method", start=start)
    s = 0.8 / 0.9  # 1.0 → 0.1 passes 0.2 at 8/9 of the way
    assert bool(r["reached"].iloc[0]) and r["eval_step"].iloc[0] == pytest.approx(4 * s)
    assert r["utility_mean"].iloc[0] == pytest.approx(1.0 - 0.5 * s)


def test_all_paths_at_once_match_one_path_at_a_time_and_keep_each_trials_seed():
    """The vectorised crossings of every path equal `crossings` path by path (a start prepended),
    and each trial counts for its own seed (the baseline's seed is not every trial's)."""
    from analysis.pick import _all_crossings

    rng = np.random.default_rng(3)
    rows = [(f"t{i}", s, rng.random(), rng.random(), "m", i % 4) for i in range(60) for s in (2, 4, 6, 8)]
    rows.append(("t7", 10, 0.5, 0.3, "m", 3))  # an exact hit
    t = evals(rows, ("trial_id", "eval_step", "f", "u", "method", "seed"))
    start = pd.DataFrame({"trial_id": ["t0"], "eval_step": [0], "f": [0.95], "u": [1.0], "seed": [0]})
    got = _all_crossings(t, 0.5, "f", "u", "seed", start)
    want = []
    for tid, path in t.groupby("trial_id", sort=True):
        path = pd.concat([start.assign(trial_id=tid), path], ignore_index=True)
        want += [(int(path["seed"].iloc[-1]), tid, st, u) for st, u in crossings(path, 0.5, "f", "u")]
    assert len(want) > 60 and [(int(a), b) for a, b in zip(got["seed"], got["trial_id"])] == [w[:2] for w in want]
    np.testing.assert_allclose(got[["step", "u"]].to_numpy(), [w[2:] for w in want], rtol=0, atol=1e-12)
    r = at_forget(t, 0.5, "f", "u", {"u": "max"}, by="method", start=start)
    assert r["n_seeds"].iloc[0] == 4 and r["seeds_reached"].iloc[0] == 4


def test_pick_dispatch_and_default_plane():
    t = at_forget_table().rename(columns={"f": "rouge_f", "u": "utility_r"}).assign(loss_f_eval=1.0, loss_r_eval=1.0)
    planes = (("loss_f_eval", "loss_r_eval"), ("rouge_f", "utility_r"))
    assert default_plane(planes, t) == ("rouge_f", "utility_r")
    assert default_plane(planes, t.drop(columns="rouge_f")) == ("loss_f_eval", "loss_r_eval")
    with pytest.raises(ValueError, match="no default plane"):
        default_plane(planes, t.drop(columns=["rouge_f", "loss_f_eval"]))
    d = {"rouge_f": "min", "utility_r": "max"}
    r = pick(t, "at-forget=0.2", plane=("rouge_f", "utility_r"), directions=d, by="method")
    assert r.set_index("method").loc["m", "utility_mean"] == pytest.approx(0.7)
    with pytest.raises(LookupError):
        pick(t, "first-below-retain", plane=("rouge_f", "utility_r"), directions=d)


# ----------------------------------------------------------------------------- a real sweep
def test_pick_on_a_real_sweep(sgd_sweep):
    """The tiny real sweep (t000 No-unlearn, t001/t002 NGDiff; evaluations at steps 2 and 4): the
    knee is a front point, and at-forget's value is the interpolation of the evaluations read back."""
    from click.testing import CliRunner

    from analysis.results import load_results
    from pareto.cli import main

    res = load_results(sgd_sweep)
    c = candidates(res.trials, res.evals)
    assert c.groupby("trial_id").size().max() >= 2  # several evaluations per trial
    plane = default_plane(res.default_planes(), c)
    run = CliRunner().invoke(main, ["pick", "--results", str(sgd_sweep), "--rule", "knee", "--format", "json"])
    assert run.exit_code == 0, run.output
    (row,) = json.loads(run.stdout)
    x, y = plane
    pts = c[[x, y]].to_numpy(dtype=float)
    mine = np.array([row[x], row[y]])
    signs = np.array([1 if res.directions.get(n, "min") == "min" else -1 for n in plane])
    better = ((pts * signs <= mine * signs).all(axis=1) & (pts * signs < mine * signs).any(axis=1))
    assert not better.any()  # nothing dominates the knee
    assert ((c["trial_id"] == row["trial_id"]) & (c["eval_step"] == row["eval_step"])).any()

    # at-forget on the loss plane (the forget loss moves at every step), at the midpoint of t001's two
    # evaluations: its crossing is their mean utility; with --from-target every path starts at t000 (step 0)
    x, y = "loss_f_eval", "loss_r_eval"
    path = c[c.trial_id == "t001"].sort_values("eval_step")
    f, u = path[x].to_numpy(dtype=float)[-2:], path[y].to_numpy(dtype=float)[-2:]
    assert f[0] != f[1]
    level = float(f.mean())
    method = res.trials.set_index("trial_id").loc["t001", "method"]
    target = c[c.trial_id == "t000"]
    for flag, start in (("--no-from-target", None), ("--from-target", target)):
        run = CliRunner().invoke(main, ["pick", "--results", str(sgd_sweep), "--rule", f"at-forget={level!r}",
                                        "--x", x, "--y", y, flag, "--format", "json"])
        assert run.exit_code == 0, run.output
        ng = {r["method"]: r for r in json.loads(run.stdout)}[method]
        assert ng["reached"] and ng["forget_metric"] == x and ng["utility_metric"] == y
        expected = []
        for tid in ("t001", "t002"):
            p = c[c.trial_id == tid]
            if start is not None:
                p = pd.concat([start.assign(trial_id=tid), p])
            expected += [uu for _, uu in crossings(p, level, x, y)]
        assert float(u.mean()) in [pytest.approx(e) for e in expected]  # t001's own crossing is the midpoint
        assert ng["utility_mean"] == pytest.approx(min(expected))  # loss_r_eval: lower is better
