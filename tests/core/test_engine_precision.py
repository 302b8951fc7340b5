"""Micro-batch accumulation, bf16 autocast and wider gradient buffers in the engine."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine, split_batch
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.data.qa import IGNORE
from pareto.lm import LM_TASK, token_nll


def ragged_batch(seed, b=6, t=14, vocab=97):
    """Answers of different lengths, so a token mean differs from a mean of micro-batch means."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (b, t), generator=g)
    labels = ids.clone()
    for i in range(b):
        labels[i, : 2 + 2 * i] = IGNORE
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def token_mean(model, batch):
    nll, mask = token_nll(model, batch)
    return nll.sum() / mask.sum()


def scored_tokens(batch):
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def exact_token_mean(model, batch):
    return token_mean(model, batch)


exact_token_mean.normaliser = scored_tokens


def llama(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(cfg).to(dtype)


def lm_ga():
    """GA on the LM task's answer CE."""
    ga = OBJECTIVES.build("ga")
    ga.task = LM_TASK
    return ga


def engine(model, retain_loss, *, combiner="ngdiff", lr_rule="fixed", **kw):
    params = list(model.parameters())
    return UnlearnEngine(model, build_combiner(combiner), lm_ga(), LR_RULES.build(lr_rule),
                         build_optimizer("sgd", params, lr=1e-2), lr=1e-2, retain_loss=retain_loss, **kw)


KEYS = ("loss_r", "loss_f", "gram_rr", "gram_rf", "gram_ff", "w_r", "w_f", "dot_r_upd", "dot_f_upd",
        "loss_r_after", "loss_f_after")


@pytest.mark.parametrize("micro", [2, 3, 6])
def test_accumulated_micro_batches_equal_the_full_batch(micro):
    rb, fb = ragged_batch(0), ragged_batch(1)
    full, acc = llama(), llama()
    e_full, e_acc = engine(full, exact_token_mean), engine(acc, exact_token_mean)
    for e in (e_full, e_acc):  # GA on the same token mean, with the same normaliser
        e.objective = _TokenGA()
    a = e_full.step(rb, fb)
    b = e_acc.step(split_batch(rb, micro), split_batch(fb, micro))
    for k in KEYS:
        assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-7), k
    for p, q in zip(full.parameters(), acc.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-7)


class _TokenGA(OBJECTIVES.get("ga")):
    normaliser = staticmethod(scored_tokens)

    def value(self, model, batch):
        return token_mean(model, batch)


def test_a_loss_without_a_normaliser_is_refused_for_micro_batches():
    """Weighting micro-batches by examples would change a token mean's gradient; the engine refuses."""
    rb, fb = ragged_batch(0), ragged_batch(1)
    e = engine(llama(), token_mean)
    e.objective = _TokenGA()
    e.step(rb, fb)  # one batch needs no weights
    with pytest.raises(ValueError, match="token_mean declares no normaliser"):
        e.step(split_batch(rb, 3), split_batch(fb, 3))


def test_the_lm_tasks_retain_loss_accumulates_exactly():
    """The LM task's L_R (`LM_TASK.loss`, answer CE) carries its normaliser (scored tokens):
    3 micro-batches give the full batch's Gram matrix (it used to weight by examples)."""
    rb, fb = ragged_batch(0), ragged_batch(1)
    full, acc = llama(), llama()
    a = UnlearnEngine(full, build_combiner("ngdiff"), lm_ga(), LR_RULES.build("fixed"),
                      build_optimizer("sgd", list(full.parameters()), lr=1e-2), lr=1e-2,
                      retain_loss=LM_TASK.loss).step(rb, fb)
    b = UnlearnEngine(acc, build_combiner("ngdiff"), lm_ga(), LR_RULES.build("fixed"),
                      build_optimizer("sgd", list(acc.parameters()), lr=1e-2), lr=1e-2,
                      retain_loss=LM_TASK.loss).step(
        split_batch(rb, 3), split_batch(fb, 3))
    for k in KEYS:
        assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-7), k


def test_mixed_parameter_dtypes_get_a_clear_error():
    model = llama()
    model.model.layers[0].to(torch.bfloat16)
    with pytest.raises(ValueError, match="mix dtypes or devices .*bfloat16 on cpu, float32 on cpu"):
        engine(model, exact_token_mean)


def test_split_batch_covers_every_example_once():
    b = ragged_batch(0, b=7)
    parts = split_batch(b, 3)
    assert [p["input_ids"].shape[0] for p in parts] == [2, 3, 2]
    torch.testing.assert_close(torch.cat([p["input_ids"] for p in parts]), b["input_ids"])
    assert len(split_batch(b, 20)) == 7


