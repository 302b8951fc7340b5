"""Same spec and seed → the same numbers on CPU (timing columns aside)."""

import math

from pareto.spec import parse_spec
from trainables.unlearn import run_trial

SPEC = """name: repro
unlearn: {steps: 6, batch_size: 4}
eval: {retain_items: 8, max_new_tokens: 8}
search:
  space:
    combiner: [rlw]
    lr_rule: [autolr]
    lr: [1.0e-4]
    seed: [3]
"""


TIMING = ("step_time_s", "wall_s", "cpu_s", "gpu_s")


def _run(target, point):
    """Every step row, then the final record, timing columns aside."""
    spec, _ = parse_spec(SPEC)
    reports = []
    run_trial({"spec": spec.to_dict(), "target_dir": str(target)}, point, reports.append)
    rows = [row for r in reports for row in r["step_rows"]] + [{k: v for k, v in reports[-1].items() if k != "step_rows"}]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_same_spec_and_seed_give_identical_rows(embedded_target):
    _, points = parse_spec(SPEC)
    first, second = _run(embedded_target, points[1]), _run(embedded_target, points[1])
    assert len(first) == 7
    for a, b in zip(first, second):
        assert a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a), (a, b)
    # and a different seed is a different run (RLW draws its weights from the seed)
    other = _run(embedded_target, {**points[1], "seed": 4})
    assert [r.get("w_r") for r in other[:-1]] != [r.get("w_r") for r in first[:-1]]


SWEEP = """name: repro
unlearn: {steps: 8, batch_size: 4}
eval: {every: 4, retain_items: 8, max_new_tokens: 6}
search:
  space:
    combiner: [rlw, {gdiff: {c: [0.3]}}, pcgrad]
    lr_rule: [autolr]
    lr: [1.0e-4]
    seed: [3]
resources: {cpus_per_trial: 1}
"""

#: Columns that say when, where and how long, not what: they may differ between identical runs.
RUN_COLUMNS = {"trials": ["wall_s", "cpu_s", "gpu_s", "run_id", "node_id"], "steps": ["step_time_s"],
               "evals": ["wall_s"], "items": []}


def test_two_sweeps_of_one_spec_write_identical_parquet(tmp_path, embedded_target):
    """The whole path (Ray, the collector, the Parquet writer), twice: every value of every table equal."""
    import os
    import subprocess
    import sys

    import pandas as pd

    from _helpers import ROOT

    spec = tmp_path / "repro.yaml"
    spec.write_text(SWEEP)
    for run in ("a", "b"):
        proc = subprocess.run([sys.executable, "-m", "pareto", "sweep", str(spec), "--storage", str(tmp_path / run)],
                              cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ})
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name, varying in RUN_COLUMNS.items():
        a = pd.read_parquet(tmp_path / "a" / "repro" / f"{name}.parquet").drop(columns=varying)
        b = pd.read_parquet(tmp_path / "b" / "repro" / f"{name}.parquet").drop(columns=varying)
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)  # bit for bit, not approximately
    trials = pd.read_parquet(tmp_path / "a" / "repro" / "trials.parquet")
    assert len(trials) == 4 and (trials.status == "ok").all()
