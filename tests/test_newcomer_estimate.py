"""Long work says how long (issue 15): the build's time lines and `pareto.estimate`."""

from __future__ import annotations

import json
import math
import os
import re

import pytest
import torch

from pareto.estimate import estimate, format_duration
from pareto.sources import source_of

tofu_counts = source_of("tofu").counts
from pareto.models import _build
from pareto.models._build import build_tokenizer, new_tiny_gpt2, train_on_answers
from pareto.models.embedded import EmbeddedConfig, build_embedded_target
from pareto.data.qa import encode_qa
from pareto.data.synthetic import generate_authors
from pareto.spec import parse_spec

#: A tiny embedded target: 4 authors of 5 QA pairs, so a build and a measurement take a second.
TINY = {"n_authors": 4, "qa_per_author": 5, "forget_fraction": 0.25, "max_epochs": 3}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def spec_of(text: str):
    return parse_spec(text, "<test>")


def embedded_spec(extra: str = "", every: int = 0):
    return spec_of(f"""
name: t
target: {{source: embedded, embedded: {json.dumps(TINY)}}}
unlearn: {{steps: 12, batch_size: 4}}
eval: {{max_new_tokens: 4, retain_items: 4, every: {every}}}
search:
  space:
    combiner: [ngdiff]
    objective: [ga]
    lr_rule: [fixed, autolr]
    lr: [1.0e-4]
    seed: [0, 1]
{extra}""")


# --------------------------------------------------------------------------- format_duration


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0ms"), (0.04, "40ms"), (0.9994, "999ms"), (0.9996, "1.0s"), (4.21, "4.2s"), (9.96, "10s"),
    (42.4, "42s"), (59.6, "1m 00s"), (425, "7m 05s"), (3599.4, "59m 59s"), (3599.6, "1h 00m"),
    (2 * 3600 + 31 * 60, "2h 31m"), (7199, "2h 00m"), (26 * 3600 + 40 * 60, "26h 40m"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# --------------------------------------------------------------------------- the build's lines


def tiny_examples():
    rows = generate_authors(4, 5, 0)
    tok = build_tokenizer(rows)
    return tok, [encode_qa(tok, r["question"], r["answer"], max_length=10**9) for r in rows]


def train(log, epochs=4, target_accuracy=None):
    tok, examples = tiny_examples()
    torch.manual_seed(0)
    model = new_tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64)
    result = train_on_answers(model, examples, pad_id=tok.pad_token_id, optimizer="adam", lr=3e-3,
                              weight_decay=0.0, batch_size=4, seed=0, epochs=epochs,
                              target_accuracy=target_accuracy, log=log, tag="t", log_every=2)
    return model, result


def test_fixed_epochs_build_logs_an_early_estimate_and_eta_per_epoch():
    lines: list[str] = []
    train(lines.append, epochs=4)
    early = [l for l in lines if "batches:" in l]
    assert len(early) == 1  # 5 batches of 4 take < 2 s: it comes at the end of epoch 1
    assert re.fullmatch(r"\[t\] first 5 of 5 batches: \S+/batch → ~\S+ per epoch of training \(estimate\); "
                        r"whole build ≈ \S+ \(4 epochs\)", early[0]), early[0]
    epochs = [l for l in lines if re.match(r"\[t\] epoch +\d", l)]
    assert lines.index(early[0]) < lines.index(epochs[0])  # before epoch 1's line
    assert [int(l.split()[2]) for l in epochs] == [1, 2, 4]
    assert all(re.search(r"  \S+/epoch, ETA \S+( \S+)?$", l) for l in epochs[:-1]), epochs
    assert re.search(r"  \S+/epoch, trained in \S+( \S+)?$", epochs[-1]), epochs[-1]


def test_until_memorised_build_bounds_at_the_cap():
    lines: list[str] = []
    train(lines.append, epochs=3, target_accuracy=1.0)  # a 1-layer model will not get there in 3 epochs
    assert "whole build ≤ " in lines[0] and "of training at the cap of 3 epochs (+ accuracy checks); it stops as soon as the answers are memorised" in lines[0]
    assert re.search(r"ETA ≤ \S+( \S+)? \(the cap of 3 epochs\)$", lines[1]), lines[1]


