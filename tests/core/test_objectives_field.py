"""The field's forget objectives (wga, satimp, ceu, undial, idknll, idkdpo) against independent
float64 implementations written from each paper's equation, with explicit loops over the logits
of a tiny GPT-2; micro-batch accumulation; parameters; the classifier's analogue; every combiner."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from pareto.core.combiners import COMBINERS, build_combiner, compatibility_problem
from pareto.core.engine import UnlearnEngine
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.objectives._base import task_problem
from pareto.core.optim import build_optimizer
from pareto.data.idk import idk_answer, idk_answers
from pareto.data.qa import IGNORE, collate, encode_qa
from pareto.lm import LMTask
from pareto.vision.task import ClassifierTask

VOCAB, BOS, EOS, PAD = 50, 1, 2, 0
NEW = ("wga", "satimp", "ceu", "undial", "idknll", "idkdpo", "rmu")
DEFAULTS = {"rmu": {"layer": 0}}  # the tiny model has two blocks


class CharTokenizer:
    """A character tokenizer into the tiny vocabulary (ids 3..49)."""

    bos_token_id, eos_token_id, pad_token_id = BOS, EOS, PAD

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [3 + ord(c) % (VOCAB - 3) for c in text]}


TOK = CharTokenizer()
ROWS = [("Who?", "Ann"), ("Where is it?", "far away"), ("Why?", "no"), ("When then?", "in May, late")]
TASK = LMTask(tokenizer=TOK, max_length=64)


def tiny_gpt2(seed=0):
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=16, n_layer=2, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(cfg).double().eval()


def forget_batch(rows=ROWS, start=0):
    enc = [encode_qa(TOK, q, a, max_length=64) for q, a in rows]
    return collate(enc, PAD, indices=range(start, start + len(rows)))


def perturbed(model, seed=1, scale=0.05):
    """The model moved away from where `prepare` saw it (reference ≠ current)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def build(name, **params):
    obj = OBJECTIVES.build(name, **{**DEFAULTS.get(name, {}), **params})
    obj.task = TASK
    return obj


def grads(value, model):
    params = list(model.parameters())  # rmu: the blocks above its layer get none (zeros)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, params, materialize_grads=True)])


# ------------------------------------------------------- independent implementations (from the papers)
def scored(batch):
    """(b, t, y): position t's logits predict the scored token y = labels[b, t+1]."""
    labels = batch["labels"]
    return [(b, t, int(labels[b, t + 1])) for b in range(labels.shape[0]) for t in range(labels.shape[1] - 1)
            if labels[b, t + 1] != IGNORE]


def logits_of(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def ref_weighted_ga(model, batch, weight):
    """(1/N) Σ_t w(p_t)·(−log p_t), the weight held fixed (WGA, SatImp)."""
    z, terms = logits_of(model, batch), []
    for b, t, y in scored(batch):
        logp = z[b, t, y] - torch.logsumexp(z[b, t], 0)
        terms.append(weight(math.exp(logp.item())) * -logp)
    return sum(terms) / len(terms)


def ref_ceu(model, batch, skip):
    z, terms, seen = logits_of(model, batch), [], {}
    for b, t, y in scored(batch):
        seen[b] = seen.get(b, 0) + 1
        if seen[b] <= skip:
            continue
        logp = z[b, t] - torch.logsumexp(z[b, t], 0)
        others = [v for v in range(VOCAB) if v != y]
        zo = z[b, t, others].detach()
        q = torch.exp(zo - torch.logsumexp(zo, 0))
        terms.append(-sum(q[k] * logp[v] for k, v in enumerate(others)))
    return sum(terms) / len(terms)


def ref_undial(model, ref_model, batch, beta):
    z = logits_of(model, batch)
    with torch.no_grad():
        zr = logits_of(ref_model, batch)
    terms = []
    for b, t, y in scored(batch):
        adj = zr[b, t].clone()
        adj[y] -= beta
        q = torch.exp(adj - torch.logsumexp(adj, 0))
        logp = z[b, t] - torch.logsumexp(z[b, t], 0)
        terms.append(-(q * logp).sum())
    return sum(terms) / len(terms)


def idk_rows(seed=0, start=0):
    return [(q, idk_answer(start + i, seed)) for i, (q, _) in enumerate(ROWS)]


def ref_seq_logprob(model, batch):
    z = logits_of(model, batch)
    out = [0.0] * batch["labels"].shape[0]
    for b, t, y in scored(batch):
        out[b] = out[b] + z[b, t, y] - torch.logsumexp(z[b, t], 0)
    return out


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
def test_wga_matches_the_paper(beta):
    model, batch = tiny_gpt2(), forget_batch()
    obj = build("wga", beta=beta)
    got, want = obj.value(model, batch), ref_weighted_ga(model, batch, lambda p: p ** beta)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(got, model), grads(want, model), rtol=1e-8, atol=1e-12)
    assert not obj.positive_loss


