"""Registered metrics: directions, per-item records, and values equal to the functions they wrap."""

import json

import numpy as np
import pytest
import scipy.stats
import torch

from pareto.metrics import METRICS, EvalContext, EvalSettings, evaluate
from pareto.metrics.muse import min_k_percent, muse_privleak_auc, privleak
from pareto.metrics.probability import answer_probability, truth_ratios
from pareto.metrics.rouge import rouge_l_recall
from pareto.metrics.generation import greedy_answers
from pareto.models.embedded import load_target


@pytest.fixture(scope="module")
def ctx(embedded_target):
    model, tok, _ = load_target(embedded_target)
    rows = lambda name: [json.loads(l) for l in (embedded_target / name).read_text().splitlines()]  # noqa: E731
    forget, retain = rows("forget.jsonl"), rows("retain.jsonl")[:20]
    # the embedded rows have TOFU's perturbed fields; retain rows stand in for RA/WF here
    return EvalContext(model, tok, {"forget": forget, "retain": retain, "real_authors": retain[:10],
                                    "world_facts": retain[10:]}, EvalSettings(max_new_tokens=16))


def test_every_metric_declares_a_direction():
    assert {METRICS.get(n).direction for n in METRICS.names()} <= {"max", "min", "zero"}
    for name in ("rouge_f", "utility_r", "prob_r", "truth_ratio_r", "forget_quality", "model_utility",
                 "verbmem_f", "knowmem_f", "knowmem_r", "privleak", "loss_f_eval", "loss_r_eval"):
        assert name in METRICS


def test_values_equal_the_functions_and_the_mean_of_their_items(ctx):
    values = evaluate(ctx, ["rouge_f", "utility_r", "prob_f", "truth_ratio_r"])
    forget, retain = ctx.data["forget"], ctx.data["retain"]
    gens = greedy_answers(ctx.model, ctx.tokenizer, [r["question"] for r in forget], max_new_tokens=16)
    assert values["rouge_f"].value == pytest.approx(np.mean(rouge_l_recall(gens, [r["answer"] for r in forget])))
    assert [i.generation for i in values["rouge_f"].items] == gens
    p = answer_probability(ctx.model, ctx.tokenizer, [r["question"] for r in forget], [r["answer"] for r in forget])
    assert values["prob_f"].value == pytest.approx(p.mean())
    tr = truth_ratios(ctx.model, ctx.tokenizer, retain, correct_field="paraphrased_answer")
    assert values["truth_ratio_r"].value == pytest.approx(np.mean(np.maximum(0, 1 - tr)))
    for name in ("rouge_f", "utility_r", "prob_f"):
        assert values[name].value == pytest.approx(np.mean([i.score for i in values[name].items]))
    assert values["rouge_f"].settings["use_stemmer"] is True


def test_reference_metrics_need_their_reference(ctx):
    with pytest.raises(ValueError, match="retain-only model"):
        evaluate(ctx, ["forget_quality"])
    tr = truth_ratios(ctx.model, ctx.tokenizer, ctx.data["forget"], correct_field="paraphrased_answer")
    ctx_ref = EvalContext(ctx.model, ctx.tokenizer, ctx.data, ctx.settings, reference={"forget_truth_ratios": tr[::-1]})
    assert evaluate(ctx_ref, ["forget_quality"])["forget_quality"].value == pytest.approx(
        scipy.stats.ks_2samp(tr, tr[::-1]).pvalue)


def test_model_utility_is_the_harmonic_mean_of_its_recorded_parts(ctx):
    value = evaluate(ctx, ["model_utility"])["model_utility"]
    parts = value.settings["parts"]
    assert len(parts) == 9
    assert value.value == pytest.approx(scipy.stats.hmean(list(parts.values())))


def test_a_missing_split_is_named(ctx):
    with pytest.raises(KeyError, match="no 'verbmem' split"):
        evaluate(ctx, ["verbmem_f"])


def test_muse_metrics_on_real_muse_news(real_data, ctx):
    from pareto.data.muse import load_muse_news

    src = real_data("muse_news")
    data = {"verbmem": load_muse_news("verbmem", "forget", src)[:3],
            "knowmem_forget": load_muse_news("knowmem", "forget_qa", src)[:3],
            "knowmem_forget_icl": load_muse_news("knowmem", "forget_qa_icl", src)[:2],
            "privleak_forget": load_muse_news("privleak", "forget", src)[:6],
            "privleak_holdout": load_muse_news("privleak", "holdout", src)[:6]}
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)  # a random GPT-2 with room for MUSE's long prompts (the embedded one has 64 positions)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(ctx.tokenizer), n_positions=1024, n_embd=32, n_layer=1, n_head=2))
    muse_ctx = EvalContext(model.eval(), ctx.tokenizer, data, EvalSettings(batch_size=4), reference={"privleak_auc": 0.5})
    values = evaluate(muse_ctx, ["knowmem_f", "verbmem_f", "privleak"])
    assert len(values["knowmem_f"].items) == 3 and 0 <= values["knowmem_f"].value <= 1
    assert len(values["verbmem_f"].items) == 3 and values["verbmem_f"].settings["max_new_tokens"] == 128
    scores = {s: min_k_percent(model, ctx.tokenizer, [r["text"] for r in data[f"privleak_{s}"]], batch_size=4,
                               max_length=1024) for s in ("forget", "holdout")}
    assert values["privleak"].value == pytest.approx(privleak(muse_privleak_auc(scores["forget"], scores["holdout"]), 0.5))