def test_timing_does_not_change_the_build(monkeypatch):
    """The build with its clock against the same build with the clock removed: same weights, history."""
    model, result = train(lambda s: None)

    class NoClock:
        def __init__(self, *a, **k): pass
        def first_epoch(self, *a): pass
        def batch_done(self): pass
        def epoch_done(self): pass
        def epoch_note(self, *a, **k): return ""

    monkeypatch.setattr(_build, "BuildClock", NoClock)
    silent_model, silent = train(lambda s: None)
    assert result["history"] == silent["history"]
    for (k, a), (_, b) in zip(model.state_dict().items(), silent_model.state_dict().items()):
        assert torch.equal(a, b), k


def test_embedded_build_logs_the_time_lines(cache):
    lines: list[str] = []
    build_embedded_target(EmbeddedConfig(**TINY), log=lines.append)
    assert any(l.startswith("[embedded] first ") and "at the cap of 3 epochs" in l for l in lines), lines
    assert any(re.search(r"\[embedded\] epoch +1 .*/epoch, (ETA ≤|trained in)", l) for l in lines), lines


# --------------------------------------------------------------------------- the estimate's counts


def test_tofu_counts_are_tofus_published_sizes():
    assert tofu_counts({"forget": "forget10"}) == (400, 3600)
    assert tofu_counts({"forget": "forget05"}) == (200, 3800)
    assert tofu_counts({"forget": "forget01"}) == (40, 3960)
    assert tofu_counts({"authors": 40, "forget_fraction": 0.1}) == (80, 720)
    assert tofu_counts({"authors": 7, "forget_fraction": 0.3}) == (40, 100)  # floor(2.1) = 2 authors


def test_embedded_estimate_counts():
    spec, points = embedded_spec(every=5)
    est = estimate(spec, points)
    (build,) = est.builds
    assert (build.rows, build.epochs, build.until_memorised, build.cached) == (20, 3, True, False)
    assert build.seconds == pytest.approx(3 * build.epoch_seconds) and build.seconds > 0
    t = est.trials
    assert (t.n_trials, t.n_baseline, t.steps) == (5, 1, 12)  # 2 lr rules x 2 seeds + the baseline
    assert t.evaluations == 3  # after steps 5 and 10, and at the end (12)
    assert t.parallel == max(1, os.cpu_count())
    assert t.step_seconds > 0 and t.eval_seconds > 0 and t.seconds > 0
    assert est.seconds == pytest.approx(build.seconds + t.seconds)
    lines = est.lines()
    assert 1 <= len(lines) <= 3 and lines[0].startswith("estimate on this machine (")
    assert "target build ≤ " in lines[0] and "20 QA pairs, ≤ 3 epochs of ~" in lines[0]
    assert lines[-1].startswith("5 trials ≈ ") and "12 steps of ~" in lines[-1] and "3 evaluations of ~" in lines[-1]
    assert "at most " in lines[-1] and " in all" in lines[-1]


@pytest.mark.parametrize("steps", ["3", "[0, 1, 3]"])
def test_robustness_attacks_are_counted_once_per_trial(steps):
    """eval.robustness (issue 21): its attacks (a relearning curve too) measured and added to every
    trial, and named in the line."""
    from pareto.estimate import DRIVER_S, PARALLEL_EFFICIENCY, RAY_START_S, TRIAL_OVERHEAD_S, WORKER_START_S

    section = f"{{relearn_steps: {steps}, relearn_lr: 1.0e-3, quantize: int8, paraphrase: true}}"
    spec, points = spec_of(f"""
name: t
target: {{source: embedded, embedded: {json.dumps(TINY)}}}
unlearn: {{steps: 12, batch_size: 4}}
eval: {{max_new_tokens: 4, retain_items: 4, metrics: [rouge_f, utility_r], robustness: {section}}}
search: {{space: {{combiner: [ngdiff], lr: [1.0e-4], seed: [0, 1]}}}}
""")
    t = estimate(spec, points).trials
    assert t.robustness_seconds > 0 and "robustness attacks of ~" in t.line()
    busy = t.n_trials * (TRIAL_OVERHEAD_S + t.evaluations * t.eval_seconds + t.robustness_seconds) \
        + (t.n_trials - t.n_baseline) * t.steps * t.step_seconds
    side = t.parallel * PARALLEL_EFFICIENCY if t.parallel > 1 else 1
    assert t.seconds == pytest.approx(RAY_START_S + WORKER_START_S + DRIVER_S + busy / side)
    assert "robustness" not in estimate(*embedded_spec()).trials.line()