def float64_gram(model, retain, forget) -> dict:
    """Independently of the engine: each micro-batch's bf16 gradient (its token-mean loss weighted
    by its share of the scored tokens, as autograd gives it), summed and dotted in float64."""
    params = list(model.parameters())
    flat = {}
    for name, batches in (("r", retain), ("f", forget)):
        total = sum(scored_tokens(b) for b in batches)
        acc = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
        for b in batches:
            grads = torch.autograd.grad(token_mean(model, b) * (scored_tokens(b) / total), params)
            acc += torch.cat([g.reshape(-1) for g in grads]).double()
        flat[name] = acc
    r, f = flat["r"], flat["f"]
    return {"gram_rr": float(r @ r), "gram_rf": float(r @ f), "gram_ff": float(f @ f)}


def test_fp32_gradient_buffers_with_bf16_parameters():
    model = llama(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    e = engine(model, exact_token_mean, grad_dtype=torch.float32)
    e.objective = _TokenGA()
    assert e._flat_r.dtype == e._flat_g.dtype == torch.float32
    assert e.gradient_buffer_bytes() == 4 * n + 2 * n + 2 * n  # g_R in fp32, g_F widened, the bf16 scratch
    rb, fb = split_batch(ragged_batch(0), 3), split_batch(ragged_batch(1), 3)
    exact = float64_gram(model, rb, fb)
    bf16 = engine(llama(torch.bfloat16), exact_token_mean)  # the same model, accumulating in bf16
    bf16.objective = _TokenGA()
    a, b = bf16.step(rb, fb), e.step(rb, fb)
    for k, value in exact.items():
        assert b[k] == pytest.approx(value, rel=1e-6), k  # fp32 sums of the same bf16 micro-batch gradients
    # the check can tell: summing the micro-batches in bf16 is off by bf16's rounding (~1e-3)
    assert max(abs(a[k] / value - 1) for k, value in exact.items()) > 1e-4, (a, exact)
    for _ in range(3):
        row = e.step(split_batch(ragged_batch(2), 3), split_batch(ragged_batch(3), 3))
        assert row["dot_r_upd"] >= 0 >= row["dot_f_upd"]  # Lemma 4
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


@pytest.mark.parametrize("lr_rule", ["fixed", "autolr"])
def test_bf16_autocast_keeps_fp32_master_weights(lr_rule):
    rb, fb = ragged_batch(0), ragged_batch(1)
    amp = engine(llama(), token_mean, lr_rule=lr_rule, autocast=torch.bfloat16)
    fp32 = engine(llama(), token_mean, lr_rule=lr_rule)
    for e in (amp, fp32):
        e.objective = _TokenGA()
    a, b = fp32.step(rb, fb), amp.step(rb, fb)
    assert all(p.dtype == torch.float32 for p in amp.model.parameters())
    assert b["loss_r"] != a["loss_r"]  # the forward really ran in bf16
    for k in ("loss_r", "loss_f", "gram_rr", "gram_ff"):
        assert b[k] == pytest.approx(a[k], rel=5e-2), k
    assert b["dot_r_upd"] >= 0 >= b["dot_f_upd"]


def test_measurements_run_in_eval_mode_on_a_model_with_dropout():
    """AutoLR's probe losses (L₀ included) and the after-step losses are measurements: with dropout
    active in training they are taken in eval mode, so they are one deterministic function."""
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                      attention_dropout=0.5)
    model = LlamaForCausalLM(cfg)
    seen = {}

    class Capture:  # an lr rule that records what the probe measures, then keeps η
        def next_lr(self, step, lr, probe):
            seen["minus_plus"], seen["loss0"] = probe(lr), probe.loss0
            seen["again"] = probe(lr)
            return lr, None

    e = engine(model, exact_token_mean)
    e.objective, e.lr_rule = _TokenGA(), Capture()
    assert e.has_dropout
    rb, fb = ragged_batch(0), ragged_batch(1)
    with torch.no_grad():
        model.eval()
        before = exact_token_mean(model, rb)
    row = e.step(rb, fb)
    assert model.training  # the training forwards ran in train mode, and it is left there
    assert seen["loss0"] == pytest.approx(float(before), abs=1e-6) != row["loss_r"]  # L₀ re-measured in eval mode
    assert seen["again"] == seen["minus_plus"]  # no dropout noise between two probes
    with torch.no_grad():
        model.eval()
        assert row["loss_r_after"] == pytest.approx(float(exact_token_mean(model, rb)), abs=1e-6)