@pytest.mark.parametrize("b1,b2", [(5.0, 1.0), (1.0, 0.0), (0.5, 3.0)])
def test_satimp_matches_the_paper(b1, b2):
    model, batch = tiny_gpt2(), forget_batch()
    obj = build("satimp", beta1=b1, beta2=b2)
    got, want = obj.value(model, batch), ref_weighted_ga(model, batch, lambda p: p ** b1 * (1 - p) ** b2)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(got, model), grads(want, model), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("skip", [0, 1, 2])
def test_ceu_matches_the_paper(skip):
    model, batch = tiny_gpt2(), forget_batch()
    obj = build("ceu", ignore_first_n_answer_tokens=skip)
    got, want = obj.value(model, batch), -ref_ceu(model, batch, skip)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(got, model), grads(want, model), rtol=1e-8, atol=1e-12)
    assert obj.positive_loss and got.item() < 0


@pytest.mark.parametrize("beta", [0.0, 10.0])
def test_undial_matches_the_paper_with_the_cached_reference(beta):
    model, batch = tiny_gpt2(), forget_batch()
    ref_model = copy.deepcopy(model)
    obj = build("undial", beta=beta)
    obj.prepare(model, [forget_batch(ROWS[:2]), forget_batch(ROWS[2:], start=2)])  # other batch shapes
    if beta == 0:  # self-distillation onto itself: a stationary point
        assert grads(obj.value(model, batch), model).abs().max().item() < 1e-12
    perturbed(model)
    got, want = obj.value(model, batch), -ref_undial(model, ref_model, batch, beta)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(got, model), grads(want, model), rtol=1e-8, atol=1e-12)
    assert obj.positive_loss and got.item() < 0


def test_with_answers_encodes_the_idk_answer_as_the_data_would():
    batch = forget_batch()
    answers = [idk_answer(i) for i in range(len(ROWS))]
    want = forget_batch([(q, a) for (q, _), a in zip(ROWS, answers)])
    got = TASK.with_answers(batch, answers)
    for key in ("input_ids", "attention_mask", "labels", "index"):
        assert torch.equal(got[key], want[key]), key
    for length in (12, 22):  # cut as encode_qa cuts (22: inside the answer; 12: inside the prompt)
        short = LMTask(tokenizer=TOK, max_length=length).with_answers(batch, answers)
        for i, (q, _) in enumerate(ROWS):
            enc = encode_qa(TOK, q, answers[i], max_length=length)
            n = len(enc.input_ids)
            assert short["input_ids"][i, :n].tolist() == enc.input_ids
            assert short["labels"][i].tolist() == enc.labels + [IGNORE] * (short["labels"].shape[1] - n)


def test_idk_answers_are_shipped_and_chosen_deterministically():
    answers = idk_answers()
    assert len(answers) >= 100 and len(set(answers)) == len(answers)
    assert [idk_answer(i, 3) for i in range(50)] == [idk_answer(i, 3) for i in range(50)]
    assert [idk_answer(i, 3) for i in range(50)] != [idk_answer(i, 4) for i in range(50)]
    assert len({idk_answer(i) for i in range(200)}) > 50  # spread over the list