def test_steps_from_epochs_over_the_forget_set():
    spec, points = embedded_spec("resources: {cpus_per_trial: 2, max_concurrent: 1}")
    spec = spec.__class__(**{**spec.__dict__, "unlearn": spec.unlearn.__class__(epochs=2.5, batch_size=4)})
    t = estimate(spec, points).trials
    assert t.steps == math.ceil(2.5 * 5 / 4)  # 1 of 4 authors forgotten: 5 QA pairs
    assert t.parallel == 1


def test_cached_target_costs_nothing(cache):
    spec, points = embedded_spec()
    build_embedded_target(EmbeddedConfig(**TINY), log=lambda s: None)
    est = estimate(spec, points)
    assert est.builds[0].cached and est.builds[0].seconds == 0
    assert "target: cached (0s)" in est.lines()[0]
    assert est.seconds == pytest.approx(est.trials.seconds)
    assert "about " in est.lines()[-1]  # nothing left is an upper bound


def test_custom_data_counts_rows_and_the_retrain_build(tmp_path):
    rows = generate_authors(4, 5, 1)
    for name, part in (("forget", rows[:5]), ("retain", rows[5:])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    spec, points = spec_of(f"""
name: c
data: {{source: custom, forget_file: {tmp_path / 'forget.jsonl'}, retain_file: {tmp_path / 'retain.jsonl'}}}
target: {{source: train, retain_model: true,
          train: {{base: tiny, n_layer: 1, n_embd: 32, n_head: 2, n_positions: 128, until_memorised: false, epochs: 7}}}}
unlearn: {{epochs: 2, batch_size: 2}}
eval: {{metrics: [loss_f_eval, loss_r_eval], retain_items: 4}}
search: {{baseline: true, space: {{combiner: [ngdiff], objective: [ga], lr_rule: [fixed], lr: [1.0e-4], seed: [0]}}}}
""")
    est = estimate(spec, points)
    target, retrain = est.builds
    assert (target.what, target.rows, target.epochs, target.until_memorised) == ("target", 20, 7, False)
    assert (retrain.what, retrain.rows, retrain.epochs) == ("Retrain reference", 15, 7)
    assert target.seconds == pytest.approx(7 * target.epoch_seconds)
    assert "target build ≈ " in est.lines()[0] and "Retrain reference build ≈ " in est.lines()[0]
    assert (est.trials.n_trials, est.trials.steps) == (2, math.ceil(2 * 5 / 2))


def test_hub_data_is_not_estimated_but_counted():
    spec, points = spec_of("""
name: h
data: {source: tofu, path: locuslab/TOFU, forget: forget10}
target: {source: train, train: {base: tiny}}
unlearn: {epochs: 15, batch_size: 32}
search: {space: {combiner: [ngdiff, lossnorm], objective: [ga], lr_rule: [fixed], lr: [1.0e-4], seed: [0]}}
""")
    est = estimate(spec, points)
    assert est.seconds is None and est.builds[0].seconds is None
    assert "not estimated" in est.lines()[0] and "hub" in est.lines()[0]
    assert (est.trials.n_trials, est.trials.steps) == (3, math.ceil(15 * 400 / 32))


def test_estimate_leaves_torch_state_alone():
    spec, points = embedded_spec()
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    estimate(spec, points)
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
