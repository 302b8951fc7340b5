"""Loading a sweep (directions from the Parquet metadata, the dataset from the spec), method
names, objective resolution, and the paper-style tables."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from analysis.results import (DEFAULT_PLANES, dataset_of, display_names, find_sweeps, load_results,
                              method_names, resolve_objectives)
from analysis.tables import autolr_table, paper_table, render
from synthetic_sweep import DIRECTIONS, write_sweep


def test_load_results_reads_tables_directions_and_dataset(sweep_dir):
    r = load_results(sweep_dir)
    assert len(r.trials) == 9 and len(r.steps) == 6 * 4 and len(r.evals) == 13
    assert r.directions == DIRECTIONS
    assert r.dataset == "tofu" and r.name == "synthetic"  # the embedded data is TOFU-shaped
    assert r.trials.set_index("trial_id")["method"].to_dict()["t001"] == "gdiff(c=0.2)"
    with pytest.raises(FileNotFoundError, match="trials.parquet"):
        load_results(sweep_dir / "nope")


def test_find_sweeps_newest_first_and_by_dataset(tmp_path):
    a = write_sweep(tmp_path / "a", source="tofu")
    b = write_sweep(tmp_path / "deep" / "b", source="muse_news")
    (tmp_path / "a" / "parts" / "t0").mkdir(parents=True)
    (tmp_path / "a" / "parts" / "t0" / "trials.parquet").write_bytes((a / "trials.parquet").read_bytes())
    old = time.time() - 100
    os.utime(a / "trials.parquet", (old, old))
    assert find_sweeps(tmp_path) == [b, a]  # parts/ are never sweeps
    assert find_sweeps(tmp_path, "tofu") == [a]
    assert find_sweeps(tmp_path, "muse") == [b]
    assert find_sweeps(tmp_path, "custom") == []
    assert find_sweeps(a) == [a]


def test_dataset_of_and_planes():
    spec = lambda s: pd.DataFrame({"spec": ['{"data": {"source": "%s"}}' % s]})  # noqa: E731
    assert [dataset_of(spec(s)) for s in ("tofu", "embedded", "muse_news", "custom")] == \
        ["tofu", "tofu", "muse", "custom"]
    assert dataset_of(pd.DataFrame({"x": [1]})) is None
    assert DEFAULT_PLANES["muse"][1] == ("verbmem_f", "knowmem_f", "knowmem_r")
    assert DEFAULT_PLANES["tofu"] == (("loss_f_eval", "loss_r_eval"), ("rouge_f", "utility_r"))


def test_method_and_display_names():
    t = pd.DataFrame({"combiner": ["gdiff", "mgda", "ngdiff", "no-unlearn"],
                      "combiner_params": ['{"c": 0.5}', '{"normalization": "l2"}', "{}", "{}"],
                      "objective": ["ga", "ga", "npo", None]})
    m = method_names(t)
    assert m.tolist() == ["gdiff(c=0.5)", "mgda(normalization=l2)", "ngdiff/npo", "no-unlearn"]
    assert display_names(m).tolist() == ["GDiff-0.5", "MGDA(normalization=l2)", "NGDiff+NPO", "No-unlearn"]


def test_resolve_objectives_directions_zero_and_errors():
    t = pd.DataFrame({"rouge_f": [0.1], "privleak": [-5.0], "lr": [1e-4]})
    out, objs = resolve_objectives(t, ["rouge_f", "privleak", "lr:max"], DIRECTIONS)
    assert objs == [("rouge_f", "min"), ("|privleak|", "min"), ("lr", "max")]
    assert out["|privleak|"].tolist() == [5.0]
    with pytest.raises(ValueError, match="no direction for 'lr'"):
        resolve_objectives(t, ["lr"], DIRECTIONS)
    with pytest.raises(ValueError, match="no column 'utility_r'"):
        resolve_objectives(t, ["utility_r"], DIRECTIONS)


# ------------------------------------------------------------------------------- paper tables
def test_paper_table_methods_as_columns_in_paper_order(sweep_dir):
    r = load_results(sweep_dir)
    t = paper_table(r.trials, ["rouge_f", "utility_r", "verbmem_f"], r.directions)
    assert list(t.columns) == ["No-unlearn", "GDiff-0.8 (η=1e-04)", "GDiff-0.8 (AutoLR)",
                               "GDiff-0.2 (η=1e-04)", "GDiff-0.2 (AutoLR)", "NGDiff (η=1e-04)", "NGDiff (AutoLR)"]
    assert list(t.index) == ["Verbmem ↓ (rouge_f)", "Utility ↑ (utility_r)"]  # verbmem_f: no values
    assert t.loc["Verbmem ↓ (rouge_f)", "NGDiff (AutoLR)"] == pytest.approx(0.20)
    assert "LossNorm (η=1e-04)" not in t.columns  # failed trials are not in the table


def test_seeds_are_averaged():
    t = pd.DataFrame({"trial_id": ["a", "b"], "status": "ok", "combiner": "ngdiff", "combiner_params": "{}",
                      "objective": "ga", "lr_rule": "autolr", "lr": 1e-4, "seed": [0, 1],
                      "rouge_f": [0.2, 0.4]})
    table = paper_table(t, ["rouge_f"], DIRECTIONS)
    assert table.iloc[0, 0] == pytest.approx(0.3) and table.attrs["n"] == {"NGDiff (AutoLR)": 2}


def test_autolr_table_pairs_fixed_with_autolr(sweep_dir):
    r = load_results(sweep_dir)
    t = autolr_table(r.trials, ["rouge_f", "utility_r"], r.directions)
    assert list(t.index) == ["No-unlearn", "GDiff-0.8 (η=1e-04 → AutoLR)", "GDiff-0.2 (η=1e-04 → AutoLR)",
                             "NGDiff (η=1e-04 → AutoLR)"]
    assert t.loc["NGDiff (η=1e-04 → AutoLR)", "Verbmem ↓ (rouge_f)"] == "0.500 → 0.200"
    assert t.loc["No-unlearn", "Utility ↑ (utility_r)"] == "0.950"


@pytest.mark.parametrize("fmt", ["markdown", "html", "latex", "text"])
def test_render_formats(sweep_dir, fmt):
    r = load_results(sweep_dir)
    out = render(paper_table(r.trials, ["rouge_f"], r.directions), fmt)
    assert "0.200" in out and "NGDiff (AutoLR)" in out or "NGDiff (AutoLR)".replace("η", r"$\eta$") in out
    if fmt == "latex":
        assert r"$\downarrow$" in out and r"\toprule" in out
    if fmt == "html":
        assert out.startswith("<table>")
    with pytest.raises(ValueError, match="unknown format"):
        render(paper_table(r.trials, ["rouge_f"], r.directions), "rtf")
    assert np.isfinite(paper_table(r.trials, ["rouge_f"], r.directions).to_numpy(float)).all()