@pytest.mark.parametrize("seed", [0, 7])
def test_idknll_matches_the_nll_of_the_idk_answers(seed):
    model, batch = tiny_gpt2(), forget_batch()
    obj = build("idknll", seed=seed)
    alt = forget_batch(idk_rows(seed))
    lps, n = ref_seq_logprob(model, alt), len(scored(alt))
    want = sum(lps) / n  # −NLL averaged over the IDK answer tokens
    got = obj.value(model, batch)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(got, model), grads(want, model), rtol=1e-8, atol=1e-12)
    assert obj.normaliser(batch) == n


def test_idkdpo_matches_dpo_with_the_cached_reference():
    model, batch = tiny_gpt2(), forget_batch()
    ref_model = copy.deepcopy(model)
    beta = 0.3
    obj = build("idkdpo", beta=beta)
    obj.prepare(model, [batch])
    assert obj.value(model, batch).item() == pytest.approx(-2 / beta * math.log(2), rel=1e-12)  # step 0
    perturbed(model)
    alt = forget_batch(idk_rows())
    with torch.no_grad():
        rw, rl = ref_seq_logprob(ref_model, alt), ref_seq_logprob(ref_model, batch)
    w, lo = ref_seq_logprob(model, alt), ref_seq_logprob(model, batch)
    terms = [torch.nn.functional.logsigmoid(beta * ((w[i] - rw[i]) - (lo[i] - rl[i]))) for i in range(len(ROWS))]
    want = (2 / beta) * sum(terms) / len(terms)  # L_F = −L_DPO
    got = obj.value(model, batch)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(got, model), grads(want, model), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("layer,c,seed", [(0, 2.0, 0), (0, 6.5, 3)])
def test_rmu_forget_term_matches_the_paper(layer, c, seed):
    model, batch = tiny_gpt2(), forget_batch()
    cache = []
    hook = model.transformer.h[layer].register_forward_hook(lambda m, i, o: cache.append(o[0] if isinstance(o, tuple) else o))
    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    hook.remove()
    h = cache[0]
    u = torch.rand(h.shape[-1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    u = c * u / u.norm()
    per_example = []
    for b in range(h.shape[0]):
        ts = [t for t in range(h.shape[1]) if batch["labels"][b, t] != IGNORE]  # the answer tokens
        per_example.append(sum(((h[b, t] - u) ** 2).mean() for t in ts) / len(ts))
    want = -sum(per_example) / len(per_example)
    obj = build("rmu", layer=layer, steering_coeff=c, seed=seed)
    got = obj.value(model, batch)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(got, model), grads(want, model), rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="layer must be in 0..0"):  # the last block's output is normed
        build("rmu", layer=1).value(model, batch)


def prepared(name, model):
    obj = build(name)
    obj.prepare(model, [forget_batch()])
    return obj


@pytest.mark.parametrize("name", NEW)
def test_micro_batches_accumulate_exactly(name):
    model = tiny_gpt2()
    obj = prepared(name, model)
    perturbed(model)
    full = forget_batch()
    parts = [{k: v[a:b] for k, v in full.items()} for a, b in ((0, 1), (1, 4))]
    norms = [obj.normaliser(p) for p in parts]
    assert sum(norms) == obj.normaliser(full)
    acc = sum(obj.value(model, p) * n / sum(norms) for p, n in zip(parts, norms))
    want = obj.value(model, full)
    assert acc.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(acc, model), grads(want, model), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name,params,match", [
    ("wga", {"beta": -1.0}, "beta must be"), ("wga", {"beta": math.inf}, "beta must be"),
    ("satimp", {"beta1": -0.5}, "beta1 must be"), ("satimp", {"beta2": math.nan}, "beta2 must be"),
    ("ceu", {"ignore_first_n_answer_tokens": -1}, "ignore_first_n_answer_tokens must be"),
    ("ceu", {"ignore_first_n_answer_tokens": 1.5}, "ignore_first_n_answer_tokens must be"),
    ("undial", {"beta": -2.0}, "beta must be"),
    ("idknll", {"seed": "a"}, "seed must be"),
    ("idkdpo", {"beta": 0.0}, "beta must be"), ("idkdpo", {"seed": 1.5}, "seed must be"),
    ("rmu", {"layer": -1}, "layer must be"), ("rmu", {"steering_coeff": 0.0}, "steering_coeff must be"),
    ("rmu", {"seed": None}, "seed must be"),
])
def test_bad_parameters_are_clear_value_errors(name, params, match):
    with pytest.raises(ValueError, match=match):
        OBJECTIVES.get(name)(**params)
    with pytest.raises(KeyError, match=f"forget objective '{name}': {match}"):  # the registry names it
        OBJECTIVES.build(name, **params)


