"""`pareto frontier`, `pareto check theorem5` and `pareto report` end to end, on one small real
sweep (module-scoped: Ray and the embedded target, ~30 s) and on synthetic result folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def pareto(*args, cwd=ROOT, timeout=600):
    """`python -m pareto ARGS` in ``cwd``; this checkout first on the path, whatever the cwd."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)

sys.path.insert(0, str(Path(__file__).resolve().parent / "analysis"))
from synthetic_sweep import write_sweep  # noqa: E402

SMALL = ("--set", "unlearn.steps=6", "--set", "eval.every=3", "--set", "eval.retain_items=10",
         "--set", "search.space.combiner=[{gdiff: {c: [0.2, 0.8]}}, ngdiff]")


@pytest.fixture(scope="module")
def small(tmp_path_factory, embedded_target):
    """cwd with ./results/quickstart (7 trials: gdiff c=0.2/0.8 and ngdiff, fixed and AutoLR)."""
    cwd = tmp_path_factory.mktemp("cwd")
    proc = pareto("sweep", "sweeps/quickstart.yaml", "--storage", str(cwd / "results"), *SMALL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return cwd, cwd / "results" / "quickstart"


@pytest.mark.slow
def test_theorem5_on_a_real_sweep_lemma4_holds_on_every_ngdiff_step(small):
    cwd, run = small
    proc = pareto("check", "theorem5", "--results", str(run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = pd.read_parquet(run / "steps.parquet")
    trials = pd.read_parquet(run / "trials.parquet")
    n = int(steps.trial_id.isin(trials[trials.combiner == "ngdiff"].trial_id).sum())
    assert n == 12 and f"Lemma 4 holds on {n}/{n} NGDiff steps (100%)." in proc.stdout
    assert "NGDiff" in proc.stdout and "eq5" in proc.stdout and "improved" in proc.stdout


@pytest.mark.slow
def test_frontier_picks_the_newest_tofu_sweep_and_its_planes(small, tmp_path):
    cwd, run = small
    write_sweep(cwd / "results" / "muse_only", source="muse_news")  # newer, but not TOFU
    proc = pareto("frontier", "--dataset", "tofu", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "== loss_f_eval ↑ vs loss_r_eval ↓ ==" in proc.stdout and "== rouge_f ↓ vs utility_r ↑ ==" in proc.stdout
    assert "t000" in proc.stdout and "gdiff(c=0.8)" in proc.stdout
    proc = pareto("frontier", "--dataset", "muse", cwd=cwd)  # the synthetic one: its 3-objective plane
    assert proc.returncode == 0, proc.stderr
    assert "== verbmem_f ↓ vs knowmem_f ↓ vs knowmem_r ↑ ==" in proc.stdout and "skipped" not in proc.stdout
    proc = pareto("frontier", "--dataset", "custom", cwd=cwd)
    assert proc.returncode == 2 and "of a custom sweep" in proc.stderr
    shutil.rmtree(cwd / "results" / "muse_only")


@pytest.mark.slow
def test_frontier_options_on_a_real_sweep(small, tmp_path):
    _, run = small
    png = tmp_path / "front.png"
    proc = pareto("frontier", "--results", str(run), "--objectives", "rouge_f,utility_r,loss_r_eval",
                  "--format", "latex", "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    assert r"\begin{tabular}" in proc.stdout and "rouge\\_f" in proc.stdout
    with Image.open(png) as im:
        assert im.format == "PNG"
    proc = pareto("frontier", "--results", str(run), "--format", "json", "--by", "method")
    doc = json.loads(proc.stdout)
    assert [p["plane"] for p in doc["planes"]] == ["loss_f_eval ↑ vs loss_r_eval ↓ (fronts per method)",
                                                   "rouge_f ↓ vs utility_r ↑ (fronts per method)"]
    assert {"trial_id", "dominated", "dominated_by", "rank"} <= set(doc["planes"][0]["rows"][0])
    proc = pareto("frontier", "--results", str(run), "--x", "rouge_f", "--y", "lr:min", "--format", "csv")
    assert proc.returncode == 0 and proc.stdout.startswith("trial_id,label,rouge_f,lr,dominated,dominated_by,rank")


@pytest.mark.slow
def test_report_on_a_real_sweep(small, tmp_path):
    _, run = small
    out = tmp_path / "report.html"
    proc = pareto("report", "--results", str(run), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 9 and "Lemma 4 holds on 12/12 NGDiff steps" in page


def test_check_exits_1_when_lemma4_is_violated(tmp_path):
    run = write_sweep(tmp_path / "bad")
    proc = pareto("check", "theorem5", "--results", str(run))
    assert proc.returncode == 0 and "Lemma 4 holds on 8/8 NGDiff steps" in proc.stdout, proc.stderr
    steps = pd.read_parquet(run / "steps.parquet")
    first_ng = steps.index[steps.trial_id == "t005"][0]
    steps.loc[first_ng, "dot_r_upd"] = -0.5  # g_R·d < 0 on an NGDiff step: impossible unless buggy
    pq.write_table(pq.read_table(run / "steps.parquet").from_pandas(steps, preserve_index=False),
                   run / "steps.parquet")
    proc = pareto("check", "theorem5", "--results", str(run))
    assert proc.returncode == 1
    assert "Lemma 4 VIOLATED on 1 of 8 NGDiff steps" in proc.stderr and "t005 step 0" in proc.stderr


def test_a_default_plane_without_values_is_skipped_with_a_note(tmp_path):
    run = write_sweep(tmp_path / "m", source="muse_news", blank=("knowmem_f",))
    proc = pareto("frontier", "--results", str(run))
    assert proc.returncode == 0, proc.stderr
    assert "(no trial has a value for knowmem_f; skipped)" in proc.stdout
    assert "== loss_f_eval ↑ vs loss_r_eval ↓ ==" in proc.stdout


def test_user_mistakes(tmp_path):
    run = write_sweep(tmp_path / "s")
    for args, expected in [
        (("frontier", "--results", str(run), "--x", "nope", "--y", "rouge_f"), "no direction for 'nope'"),
        (("frontier", "--results", str(run), "--x", "rouge_f", "--y", "utility_r", "--objectives", "a,b"), "not both"),
        (("frontier", "--results", str(run), "--dataset", "muse"), "is a tofu sweep, not muse"),
        (("frontier", "--results", str(run), "--by", "colour"), "--by 'colour'"),
        (("check", "theorem5", "--results", str(tmp_path / "missing")), "holds no trials.parquet"),
        (("report", "--results", str(tmp_path / "missing")), "holds no trials.parquet"),
    ]:
        proc = pareto(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_probe_and_report_with_fig4_on_a_real_adam_sweep(small, tmp_path):
    """The quickstart's optimizer (Adam: u is Adam's preconditioned d): the rebuilt step still meets
    its record at η = 0 and at the η it used; `pareto report --probe` adds Fig. 4."""
    _, original = small
    run = tmp_path / "quickstart"
    shutil.copytree(original, run, ignore=shutil.ignore_patterns(".ray", "parts"))  # the module's copy stays as it is
    trials = pd.read_parquet(run / "trials.parquet").set_index("trial_id")
    tid = trials.index[(trials["combiner"] == "ngdiff") & (trials["lr_rule"] == "autolr")][0]
    from click.testing import CliRunner

    from pareto.cli import main

    png = tmp_path / "fig4.png"  # the CLI in-process (one Python start less); a few step sizes
    result = CliRunner().invoke(main, ["probe", "--results", str(run), "--trial", tid, "--step", "3",
                                       "--etas=-1e-5,1e-5,1e-3", "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert f"{tid} ngdiff/ga/autolr/lr=0.0001/seed=0 (adam), step 3: 5 step sizes" in result.output
    assert "largest relative difference 0" in result.output and f"table:  {run}/probe.parquet" in result.output
    probe = pd.read_parquet(run / "probe.parquet")
    steps = pd.read_parquet(run / "steps.parquet").set_index(["trial_id", "step"])
    rec = steps.loc[(tid, 3)]
    b = probe[probe["data"] == "batch"].set_index("eta")
    used = probe["eta_used"].iloc[0]
    assert used == rec["lr"] and probe["optimizer"].iloc[0] == "adam"
    assert b.loc[0.0, "loss_r"] == pytest.approx(rec["loss_r"], abs=1e-6)
    assert b.loc[0.0, "loss_f"] == pytest.approx(rec["loss_f"], abs=1e-6)
    assert b.loc[used, "loss_r"] == pytest.approx(rec["loss_r_after"], abs=1e-6)
    assert b.loc[used, "loss_f"] == pytest.approx(rec["loss_f_after"], abs=1e-6)
    assert probe["gr_d"].iloc[0] == pytest.approx(rec["dot_r_upd"], rel=1e-4)  # g_R·d, as recorded
    with Image.open(png) as im:
        assert im.format == "PNG"
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--results", str(run), "--out", str(out), "--probe", f"{tid}:0"])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 10 and "Fig. 4 — the losses along one step" in page
    assert sorted(set(pd.read_parquet(run / "probe.parquet")["step"])) == [0, 3]  # both probes kept
    result = CliRunner().invoke(main, ["report", "--results", str(run), "--out", str(out), "--probe", "t0"])
    assert result.exit_code == 2 and "give TRIAL:STEP" in result.output
