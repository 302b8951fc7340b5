"""The engine on real transformers causal LMs of other architectures and in bf16."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine, gram_entries
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.lm import LM_TASK, answer_ce


def batch(seed, b=4, t=12, vocab=97):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (b, t), generator=g)
    labels = ids.clone()
    labels[:, : t // 2] = -100  # the "question" half is not scored
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def tiny_llama(dtype):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(cfg).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_llama_steps_with_gram_matching_an_independent_float64_computation(dtype):
    model = tiny_llama(dtype)
    params = list(model.parameters())
    rb, fb = batch(0), batch(1)
    g_r = torch.cat([g.reshape(-1) for g in torch.autograd.grad(answer_ce(model, rb), params)]).double()
    g_f = torch.cat([g.reshape(-1) for g in torch.autograd.grad(answer_ce(model, fb), params)]).double()
    ga = OBJECTIVES.build("ga")
    ga.task = LM_TASK
    engine = UnlearnEngine(model, build_combiner("ngdiff"), ga, LR_RULES.build("autolr"),
                           build_optimizer("adam", params, lr=1e-3), lr=1e-3, retain_loss=LM_TASK.loss)
    row = engine.step(rb, fb)
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    assert row["gram_rr"] == pytest.approx((g_r @ g_r).item(), rel=tol)
    assert row["gram_rf"] == pytest.approx((g_r @ g_f).item(), rel=tol, abs=tol * math.sqrt(row["gram_rr"] * row["gram_ff"]))
    assert row["gram_ff"] == pytest.approx((g_f @ g_f).item(), rel=tol)
    assert row["dot_r_upd"] >= 0 >= row["dot_f_upd"]
    for _ in range(3):
        row = engine.step(batch(2), batch(3))
        assert all(math.isfinite(row[k]) for k in ("loss_r", "loss_f", "gram_rr", "lr"))
    assert all(p.dtype == dtype for p in model.parameters())
    assert engine.gradient_buffer_bytes() == sum(p.numel() for p in params) * params[0].element_size()


def test_half_precision_gram_is_chunked_and_accumulated_in_fp32(monkeypatch):
    import pareto.core.engine as engine_mod

    monkeypatch.setattr(engine_mod, "_CHUNK", 7)
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(100, generator=g).bfloat16(), torch.randn(100, generator=g).bfloat16()
    expected = [(r.double() @ r.double()).item(), (r.double() @ f.double()).item(), (f.double() @ f.double()).item()]
    assert gram_entries(r, f) == pytest.approx(expected, rel=1e-6, abs=1e-6)