@pytest.mark.parametrize("name", NEW)
def test_an_objective_without_a_task_says_so(name):
    obj = OBJECTIVES.build(name)
    with pytest.raises(RuntimeError, match=f"forget objective '{name}' has no task"):
        obj.prepare(tiny_gpt2(), [forget_batch()])
        obj.value(tiny_gpt2(), forget_batch())


def test_reference_objectives_refuse_unseen_examples():
    model = tiny_gpt2()
    for name in ("undial", "idkdpo"):
        obj = build(name)
        obj.prepare(model, [forget_batch(ROWS[:2])])
        with pytest.raises(RuntimeError, match="prepare"):
            obj.value(model, forget_batch())


def test_idk_objectives_need_the_tokenizer_and_qa_data():
    obj = OBJECTIVES.build("idknll")
    obj.task = LMTask()
    with pytest.raises(RuntimeError, match="tokenizer"):
        obj.value(tiny_gpt2(), forget_batch())
    text = forget_batch()
    text["labels"] = text["input_ids"].clone()  # a text window: nothing (or BOS alone) before the "answer"
    text["labels"][:, 0] = IGNORE
    with pytest.raises(ValueError, match="QA data"):
        build("idknll").value(tiny_gpt2(), text)


# --------------------------------------------------------------------------- the classifier task
def image_batch(n=5, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"images": torch.randn(n, 3, 4, 4, generator=g, dtype=torch.float64),
            "labels": torch.randint(0, classes, (n,), generator=g), "index": torch.arange(n)}


def tiny_classifier(classes=4):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, classes)).double()


@pytest.mark.parametrize("name,params", [("wga", {}), ("satimp", {}), ("ceu", {"ignore_first_n_answer_tokens": 0}),
                                         ("undial", {"beta": 3.0})])
def test_token_objectives_on_a_classifier_score_the_label_as_one_token(name, params):
    model, batch = tiny_classifier(), image_batch()
    ref_model = copy.deepcopy(model)
    obj = OBJECTIVES.build(name, **params)
    obj.task = ClassifierTask()
    obj.prepare(model, [batch])
    perturbed(model, scale=0.3)
    z, y = model(batch["images"]), batch["labels"]
    with torch.no_grad():
        zr = ref_model(batch["images"])
    terms = []
    for i in range(len(y)):
        logp = z[i] - torch.logsumexp(z[i], 0)
        p = math.exp(logp[y[i]].item())
        if name == "wga":
            terms.append(p * -logp[y[i]])
        elif name == "satimp":
            terms.append(p ** 5 * (1 - p) * -logp[y[i]])
        else:
            target = (zr[i] if name == "undial" else z[i].detach()).clone()
            if name == "undial":
                target[y[i]] -= 3.0
            else:
                target[y[i]] = -math.inf
            terms.append((torch.softmax(target, 0) * logp).sum())  # −CE: L_F of ceu, undial
    want = sum(terms) / len(terms)
    got = obj.value(model, batch)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert torch.allclose(grads(got, model), grads(want, model), rtol=1e-8, atol=1e-12)
    assert obj.normaliser(batch) == len(y)


