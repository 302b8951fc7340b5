"""The data each figure is drawn from (not pixels), that each figure file exists and opens, and
the self-contained HTML report."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analysis import figures as F
from analysis import plots as P
from analysis.frontier import frontier_table
from analysis.report import build_report, write_report
from analysis.results import DEFAULT_PLANES, load_results, resolve_objectives


@pytest.fixture
def r(sweep_dir):
    return load_results(sweep_dir)


def _opens(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        return im.size


def test_fig1_data_joins_static_c_gdiff_in_c_order(r):
    d = F.fig1_data(r.trials, DEFAULT_PLANES["tofu"])
    assert set(d["plane"]) == {"loss_f_eval vs loss_r_eval", "rouge_f vs utility_r"}
    rouge = d[d["plane"] == "rouge_f vs utility_r"]
    assert len(rouge) == 7  # the failed and the diverged trial are not drawn
    lines = rouge[rouge["line"].notna()]
    assert set(lines["line"]) == {"GDiff, c sweep (η=1e-04)", "GDiff, c sweep (AutoLR)"}
    for _, part in lines.groupby("line"):
        assert part["c"].tolist() == [0.2, 0.8]  # drawn in c order
    markers = rouge[rouge["line"].isna()].set_index("trial_id")
    assert sorted(markers.index) == ["t000", "t005", "t006"]
    assert (markers.loc["t006", "x"], markers.loc["t006", "y"]) == (0.20, 0.93)


def test_fig5_data_norms_from_the_gram_matrix(r):
    d = F.fig5_data(r.steps, r.trials)
    assert set(d["trial_id"]) == {"t005", "t006"}  # NGDiff's trials
    s = r.steps.set_index(["trial_id", "step"])
    for rec in d.to_dict("records"):
        row = s.loc[(rec["trial_id"], rec["step"])]
        assert rec["norm_r"] == pytest.approx(np.sqrt(row["gram_rr"]))
        assert rec["norm_f"] == pytest.approx(np.sqrt(row["gram_ff"]))
        assert rec["c_t"] == row["c_t"] and rec["lr"] == row["lr"]
    assert set(F.fig5_data(r.steps, r.trials, combiners=("nash",))["trial_id"]) == set(r.steps["trial_id"])


def test_curves_data_start_at_the_baseline_and_hold_step_losses(r):
    d = F.curves_data(r.evals, r.steps, r.trials, ["rouge_f", "utility_r", "verbmem_f"])
    assert list(dict.fromkeys(d["quantity"])) == ["rouge_f", "utility_r", "loss_f", "loss_r"]  # verbmem_f: none
    one = d[(d["trial_id"] == "t006") & (d["quantity"] == "rouge_f")]
    assert one["step"].tolist() == [0, 2, 4] and one["value"].tolist() == pytest.approx([0.95, 0.575, 0.20])
    steps = d[(d["trial_id"] == "t006") & (d["quantity"] == "loss_f")]
    assert steps["step"].tolist() == [0, 1, 2, 3] and (steps["source"] == "step").all()
    assert "t000" not in set(d["trial_id"])
    ng = F.curves_data(r.evals, r.steps, r.trials, ["rouge_f"], combiners=["ngdiff"])
    assert set(ng["setting"]) == {"NGDiff (η=1e-04)", "NGDiff (AutoLR)"}


def test_agreement_data(r):
    d = F.agreement_data(r.steps, r.trials)
    assert np.allclose(d.loc[d["method"] == "ngdiff", "cos"], 1.0)
    assert len(d) == len(r.steps)


def test_every_figure_file_exists_and_opens(r, tmp_path):
    planes = DEFAULT_PLANES["tofu"]
    tables = []
    for plane in planes + (("rouge_f", "utility_r", "loss_r_eval"),):
        tr, objs = resolve_objectives(r.trials, list(plane), r.directions)
        tables.append(frontier_table(tr, objs))
    figs = {
        "fig1": P.fig1(F.fig1_data(r.trials, planes), r.directions),
        "fig5": P.fig5(F.fig5_data(r.steps, r.trials)),
        "fig6": P.curves(F.curves_data(r.evals, r.steps, r.trials, ["rouge_f", "utility_r"]), "Fig. 6"),
        "fig7": P.curves(F.curves_data(r.evals, r.steps, r.trials, ["rouge_f"], ["ngdiff"]), "Fig. 7",
                         color_by="setting"),
        "frontier": P.frontier(tables, r.directions),
        "agreement": P.agreement(F.agreement_data(r.steps, r.trials)),
        "empty": P.curves(F.curves_data(r.evals.iloc[:0], r.steps.iloc[:0], r.trials, ["rouge_f"]), "empty"),
    }
    for name, fig in figs.items():
        path = tmp_path / f"{name}.png"
        P.save(fig, path)
        w, h = _opens(path)
        assert w > 300 and h > 200, name


def test_report_is_one_self_contained_page(sweep_dir, tmp_path):
    out = write_report(sweep_dir, tmp_path / "sub" / "report.html")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for section in ("Frontier (Definition 1)", "Hypervolume", "Fig. 1", "Table 1", "Table 3",
                    "Theorem 5", "Lemma 4 holds on 8/8 NGDiff steps", "Direction agreement", "Fig. 5",
                    "Fig. 6", "Fig. 7", "Fig. 4", "Not probed yet", "pareto probe --results DIR", "Tuning budget",
                    "k for 90 %", "Attainment across seeds", "Training paths", "mid-path", "Picks per rule",
                    "knee of rouge_f ↓ vs utility_r ↑", "at matched rouge_f"):
        assert section in page, section
    assert "status=failed" in page and "status=diverged" in page  # left out, and listed
    srcs = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert len(srcs) == 9  # frontier, training paths, budget × 2 planes, Fig. 1, agreement, Figs. 5, 6, 7
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.format == "PNG" and im.size[0] > 300
    assert not re.search(r'(src|href)="(https?:|//|file:)', page)  # nothing to fetch: readable offline


def test_report_without_steps_or_baseline(sweep_dir):
    r = load_results(sweep_dir)
    r.steps = r.steps.iloc[:0]
    r.trials = r.trials[r.trials["combiner"] != "no-unlearn"]
    page = build_report(r)
    assert "No steps.parquet" in page and "no default reference point" in page


def test_no_analysis_module_imports_torch_or_pareto():
    import subprocess
    import sys
    from pathlib import Path

    mods = ["results", "dominance", "frontier", "hypervolume", "theorem5", "agreement", "tables",
            "figures", "plots", "report", "interactive"]
    code = ("import sys; " + "; ".join(f"import analysis.{m}" for m in mods) + "; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pareto')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True)


def test_report_of_a_muse_sweep_uses_its_3_objective_plane(tmp_path):
    from synthetic_sweep import write_sweep

    r = load_results(write_sweep(tmp_path / "m", source="muse_news"))
    assert r.dataset == "muse"
    d = F.fig1_data(r.trials, DEFAULT_PLANES["muse"])
    assert set(d["plane"]) == {"loss_f_eval vs loss_r_eval", "verbmem_f vs knowmem_r"}
    page = build_report(r)
    assert "verbmem_f ↓ vs knowmem_f ↓ vs knowmem_r ↑" in page and "Table 2" in page
    # frontier, training paths, budget (the loss plane; the 3-objective plane has none), Fig. 1, Figs. 5, 6, 7
    assert "Knowmem ↓ (knowmem_f)" in page and page.count("data:image/png;base64,") == 8
    # picks on the final evaluations (this synthetic evals.parquet has no MUSE metric): first-below-retain
    # needs the Retrain model's knowmem_f, recorded with target.retain_model: true
    from dataclasses import replace

    from analysis.pick import candidates, first_below

    r = replace(r, evals=pd.DataFrame())
    assert "recorded no Retrain model" in build_report(r).split('id="picks"')[1].split("<h2")[0]
    ref = float(r.trials["knowmem_f"].median())
    r.trials["reference_metrics"] = json.dumps({"knowmem_f": ref, "knowmem_r": 0.5})
    picks = build_report(r).split('id="picks"')[1].split("<h2")[0]
    assert f"Retrain's knowmem_f = {ref:.4g}" in picks
    assert f"knowmem_f = {ref:.4g}, knowmem_r = 0.5" in build_report(r).split('id="frontier"')[1].split("<h2")[0]
    c = candidates(r.trials, r.evals)
    want = first_below(c[c["combiner"] != "no-unlearn"], "knowmem_f", ref, "knowmem_r", r.directions, by="method")
    section = picks.split("first-below-retain")[1]
    assert len(want) >= 2
    for tid, step in zip(want["trial_id"], want["eval_step"]):
        assert f"<td class=\"t\">{tid}@{step:g}</td>" in section, (tid, step)
