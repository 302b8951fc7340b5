"""The `corpus` source (pareto/sources/corpus.py, your own texts) end to end, as a user runs it: its
spec validated, its files checked before any work, a sweep on it with the source's own default
metrics (both losses and verbmem_f), and its planes recorded with the results for `pareto frontier`.
It is the one file a new source needs: nothing else in pareto/ names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pareto.data.synthetic import generate_authors
from pareto.preflight import preflight
from pareto.sources import load_data, source_of
from pareto.spec import SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def biographies(n: int) -> list[dict]:
    """One text per synthetic author: its QA answers as a paragraph (≈ 150 words each)."""
    rows = generate_authors(n, 10, seed=3)
    texts: dict[str, list[str]] = {}
    for r in rows:
        texts.setdefault(r["author"], []).append(r["answer"])
    return [{"text": " ".join(t)} for t in texts.values()]


def spec_text(forget: Path, retain: Path, extra: str = "") -> str:
    return f"""name: corpus_demo
data: {{source: corpus, forget_file: {forget}, retain_file: {retain}, context: 96}}
target:
  source: train
  train: {{base: tiny, n_layer: 1, n_embd: 32, n_head: 2, n_positions: 192, max_epochs: 2, batch_size: 8}}
unlearn: {{steps: 2, batch_size: 2}}
eval: {{max_new_tokens: 8, batch_size: 16{extra}}}
search:
  space: {{combiner: [ngdiff], lr: [1.0e-3]}}
resources: {{cpus_per_trial: 1}}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    texts = biographies(6)
    forget, retain = tmp / "forget.jsonl", tmp / "retain.json"
    forget.write_text("\n".join(json.dumps(t) for t in texts[:2]))
    retain.write_text(json.dumps(texts[2:]))
    return tmp, forget, retain


def test_the_source_reads_texts_and_builds_verbmem_items_from_the_forget_texts(files):
    _, forget, retain = files
    bundle = load_data({"source": "corpus", "forget_file": str(forget), "retain_file": str(retain)})
    assert len(bundle.forget) == 2 and len(bundle.retain) == 4 and bundle.name == f"corpus:{forget}"
    verbmem = bundle.eval_splits["verbmem"]
    assert len(verbmem) == 2
    for item, row in zip(verbmem, bundle.forget):
        assert row["text"].startswith(item["prompt"]) and row["text"].endswith(item["gt"])
        assert len(item["prompt"].split()) == 32


def test_its_spec_gets_its_metrics_and_refuses_qa_ones(files):
    _, forget, retain = files
    spec, points = parse_spec(spec_text(forget, retain))
    assert spec.eval.metrics == ("loss_f_eval", "loss_r_eval", "verbmem_f") == source_of("corpus").metrics
    assert len(points) == 2
    with pytest.raises(SpecError) as err:
        parse_spec(spec_text(forget, retain, ", metrics: [rouge_f]"))
    assert "rouge_f is for question/answer data (data.source custom, embedded, tofu), not data.source corpus" \
        in err.value.problems[0]


def test_preflight_names_qa_files_short_texts_and_an_empty_forget_set(files):
    tmp, forget, retain = files
    qa = tmp / "qa.json"
    qa.write_text(json.dumps([{"question": "q?", "answer": "a."}]))
    short = tmp / "short.json"
    short.write_text(json.dumps([{"text": "too short to prompt"}]))
    empty = tmp / "empty.json"
    empty.write_text("[]")
    found = preflight(parse_spec(spec_text(qa, retain))[0])
    assert any("data.forget_file" in p and "text" in p for p in found.problems), found
    found = preflight(parse_spec(spec_text(short, retain))[0])
    assert not found.problems and any("1 of 1 forget texts are shorter than 64 words" in w for w in found.warnings)
    found = preflight(parse_spec(spec_text(empty, retain))[0])
    assert any("the forget set is empty" in p and "record with a text" in p for p in found.problems), found


def test_a_sweep_on_a_corpus_records_its_metrics_and_planes(files):
    tmp, forget, retain = files
    spec = tmp / "corpus.yaml"
    spec.write_text(spec_text(forget, retain))
    env = {**os.environ, "PARETO_CACHE": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}
    run = subprocess.run([sys.executable, "-m", "pareto", "sweep", str(spec), "--storage", str(tmp / "results")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    path = tmp / "results" / "corpus_demo" / "trials.parquet"
    trials = pd.read_parquet(path)
    assert len(trials) == 2 and (trials.status == "ok").all()
    for metric in ("loss_f_eval", "loss_r_eval", "verbmem_f"):
        assert trials[metric].notna().all(), metric
    assert trials.loc[trials.combiner == "ngdiff", "loss_f_eval"].iloc[0] != \
        trials.loc[trials.combiner == "no-unlearn", "loss_f_eval"].iloc[0]
    planes = json.loads(pq.read_schema(path).metadata[b"pareto.planes"])
    assert planes == [list(p) for p in source_of("corpus").planes]
    front = subprocess.run([sys.executable, "-m", "pareto", "frontier", "--results", str(path.parent)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert front.returncode == 0, front.stderr
    assert "verbmem_f" in front.stdout and "loss_f_eval" in front.stdout