def test_classifier_ceu_with_a_skipped_token_and_idk_objectives_say_what_is_wrong():
    obj = OBJECTIVES.build("ceu")
    obj.task = ClassifierTask()
    with pytest.raises(ValueError, match="ignore_first_n_answer_tokens=1 leaves no token"):
        obj.value(tiny_classifier(), image_batch())
    for name in ("idknll", "idkdpo", "rmu"):
        obj = OBJECTIVES.build(name)
        obj.task = ClassifierTask()
        with pytest.raises(ValueError, match="language models only"):
            obj.prepare(tiny_classifier(), [image_batch()])
            obj.value(tiny_classifier(), image_batch())
        assert "language models only" in task_problem(name, "image_classification")
        assert task_problem(name, "language_model") is None
    assert all(task_problem(n, "image_classification") is None for n in ("wga", "satimp", "ceu", "undial"))
    assert "hidden states" in task_problem("rmu", "image_classification")


# ----------------------------------------------------------------------------- with every combiner
@pytest.mark.parametrize("name", NEW)
def test_every_combiner_steps_or_is_refused_with_a_reason(name):
    base, batch, retain = tiny_gpt2(), forget_batch(), forget_batch(ROWS[:2])
    for comb in COMBINERS.names():
        problem = compatibility_problem(comb, name)
        if problem:  # only loss-weighting combiners, only for −L_F < 0 (wga, satimp: weighted ascent)
            assert COMBINERS.get(comb).needs_positive_forget_loss and not OBJECTIVES.get(name).positive_loss
            continue
        rules = ("fixed", "autolr") if comb == "ngdiff" else ("fixed",)  # AutoLR reads only the retain loss
        for rule in rules:
            model = copy.deepcopy(base)
            obj = build(name)
            opt = build_optimizer("sgd", list(model.parameters()), lr=1e-2)
            engine = UnlearnEngine(model, build_combiner(comb, seed=0), obj, LR_RULES.build(rule), opt, lr=1e-2,
                                   retain_loss=TASK.loss)
            obj.prepare(model, [batch])
            row = engine.step(retain, [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}],
                              measure_after=False)
            assert all(math.isfinite(row[k]) for k in ("loss_r", "loss_f", "gram_ff", "lr")), (comb, rule)
            assert (row["loss_f"] < 0) == obj.positive_loss  # −L_F > 0 exactly when declared


@pytest.mark.parametrize("name", NEW)
def test_a_bf16_llama_steps_with_every_objective(name):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                      bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    obj = build(name)
    engine = UnlearnEngine(model, build_combiner("ngdiff"), obj, LR_RULES.build("fixed"),
                           build_optimizer("adam", list(model.parameters()), lr=1e-3), lr=1e-3, retain_loss=TASK.loss)
    obj.prepare(model, [forget_batch()])
    for _ in range(2):
        row = engine.step(forget_batch(ROWS[:2]), forget_batch(), measure_after=False)
        assert all(math.isfinite(row[k]) for k in ("loss_r", "loss_f", "gram_ff")), name
        assert row["gram_ff"] > 0


def test_a_trial_gives_the_idk_objectives_the_tokenizer_and_steps(embedded_target):
    """Through trainables.unlearn (build_components: the LM task with the target's tokenizer)."""
    from pareto.spec import parse_spec
    from trainables.unlearn import run_trial

    spec, points = parse_spec("""name: idk
unlearn: {steps: 2, batch_size: 4}
eval: {retain_items: 4, metrics: [loss_f_eval]}
search:
  baseline: false
  space: {combiner: [ngdiff], objective: [idkdpo, idknll, undial], lr: [1.0e-4], seed: [0]}
""")
    for point in points:
        last = run_trial({"spec": spec.to_dict(), "target_dir": str(embedded_target)}, point, lambda *a: None)
        assert last["status"] != "failed", last.get("error")
        rows = last["step_rows"]
        assert [r["step"] for r in rows] == [0, 1] and all(r["loss_f"] < 0 for r in rows)
        if point["objective"]["name"] == "idkdpo":  # θ = θ_ref at step 0: (2/β)·ln 2
            assert rows[0]["loss_f"] == pytest.approx(-(2 / 0.1) * math.log(2), rel=1e-3)
