"""Bring-your-own data end to end: files → `pareto target` (with the Retrain reference) → sweep."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pareto.data.synthetic import generate_authors, split_by_author

ROOT = Path(__file__).resolve().parents[1]


def pareto(*args, cwd, env):
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env)


@pytest.mark.slow
def test_custom_files_target_with_retrain_reference_and_forget_quality(tmp_path):
    forget, retain = split_by_author(generate_authors(n_authors=10, qa_per_author=6, seed=7), 0.2)
    for name, rows in (("forget.jsonl", forget), ("retain.jsonl", retain)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = tmp_path / "byo.yaml"
    spec.write_text(f"""# pareto sweep byo.yaml
name: byo
data: {{source: custom, forget_file: {tmp_path / 'forget.jsonl'}, retain_file: {tmp_path / 'retain.jsonl'}}}
target:
  source: train
  retain_model: true
  train: {{base: tiny, n_layer: 1, n_embd: 64, n_head: 2, max_epochs: 60, target_accuracy: 0.95}}
unlearn: {{steps: 5, batch_size: 4}}
eval:
  metrics: [rouge_f, utility_r, truth_ratio_f, forget_quality]
  retain_items: 8
  max_new_tokens: 12
search: {{space: {{combiner: [ngdiff], lr: [1.0e-3]}}}}
""")
    env = {**os.environ, "PARETO_CACHE": str(tmp_path / "cache")}
    proc = pareto("target", str(spec), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("target-*/manifest.json")]
    assert sorted(m["retain_only"] for m in manifests) == [False, True]
    proc = pareto("sweep", str(spec), "--storage", str(tmp_path / "results"), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    trials = pd.read_parquet(tmp_path / "results" / "byo" / "trials.parquet")
    assert (trials.status == "ok").all() and len(trials) == 2
    assert trials.forget_quality.between(0, 1).all() and trials.truth_ratio_f.notna().all()
    assert trials.model_utility.isna().all()  # not asked for: null, not made up
    # the Retrain model evaluated with the sweep's metrics, recorded on every row: against itself FQ is 1
    (recorded,) = trials.reference_metrics.unique()
    retrain = json.loads(recorded)
    assert sorted(retrain) == ["forget_quality", "rouge_f", "truth_ratio_f", "utility_r"]
    assert retrain["forget_quality"] == pytest.approx(1.0) and 0 <= retrain["rouge_f"] <= 1
