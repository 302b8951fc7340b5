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
