"""`pareto report --interactive`: plotly figures drawn from the same tables as the PNGs (the
numbers embedded in the page are checked against analysis.figures), plotly.js inlined, and a
clear exit 2 without plotly. On the tiny real SGD sweep, with a probe for Fig. 4."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis import figures as F
from analysis.interactive import figure_json
from analysis.report import build_report
from analysis.results import DEFAULT_PLANES, load_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def probed(sgd_sweep, sgd_probes):
    """The sweep's results with its probes as `pareto probe` leaves them (probe.parquet)."""
    r = load_results(sgd_sweep)
    r.probe = pd.concat(sgd_probes.values(), ignore_index=True)
    return r


@pytest.fixture(scope="module")
def page(probed):
    return build_report(probed, interactive=True)


def _points(fig: dict) -> list[tuple]:
    """(trace name, x, y) of every point of every trace."""
    return [(tr.get("name"), x, y) for tr in fig["data"] for x, y in zip(tr["x"], tr["y"])]


def test_plotly_js_is_inlined_once_and_nothing_is_fetched(page):
    lib = '<script type="text/javascript">/**\n* plotly.js'
    assert page.count(lib) == 1
    start = page.index(lib)
    rest = page[:start] + page[page.index("</script>", start):]  # the page without the library's own text
    assert not re.search(r'<script[^>]+src=', rest) and not re.search(r'(src|href)="(https?:|//)', rest)
    for div in ("plot-fig-1", "plot-fig-4", "plot-fig-5", "plot-fig-6", "plot-fig-7"):
        assert page.count(f'<div id="{div}"') == 1 and f'Plotly.newPlot("{div}"' in page, div
    # the figures without a plotly version stay PNG: the frontier plots, the training paths, the
    # tuning-budget curves (two planes) and direction agreement
    assert rest.count("data:image/png;base64,") == 5


def test_fig1_traces_hold_every_trial_of_each_plane(probed, page):
    fig = figure_json(page, "plot-fig-1")
    data = F.fig1_data(probed.trials, DEFAULT_PLANES["tofu"])
    planes = list(dict.fromkeys(data["plane"]))
    assert [a["text"] for a in fig["layout"]["annotations"]] == planes
    for i, plane in enumerate(planes):
        axis = "x" if i == 0 else f"x{i + 1}"
        got = sorted((x, y) for tr in fig["data"] if tr.get("xaxis", "x") == axis for x, y in zip(tr["x"], tr["y"]))
        want = sorted(zip(data.loc[data["plane"] == plane, "x"], data.loc[data["plane"] == plane, "y"]))
        assert got == want, plane
    hover = [h for tr in fig["data"] for h in tr["hovertext"]]
    assert {h.split(" — ")[0] for h in hover} == set(data["trial_id"]) == {"t000", "t001", "t002"}
    names = {tr["name"] for tr in fig["data"]}
    assert names == {"No-unlearn", "NGDiff (fixed η)", "NGDiff (AutoLR)"}


def test_fig5_and_fig6_time_series_are_the_tables(probed, page):
    r = probed
    fig5 = figure_json(page, "plot-fig-5")
    d5 = F.fig5_data(r.steps, r.trials)
    norm_r = [tr for tr in fig5["data"] if tr.get("yaxis", "y") == "y"]  # the ‖g_R‖ panel
    assert len(norm_r) == 2
    for tr in norm_r:
        tid = tr["hovertext"][0].split(" — ")[0]
        part = d5[d5["trial_id"] == tid]
        assert tr["x"] == part["step"].tolist() and np.allclose(tr["y"], part["norm_r"])
        assert np.allclose(tr["y"], np.sqrt(r.steps.loc[r.steps["trial_id"] == tid, "gram_rr"]))
    fig6 = figure_json(page, "plot-fig-6")
    d6 = F.curves_data(r.evals, r.steps, r.trials, ["rouge_f", "utility_r", "loss_f_eval", "loss_r_eval"])
    titles = [a["text"] for a in fig6["layout"]["annotations"]]
    assert titles[-2:] == ["forget loss L_F (training batches)", "retain loss L_R (training batches)"]
    loss_r = [tr for tr in fig6["data"] if tr["yaxis"] == f"y{len(titles)}"]
    for tr in loss_r:
        tid = tr["hovertext"][0].split(" — ")[0]
        want = d6[(d6["trial_id"] == tid) & (d6["quantity"] == "loss_r")]
        assert tr["x"] == want["step"].tolist() == [0, 1, 2, 3]
        assert tr["y"] == want["value"].tolist()
    rouge = [tr for tr in fig6["data"] if tr.get("yaxis", "y") == "y"]
    for tr in rouge:  # each evaluation curve starts at the No-unlearn model (step 0)
        assert tr["x"] == [0, 2, 4]
        assert tr["y"][0] == r.evals.loc[r.evals["trial_id"] == "t000", "rouge_f"].iloc[0]


def test_fig4_interactive_holds_the_probe(probed, page):
    fig = figure_json(page, "plot-fig-4")
    measured = [tr for tr in fig["data"] if tr["name"] == "measured, the step's batches"]
    assert len(measured) == 2 * 3  # L_R and L_F for each of the three probes
    t = probed.probe
    b = t[(t["trial_id"] == "t001") & (t["step"] == 2) & (t["data"] == "batch")].sort_values("eta")
    first_row_r = measured[2]  # probes in (trial, step) order: (t001, 1), (t001, 2), (t002, 0)
    assert first_row_r["x"] == b["eta"].tolist() and first_row_r["y"] == b["loss_r"].tolist()
    full = [tr for tr in fig["data"] if tr["name"] == "measured, all examples"]
    assert len(full) == 2  # only (t001, 2) was probed on every example
    assert sum(1 for s in fig["layout"]["shapes"] if s["line"]["color"] == "#2ca02c") == 6  # η used, each panel


def test_static_report_draws_fig4_from_the_probe_table(probed):
    page = build_report(probed)
    assert "Not probed yet" not in page and 'id="fig4"' in page
    assert page.count("data:image/png;base64,") == 10 and "Plotly" not in page  # with 2 budget plots, paths
    assert "rebuild rel. err." in page and "t002" in page


def test_without_plotly_report_interactive_says_how_to_install(sgd_sweep, tmp_path):
    from real_sweep import pareto

    fake = tmp_path / "noplotly" / "plotly"  # a plotly that cannot be imported, first on the path
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'plotly'\")\n")
    proc = pareto("report", "--results", str(sgd_sweep), "--out", str(tmp_path / "r.html"), "--interactive",
                  env_extra={"PYTHONPATH": str(fake.parent)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'pip install "pareto-unlearn[plotly]"' in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.html").exists()
