"""The memory options of a trial (issue 9) on the embedded target, through run_trial and the spec:
micro-batch accumulation gives the same step as the whole batch, LoRA trains adapters only with
Lemma 4 on every step, bf16 autocast and fp32 gradient buffers run, bad settings are refused."""

import pytest

from pareto.spec import SpecError, parse_spec
from trainables.unlearn import run_trial

SPEC = """name: memory
unlearn: {{steps: 4, batch_size: 6, optimizer: sgd, measure_after_every: 1{extra}}}
eval: {{retain_items: 8, max_new_tokens: 8, metrics: [loss_f_eval, loss_r_eval]}}
search:
  baseline: false
  space:
    combiner: [ngdiff]
    objective: [{objective}]
    lr_rule: [fixed]
    lr: [0.05]
    seed: [3]
"""
KEYS = ("loss_r", "loss_f", "gram_rr", "gram_rf", "gram_ff", "dot_r_upd", "dot_f_upd", "loss_r_after", "loss_f_after")


def run(target, extra="", objective="ga"):
    spec, points = parse_spec(SPEC.format(extra=extra, objective=objective))
    reports = []
    run_trial({"spec": spec.to_dict(), "target_dir": str(target)}, points[0], reports.append)
    return [row for r in reports for row in r["step_rows"]], reports[-1]


@pytest.mark.parametrize("objective", ["ga", "npo"])
def test_accumulated_micro_batches_give_the_whole_batch_step(embedded_target, objective):
    whole, _ = run(embedded_target, objective=objective)
    accum, final = run(embedded_target, ", grad_accum: 3", objective=objective)
    assert final["status"] == "ok"
    for a, b in zip(whole, accum):
        for k in KEYS:
            assert b[k] == pytest.approx(a[k], rel=2e-5, abs=1e-7), k


def test_lora_trial_trains_adapters_only(embedded_target):
    full_rows, full = run(embedded_target)
    rows, final = run(embedded_target, ", lora: {r: 4, alpha: 8}")
    assert final["status"] == "ok" and len(rows) == 4
    assert all(r["dot_r_upd"] >= 0 >= r["dot_f_upd"] for r in rows)  # Lemma 4 on the adapters
    assert final["grad_buffer_bytes"] < full["grad_buffer_bytes"] / 5
    assert rows[0]["loss_r"] == pytest.approx(full_rows[0]["loss_r"], rel=1e-6)  # B = 0: the target's losses


def test_autocast_and_fp32_buffers_run(embedded_target):
    rows, final = run(embedded_target, ", autocast: bfloat16")
    assert final["status"] == "ok" and all(r["dot_r_upd"] >= 0 >= r["dot_f_upd"] for r in rows)
    rows, final = run(embedded_target, ", dtype: bfloat16, grad_dtype: float32, grad_accum: 2")
    assert final["status"] == "ok" and final["dtype"] == "bfloat16"


@pytest.mark.parametrize("extra, message", [
    (", autocast: float16", "autocast must be bfloat16"),
    (", dtype: bfloat16, autocast: bfloat16", "needs unlearn.dtype float32"),
    (", grad_accum: 0", "grad_accum must be an integer"),
    (", grad_accum: 7", "more micro-batches than a batch has"),
    (", grad_dtype: fp16", "grad_dtype must be param or float32"),
    (", lora: {rank: 4}", "unknown LoRA setting 'rank'"),
])
def test_bad_memory_settings_are_named(extra, message):
    with pytest.raises(SpecError) as err:
        parse_spec(SPEC.format(extra=extra, objective="ga"))
    assert message in str(err.value)
