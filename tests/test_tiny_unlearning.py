"""Unlearning the embedded tiny model for real: NGDiff + AutoLR forgets without hurting retain."""

import pytest
import torch

from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.data.qa import Batches, encode_qa
from pareto.lm import LM_TASK
from pareto.metrics import mean_answer_ce
from pareto.models.embedded import load_target
from trainables.unlearn import read_jsonl


def _setup(target, combiner="ngdiff", objective="ga", lr_rule="autolr", opt="sgd", lr=0.1, retain_bs=32):
    torch.manual_seed(0)
    model, tok, _ = load_target(target)
    forget_rows, retain_rows = read_jsonl(target / "forget.jsonl"), read_jsonl(target / "retain.jsonl")
    enc = lambda rows: [encode_qa(tok, r["question"], r["answer"]) for r in rows]  # noqa: E731
    forget = Batches(enc(forget_rows), 8, tok.pad_token_id, 0)
    retain = Batches(enc(retain_rows), retain_bs, tok.pad_token_id, 1)
    objective_ = OBJECTIVES.build(objective)
    objective_.task = LM_TASK
    objective_.prepare(model, forget.all())
    engine = UnlearnEngine(model, build_combiner(combiner), objective_, LR_RULES.build(lr_rule),
                           build_optimizer(opt, list(model.parameters()), lr=lr), lr=lr,
                           retain_loss=LM_TASK.loss)
    return model, tok, forget_rows, retain_rows, forget, retain, engine


def test_20_steps_of_ngdiff_autolr_lower_retain_loss_and_raise_forget_loss(embedded_target):
    model, tok, F, R, forget, retain, engine = _setup(embedded_target)
    r0, f0 = mean_answer_ce(model, tok, R), mean_answer_ce(model, tok, F)
    rows = [engine.step(retain.next(), forget.next()) for _ in range(20)]
    r1, f1 = mean_answer_ce(model, tok, R), mean_answer_ce(model, tok, F)
    assert r1 < r0, f"retain loss rose: {r0:.4f} → {r1:.4f}"
    assert f1 > f0 + 1.0, f"forget loss did not rise: {f0:.4f} → {f1:.4f}"
    assert all(r["dot_r_upd"] >= 0 >= r["dot_f_upd"] for r in rows)  # Lemma 4 at every step
    # Theorem 5: on the step's own batches, L_R fell and L_F rose
    simultaneous = sum(r["loss_r_after"] < r["loss_r"] and r["loss_f_after"] > r["loss_f"] for r in rows)
    assert simultaneous >= 18
    fits = [r for r in rows if r["autolr_accepted"] is not None]
    assert [r["step"] for r in fits] == [0, 10] and all(r["autolr_accepted"] for r in fits)


@pytest.mark.parametrize("objective", ["npo", "simnpo"])
def test_npo_family_forgets(embedded_target, objective):
    model, tok, F, R, forget, retain, engine = _setup(embedded_target, objective=objective, lr_rule="fixed",
                                                      opt="adam", lr=3e-4, retain_bs=8)
    f0 = mean_answer_ce(model, tok, F)
    rows = [engine.step(retain.next(), forget.next(), measure_after=False) for _ in range(15)]
    assert rows[0]["loss_f"] < 0  # L_F = −L_NPO: the forget loss to minimise is positive
    if objective == "npo":  # at θ = θ_ref the log-ratio is 0: L_NPO = (2/β)·log 2
        assert rows[0]["loss_f"] == pytest.approx(-(2 / 0.1) * torch.log(torch.tensor(2.0)).item(), rel=1e-4)
    assert mean_answer_ce(model, tok, F) > f0 + 0.5


@pytest.mark.parametrize("own_split", [False, True])
def test_eval_retain_items_picks_evenly_from_the_retain_rows_or_the_sources_own_split(embedded_target, own_split):
    """eval.retain_items applies to the retain rows a trial scores — the source's own retain split where
    it has one (TOFU's rows with perturbed answers), which it once replaced whole, ignoring the setting."""
    from trainables.unlearn import open_target

    own = [{"question": f"q{i}?", "answer": f"a{i}", "item_id": f"retain:{i}"} for i in range(10)]
    setup = {"spec": {"eval": {"retain_items": 4, "max_new_tokens": 4, "batch_size": 8}},
             "target_dir": str(embedded_target), "eval_splits": {"retain": own, "world_facts": own[:2]} if own_split else {}}
    splits = open_target(setup).eval_splits
    rows = own if own_split else read_jsonl(embedded_target / "retain.jsonl")
    assert splits["retain"] == rows[:: len(rows) // 4][:4]
    assert splits.get("world_facts") == (own[:2] if own_split else None)  # other splits are the source's, whole


def test_full_tofu_with_fewer_retain_items_than_tofu_scores_is_warned_about():
    """Since eval.retain_items applies to TOFU's retain rows, a spec taking fewer than its 400 is told so."""
    from dataclasses import asdict

    from pareto.sources import source_of
    from pareto.spec import parse_spec

    def warnings(data: str, retain_items: int = 40) -> list[str]:
        spec, _ = parse_spec(f"name: x\ndata: {{source: tofu{data}}}\ntarget: {{source: train}}\n"
                             f"eval: {{retain_items: {retain_items}}}\nsearch: {{space: {{combiner: [ngdiff]}}}}\n")
        return source_of(asdict(spec.data)).eval_warnings(asdict(spec.data), spec.eval)

    assert "set eval.retain_items: 400" in warnings("")[0]  # the default, 40
    assert warnings("", retain_items=400) == []
    assert warnings(", authors: 40") == []  # a subset: not TOFU's numbers anyway
