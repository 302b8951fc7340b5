"""A trial stopped at step k and restored from its checkpoint continues exactly as if never stopped."""

import json
import math
from pathlib import Path

import pytest
import torch

from pareto import checkpoint
from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.data.qa import Batches, encode_qa
from pareto.lm import LM_TASK
from pareto.models.embedded import load_target


def build(target: Path, combiner: str, objective: str, lr_rule: str, seed: int = 5):
    torch.manual_seed(seed)
    model, tok, _ = load_target(target)
    rows = lambda name: [json.loads(x) for x in (target / name).read_text().splitlines() if x.strip()]  # noqa: E731
    enc = lambda rs: [encode_qa(tok, r["question"], r["answer"]) for r in rs]  # noqa: E731
    forget = Batches(enc(rows("forget.jsonl")), 4, tok.pad_token_id, seed)
    retain = Batches(enc(rows("retain.jsonl")), 4, tok.pad_token_id, seed + 1)
    optimizer = build_optimizer("adam", [p for p in model.parameters() if p.requires_grad], lr=1e-3)
    obj = OBJECTIVES.build(objective)
    obj.task = LM_TASK
    obj.prepare(model, forget.all())
    engine = UnlearnEngine(model, build_combiner(combiner, seed=seed), obj, LR_RULES.build(lr_rule, **(
        {"every": 2} if lr_rule == "autolr" else {})), optimizer, lr=1e-3, retain_loss=LM_TASK.loss)
    return model, optimizer, engine, forget, retain


def steps(parts, n):
    model, _, engine, forget, retain = parts
    return [{k: v for k, v in engine.step(retain.next(), forget.next()).items() if k != "step_time_s"} for _ in range(n)]


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("combiner, objective, lr_rule", [
    ("rlw", "ga", "autolr"),  # a random generator, AutoLR's learning rate
    ("famo", "npo", "fixed"),  # logits with Adam moments; NPO's reference log-probabilities
    ("gradvac", "ga", "fixed"),  # an EMA
])
def test_resume_from_a_checkpoint_is_exact(combiner, objective, lr_rule, embedded_target, tmp_path):
    whole = build(embedded_target, combiner, objective, lr_rule)
    rows_whole = steps(whole, 6)

    first = build(embedded_target, combiner, objective, lr_rule)
    rows_first = steps(first, 3)
    model, optimizer, engine, forget, retain = first
    checkpoint.save(tmp_path / "ckpt", model=model, optimizer=optimizer, engine=engine, forget=forget,
                    retain=retain, steps_done=3)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["model.safetensors", "optimizer.pt", "state.json"]

    resumed = build(embedded_target, combiner, objective, lr_rule)
    model2, optimizer2, engine2, forget2, retain2 = resumed
    assert checkpoint.load(tmp_path / "ckpt", model=model2, optimizer=optimizer2, engine=engine2, forget=forget2,
                           retain=retain2) == 3
    rows = rows_first + steps(resumed, 3)
    for a, b in zip(rows_whole, rows):
        assert a.keys() == b.keys() and all(same(a[k], b[k]) for k in a), (a, b)
    for p, q in zip(whole[0].parameters(), model2.parameters()):
        assert torch.equal(p, q)


def test_unknown_state_is_refused_by_name():
    class Odd:
        def __init__(self):
            self.handle = open  # noqa: SIM115 - a callable is skipped, an object is not
            self.thing = object()

    with pytest.raises(TypeError, match="Odd.thing: cannot checkpoint a object"):
        checkpoint.component_state(Odd())
