"""`pareto probe` (pareto/probe.py): the model at a trial's step K rebuilt from the results, and
the losses along the update it took there (the paper's Fig. 4) — on a tiny real SGD sweep.

The rebuild is exact when, at η = 0, the probe's losses are the recorded loss_r / loss_f of the
step and, at the η the step used, its recorded loss_r_after / loss_f_after."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from analysis import figures as F
from analysis import plots as P
from analysis.results import load_results

pytestmark = pytest.mark.slow


def _batch(t: pd.DataFrame) -> pd.DataFrame:
    return t[t["data"] == "batch"].set_index("eta")


def _h(b: pd.DataFrame) -> float:
    """The smallest positive η of a probe whose −η was probed too (central differences)."""
    return min(e for e in b.index if e > 0 and -e in b.index)


def _recorded(sweep, tid, step) -> dict:
    s = load_results(sweep).steps
    return s[(s["trial_id"] == tid) & (s["step"] == step)].iloc[0].to_dict()


@pytest.mark.parametrize("key", [("t001", 1), ("t001", 2), ("t002", 0)])
def test_the_rebuilt_step_is_the_recorded_one(sgd_sweep, sgd_probes, key):
    t = sgd_probes[key]
    rec = _recorded(sgd_sweep, *key)
    b = _batch(t)
    used = float(t["eta_used"].iloc[0])
    assert used == rec["lr"]
    # η = 0: the model before the step, on the step's own batches
    assert b.loc[0.0, "loss_r"] == pytest.approx(rec["loss_r"], abs=1e-6)
    assert b.loc[0.0, "loss_f"] == pytest.approx(rec["loss_f"], abs=1e-6)
    # η = the step's η: the model after the step (measured every other step in this sweep)
    if key[1] % 2 == 0:
        assert b.loc[used, "loss_r"] == pytest.approx(rec["loss_r_after"], abs=1e-6)
        assert b.loc[used, "loss_f"] == pytest.approx(rec["loss_f_after"], abs=1e-6)
    else:
        assert math.isnan(rec["loss_r_after"]) and math.isnan(t["rec_loss_r_after"].iloc[0])
    # the whole rebuilt step (losses, Gram matrix, η, after-losses) against its row
    assert t["repro_rel_err"].iloc[0] < 1e-6


def test_slope_at_zero_is_minus_g_dot_u_and_the_recorded_dots(sgd_probes):
    """SGD: u = d, so −dL_R/dη at 0 = g_R·d, the recorded dot_r_upd (and g_F·d = dot_f_upd)."""
    for t in sgd_probes.values():
        first = t.iloc[0]
        assert first["gr_u"] == pytest.approx(first["gr_d"], rel=1e-9)  # u = d
        assert first["gr_d"] == pytest.approx(first["rec_dot_r_upd"], rel=1e-4)
        assert first["gf_d"] == pytest.approx(first["rec_dot_f_upd"], rel=1e-4)
        b = _batch(t)
        h = _h(b)
        slope_r = (b.loc[h, "loss_r"] - b.loc[-h, "loss_r"]) / (2 * h)
        slope_f = (b.loc[h, "loss_f"] - b.loc[-h, "loss_f"]) / (2 * h)
        assert slope_r == pytest.approx(-first["gr_u"], rel=0.02)
        assert slope_f == pytest.approx(-first["gf_u"], rel=0.02)


def test_lemma4_ngdiff_lowers_the_retain_loss_and_raises_the_forget_loss_for_small_eta(sgd_probes):
    for t in sgd_probes.values():
        assert t["combiner"].iloc[0] == "ngdiff"
        b = _batch(t)
        h = _h(b)
        assert t["gr_u"].iloc[0] > 0 > t["gf_u"].iloc[0]  # Eq. 5 for the probed direction (u = d)
        assert b.loc[h, "loss_r"] < b.loc[0.0, "loss_r"] < b.loc[-h, "loss_r"]
        assert b.loc[h, "loss_f"] > b.loc[0.0, "loss_f"] > b.loc[-h, "loss_f"]


def test_the_parabola_is_autolrs_own_fit_where_it_probed(sgd_sweep, sgd_probes):
    t = sgd_probes["t002", 0]
    rec = _recorded(sgd_sweep, "t002", 0)
    first = t.iloc[0]
    assert first["fit_source"] == "autolr" and first["eta_in"] == 0.01  # probed at width η = lr
    assert (first["fit_gd"], first["fit_dhd"]) == (rec["autolr_gd"], rec["autolr_dhd"])
    assert first["fit_eta"] == pytest.approx(rec["autolr_eta"]) and first["eta_used"] == rec["autolr_eta"]
    # elsewhere: the same three-point formula, from the probe's own L_R(θ ∓ η_in·u)
    t = sgd_probes["t001", 1]
    first, b, h = t.iloc[0], _batch(t), t["eta_in"].iloc[0]
    assert first["fit_source"] == "three-point"
    plus, minus, l0 = b.loc[-h, "loss_r"], b.loc[h, "loss_r"], b.loc[0.0, "loss_r"]
    assert first["fit_gd"] == pytest.approx((plus - minus) / (2 * h))
    assert first["fit_dhd"] == pytest.approx((plus + minus - 2 * l0) / h ** 2)


def test_the_default_grid_is_symmetric_and_holds_the_special_step_sizes(sgd_probes):
    t = sgd_probes["t001", 1]
    etas = _batch(t).index.to_numpy()
    first = t.iloc[0]
    assert len(etas) > 40 and etas.min() == pytest.approx(-etas.max()) and etas.min() < 0
    for special in (0.0, first["eta_used"], first["eta_in"], -first["eta_in"], first["fit_eta"]):
        assert np.isclose(etas, special, rtol=0, atol=1e-15).any(), special
    assert etas.max() >= 2 * first["fit_eta"]  # past Theorem 5's bound 2η*
    assert (t["data"] == "batch").all()


def test_full_sets_are_measured_when_asked(sgd_probes):
    t = sgd_probes["t001", 2]
    full = t[t["data"] == "full"].set_index("eta")
    assert sorted(full.index) == sorted(_batch(t).index) == [-1e-4, 0.0, 1e-4, 0.005, 0.01]
    assert np.isfinite(full[["loss_r", "loss_f"]].to_numpy()).all()
    assert full.loc[0.01, "loss_f"] > full.loc[0.0, "loss_f"]  # the step raises L_F on all forget examples


def test_fig4_is_drawn_from_the_probe_table(sgd_probes, tmp_path):
    probe = pd.concat(sgd_probes.values(), ignore_index=True)
    d = F.fig4_data(probe)
    for (tid, step), t in sgd_probes.items():
        part = d[(d["trial_id"] == tid) & (d["step"] == step)]
        m = part[(part["kind"] == "measured") & (part["data"] == "batch") & (part["quantity"] == "loss_r")]
        b = _batch(t)
        assert m["eta"].tolist() == b.index.tolist() and m["value"].tolist() == b["loss_r"].tolist()
        rec = part[(part["kind"] == "recorded") & (part["quantity"] == "loss_r")]
        assert rec["value"].iloc[0] == t["rec_loss_r"].iloc[0] and rec["eta"].iloc[0] == 0.0
        par = part[(part["kind"] == "parabola") & (part["quantity"] == "loss_r")]
        first = t.iloc[0]
        expect = b.loc[0.0, "loss_r"] - par["eta"] * first["fit_gd"] + 0.5 * par["eta"] ** 2 * first["fit_dhd"]
        assert np.allclose(par["value"], expect)
    s = F.fig4_summary(probe).set_index(["trial_id", "step"])
    assert abs(s.loc[("t001", 2), "L_R(η) − rec. after"]) < 1e-6
    assert math.isnan(s.loc[("t001", 1), "L_R(η) − rec. after"])  # not measured at step 1
    path = tmp_path / "fig4.png"
    P.save(P.fig4(d, F.fig4_summary(probe)), path)
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 3 * 300  # three probes, one row each


def test_save_probe_keeps_other_probes_and_replaces_the_same_one(sgd_probes, tmp_path):
    from pareto.probe import save_probe

    path = str(tmp_path / "probe.parquet")
    save_probe(sgd_probes["t001", 1], path)
    save_probe(sgd_probes["t002", 0], path)
    save_probe(sgd_probes["t001", 1], path)
    back = pd.read_parquet(path)
    assert back.groupby(["trial_id", "step"]).size().to_dict() == {
        ("t001", 1): len(sgd_probes["t001", 1]), ("t002", 0): len(sgd_probes["t002", 0])}
    save_probe(sgd_probes["t002", 0], str(tmp_path / "p.csv"))
    assert pd.read_csv(tmp_path / "p.csv")["eta"].tolist() == sgd_probes["t002", 0]["eta"].tolist()


def test_bad_input_exits_2_naming_the_problem_and_the_fix(sgd_sweep, tmp_path):
    from pareto.cli import main

    run = str(sgd_sweep)
    for args, expected in [
        (["--results", run, "--trial", "t999", "--step", "0"], "no trial 't999'"),
        (["--results", run, "--trial", "t001", "--step", "4"], "steps 0…3 recorded; step 4 is not one"),
        (["--results", run, "--trial", "t001", "--step", "-1"], "Pass --step between 0 and 3"),
        (["--results", run, "--trial", "t000", "--step", "0"], "No-unlearn baseline"),
        (["--results", str(tmp_path / "missing"), "--trial", "t001", "--step", "0"], "holds no trials.parquet"),
        (["--results", run, "--trial", "t001", "--step", "0", "--etas", "0,abc"], "comma-separated numbers"),
    ]:
        result = CliRunner().invoke(main, ["probe", *args])
        assert result.exit_code == 2, (args, result.output)
        assert isinstance(result.exception, SystemExit), result.exception
        assert expected in result.output and "error:" in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_trial_with_micro_batches_and_autocast_is_replayed_exactly(tmp_path, embedded_target):
    """grad_accum 2 and bf16 autocast: the probe rebuilds the step through the engine (its micro-batches,
    normalisers and autocast) — its gradient dots included, which used to call the loss on a list of
    micro-batches and crash, and ran without the trial's autocast."""
    from real_sweep import SGD_SWEEP, pareto

    from pareto.probe import load_trial, probe_step

    proc = pareto("sweep", "sweeps/quickstart.yaml", "--storage", str(tmp_path), *SGD_SWEEP,
                  "--set", "name=probe_accum", "--set", "unlearn.grad_accum=2", "--set", "unlearn.autocast=bfloat16")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep = tmp_path / "probe_accum"
    t = probe_step(load_trial(str(sweep), "t001", 2), 2, etas=[-1e-4, 1e-4], log=lambda s: None)
    rec = _recorded(sweep, "t001", 2)
    b = _batch(t)
    assert t["repro_rel_err"].iloc[0] < 1e-6
    assert b.loc[0.0, "loss_r"] == pytest.approx(rec["loss_r"], abs=1e-6)
    assert b.loc[float(t["eta_used"].iloc[0]), "loss_r"] == pytest.approx(rec["loss_r_after"], abs=1e-6)
    # SGD: u = d, so the recomputed g·u are the recorded g·d (bf16 forwards: to bf16's precision)
    assert t["gr_u"].iloc[0] == pytest.approx(rec["dot_r_upd"], rel=1e-2)
    assert t["gf_u"].iloc[0] == pytest.approx(rec["dot_f_upd"], rel=1e-2)
