"""benchmarks/results_scale.py at a tiny size: its synthetic sweep folder is in the results schema,
consolidates as `pareto sweep` consolidates, and loads with analysis.results (seconds)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("results_scale", ROOT / "benchmarks" / "results_scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_synthetic_sweep_consolidates_and_loads(tmp_path):
    from analysis.results import load_results
    from pareto.results.writer import TABLES

    bench = _bench()
    sweep = bench.synthesise(tmp_path, 20, evals=3, steps=6, items=2, workers=1)
    parts = sorted(p.name for p in (sweep / "parts").iterdir())
    assert parts == [f"t{i:03d}" for i in range(20)]
    assert json.loads((sweep / "sweep.json").read_text())["complete"]
    counts = {name: sum(pq.read_metadata(sweep / "parts" / t / f"{name}.parquet").num_rows for t in parts)
              for name in TABLES}
    for name, schema in TABLES.items():  # every part in the schema, column for column
        assert pq.read_schema(sweep / "parts" / "t001" / f"{name}.parquet").names == schema.names

    done = bench.consolidate(sweep)
    assert done["trials"] == 20 and done["rows"] == counts
    assert counts["trials"] == 20 and counts["evals"] > 19 * 2 and counts["steps"] > 0 and counts["items"] > 0
    r = load_results(sweep)
    assert len(r.trials) == 20 and len(r.evals) == counts["evals"] and len(r.steps) == counts["steps"]
    assert r.dataset == "tofu" and r.planes == (("loss_f_eval", "loss_r_eval"), ("rouge_f", "utility_r"))
    assert set(r.trials["status"]) <= {"ok", "diverged", "failed"} and (r.trials["status"] == "ok").sum() >= 18
    assert r.trials["method"].iloc[0] == "no-unlearn" and r.evals.groupby("trial_id").size().max() == 3
    assert r.trials.loc[r.trials["status"] == "ok", ["rouge_f", "utility_r"]].notna().all().all()
