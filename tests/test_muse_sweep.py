"""MUSE-News end to end, as a user runs it: `pareto sweep sweeps/muse_news.yaml`, shrunk by --set."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
MUSE_METRICS = ("verbmem_f", "knowmem_f", "knowmem_r", "privleak")
# 8 + 8 articles, 64-token windows; no BOS and a non-default template, to see both reach the results
SMALL = ["data.articles=8", "data.context=64", "data.add_bos=false", "data.template=llama2-chat",
         "target.train={base: tiny, n_layer: 1, n_embd: 32, n_head: 2, n_positions: 384, max_epochs: 1, "
         "batch_size: 16}",
         "unlearn.steps=2", "eval.batch_size=64", "search.space={combiner: [ngdiff], lr: [1.0e-3]}",
         "eval.robustness={relearn_steps: 2, relearn_lr: 1.0e-3, quantize: int8}"]  # on texts: loss_f_eval only


@pytest.fixture(scope="module")
def run(tmp_path_factory, real_data):
    muse = real_data("muse_news")
    tmp = tmp_path_factory.mktemp("muse")
    env = {**os.environ, "PARETO_CACHE": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "pareto", "sweep", "sweeps/muse_news.yaml", "--storage", str(tmp / "results")]
    sets = [f"data.path={muse}", *SMALL]
    proc = subprocess.run(args + [a for s in sets for a in ("--set", s)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, proc


def test_muse_sweep_records_the_muse_metrics_and_their_items(run):
    tmp, proc = run
    trials = pd.read_parquet(tmp / "results" / "muse_news" / "trials.parquet")
    assert len(trials) == 2 and (trials.status == "ok").all()
    assert set(trials.combiner) == {"no-unlearn", "ngdiff"}
    for metric in (*MUSE_METRICS, "loss_f_eval", "loss_r_eval"):
        assert trials[metric].map(math.isfinite).all(), metric
    assert trials.rouge_f.isna().all()  # not asked for (and meaningless on texts)
    for metric in ("half_loss_f_eval", "relearn_loss_f_eval", "quant_loss_f_eval", "quant_loss_r_eval"):
        assert trials[metric].map(math.isfinite).all(), metric  # eval.robustness on a text corpus
    assert trials.relearn_rouge_f.isna().all() and trials.para_loss_f_eval.isna().all()
    assert (trials.prompt_template == "llama2-chat").all() and not trials.add_bos.any()
    assert trials.verbmem_f.between(0, 1).all() and trials.knowmem_r.between(0, 1).all()
    settings = json.loads(trials.metric_settings.iloc[0])
    assert 0 < settings["privleak"]["auc_retrain"] < 1 and settings["privleak"]["max_length"] == 64
    assert settings["loss_f_eval"]["tokens"] == "every token but BOS"
    assert not any(settings[m]["add_bos"] for m in (*MUSE_METRICS, "loss_f_eval", "loss_r_eval"))
    items = pd.read_parquet(tmp / "results" / "muse_news" / "items.parquet")
    per_trial = items.groupby(["trial_id", "metric"]).size().unstack()
    # 8 forget articles: 8 verbmem items, 2 and 7 knowmem items, 8 members + 100 holdout texts
    assert (per_trial.verbmem_f == 8).all() and (per_trial.knowmem_f == 2).all()
    assert (per_trial.knowmem_r == 7).all() and (per_trial.privleak == 108).all()
    assert (per_trial.loss_f_eval == 8).all() and (per_trial.loss_r_eval == 8).all()
    verb = items[items.metric == "verbmem_f"]
    assert verb.item_id.str.startswith("verbmem:article").all() and verb.generation.notna().all()
    for metric in ("verbmem_f", "knowmem_f", "knowmem_r"):  # each value is the mean of its items
        means = items[items.metric == metric].groupby("trial_id").score.mean()
        assert means.to_numpy() == pytest.approx(trials.set_index("trial_id")[metric].loc[means.index].to_numpy())
    # the target and its Retrain reference: text windows, the words of every evaluated text known
    manifests = [json.loads(p.read_text()) for p in (tmp / "cache").glob("target-*/manifest.json")]
    assert sorted(m["retain_only"] for m in manifests) == [False, True]
    assert all(m["data_kind"] == "text" and m["vocab_rows"] > 0 and "rouge_l" in m for m in manifests)
    assert all((m["template"], m["add_bos"]) == ("llama2-chat", False) for m in manifests)


def test_departures_from_muse_are_recorded_and_shown_beside_the_numbers(run):
    """Subset mode, cut texts and the Retrain's own AUC are written into metric_settings and printed
    by `pareto frontier` under the table; the Retrain model's metrics are recorded for pick."""
    tmp, _ = run
    folder = tmp / "results" / "muse_news"
    trials = pd.read_parquet(folder / "trials.parquet")
    settings = json.loads(trials.metric_settings.iloc[-1])
    assert settings["verbmem_f"]["departures"][0].startswith("subset mode (data.articles: 8): prompts are the first")
    assert "subset mode" in settings["knowmem_r"]["departures"][0]
    notes = " ".join(settings["privleak"]["departures"])
    assert "holdout texts cut to their first 64 words" in notes and "AUC_retrain is this sweep's own" in notes
    assert settings["privleak"]["n_cut"] > 0 and f"{settings['privleak']['n_cut']} of 108 texts" in notes
    assert "departures" not in settings["loss_f_eval"]  # the training loss has no reference tool to depart from
    # the Retrain model, evaluated with the sweep's metrics: against itself privleak is 0
    (recorded,) = trials.reference_metrics.unique()
    retrain = json.loads(recorded)
    assert retrain["privleak"] == pytest.approx(0.0, abs=1e-9) and 0 <= retrain["knowmem_f"] <= 1
    env = {**os.environ, "PARETO_CACHE": str(tmp / "cache")}
    front = subprocess.run([sys.executable, "-m", "pareto", "frontier", "--results", str(folder)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, env=env)
    assert front.returncode == 0, front.stderr
    assert "† verbmem_f: subset mode (data.articles: 8)" in front.stdout
    assert "† privleak" not in front.stdout  # not on the default planes
    pick = subprocess.run([sys.executable, "-m", "pareto", "pick", "--results", str(folder), "--rule",
                           "first-below-retain", "--format", "json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert pick.returncode == 0, pick.stdout + pick.stderr
    (row,) = json.loads(pick.stdout)
    assert row["reference"] == pytest.approx(retrain["knowmem_f"])
