"""A trial whose final evaluation cannot be computed fails with the reason, and keeps the step
telemetry it produced (a metric error must not throw away the unlearning run)."""

from pareto.spec import parse_spec
from trainables.unlearn import run_trial

SPEC = """name: evalfail
unlearn: {steps: 4, batch_size: 4}
eval: {retain_items: 8, max_new_tokens: 60, metrics: [loss_f_eval, rouge_f]}
search:
  baseline: false
  space: {combiner: [ngdiff], lr: [1.0e-4], seed: [0]}
"""


def test_failed_final_evaluation_keeps_the_steps(embedded_target):
    spec, points = parse_spec(SPEC)
    reports = []
    last = run_trial({"spec": spec.to_dict(), "target_dir": str(embedded_target)}, points[0], reports.append)
    assert last["status"] == "failed" and last["evaluated"] is False
    assert "evaluation at step 4: ValueError" in last["error"] and "context length" in last["error"]
    assert [r["step"] for r in last["step_rows"]] == [0, 1, 2, 3]
