"""TOFU's metrics, registered with their directions (definitions: field-notes §3).

rouge_f / utility_r   ROUGE-L recall of greedy answers on forget / retain questions
prob_f / prob_r       length-normalised answer probability exp(−mean NLL)
truth_ratio_f         mean min(tr, 1/tr) on forget (paraphrased answer as the correct one)
truth_ratio_r         mean max(0, 1 − tr) on retain
forget_quality        KS-test p-value of forget truth ratios vs the retain-only model's
model_utility         harmonic mean of {retain, real_authors, world_facts} × {prob, rouge, truth ratio}
"""

from __future__ import annotations

import numpy as np

from pareto.metrics._base import (EvalContext, ItemScore, Metric, MetricValue, item_id, register_metric,
                                  register_split_metrics)
from pareto.metrics.forget_quality import forget_quality
from pareto.metrics.generation import greedy_answers
from pareto.metrics.model_utility import model_utility
from pareto.metrics.probability import answer_probability, normalized_probability, truth_ratio_stat, truth_ratios
from pareto.metrics.rouge import rouge_l_recall


def qa_split(ctx: EvalContext, split: str) -> list[dict]:
    """The rows of `split`, which TOFU's metrics need as question/answer pairs."""
    rows = ctx.split(split)
    if not all(isinstance(r.get("question"), str) and isinstance(r.get("answer"), str) for r in rows):
        raise ValueError(f"the {split!r} split holds texts, not question/answer pairs: TOFU's metrics (rouge_f, "
                         f"utility_r, prob_*, truth_ratio_*, forget_quality, model_utility) need QA data. For a text "
                         f"corpus (MUSE-News) use loss_f_eval, loss_r_eval, verbmem_f, knowmem_f, knowmem_r, privleak.")
    return rows


def answers(ctx: EvalContext, split: str) -> list[str]:
    rows = qa_split(ctx, split)
    s = ctx.settings
    return ctx.memo(("answers", split), lambda: greedy_answers(
        ctx.model, ctx.tokenizer, [r["question"] for r in rows], max_new_tokens=s.max_new_tokens,
        batch_size=s.batch_size, add_bos=s.add_bos, template=s.template_format))


def rouge(ctx: EvalContext, split: str) -> MetricValue:
    rows, gens = qa_split(ctx, split), answers(ctx, split)
    scores = ctx.memo(("rouge", split), lambda: rouge_l_recall(gens, [r["answer"] for r in rows], ctx.settings.use_stemmer))
    items = tuple(ItemScore(item_id(r, i, split), sc, r["question"], g, r["answer"])
                  for i, (r, g, sc) in enumerate(zip(rows, gens, scores)))
    return MetricValue(float(np.mean(scores)), items, {"rouge": "rougeL recall", "use_stemmer": ctx.settings.use_stemmer,
                                                        "max_new_tokens": ctx.settings.max_new_tokens, "n_items": len(rows),
                                                        **ctx.settings.recorded()})


def probability(ctx: EvalContext, split: str) -> MetricValue:
    rows, s = qa_split(ctx, split), ctx.settings
    p = ctx.memo(("prob", split), lambda: answer_probability(
        ctx.model, ctx.tokenizer, [r["question"] for r in rows], [r["answer"] for r in rows],
        batch_size=s.batch_size, add_bos=s.add_bos, template=s.template_format))
    items = tuple(ItemScore(item_id(r, i, split), float(v), r["question"], None, r["answer"]) for i, (r, v) in enumerate(zip(rows, p)))
    return MetricValue(float(np.mean(p)), items, {"n_items": len(rows), "length_normalised": True, **s.recorded()})


def split_truth_ratios(ctx: EvalContext, split: str) -> np.ndarray:
    """Raw per-item truth ratios of a split (also the Retrain reference of forget_quality, pareto.prepare)."""
    correct = "paraphrased_answer" if split in ("forget", "retain") else "answer"
    s = ctx.settings
    return ctx.memo(("truth_ratios", split), lambda: truth_ratios(
        ctx.model, ctx.tokenizer, qa_split(ctx, split), correct_field=correct,
        batch_size=s.batch_size, add_bos=s.add_bos, template=s.template_format))


def truth_ratio(ctx: EvalContext, split: str) -> MetricValue:
    rows, tr = ctx.split(split), split_truth_ratios(ctx, split)
    items = tuple(ItemScore(item_id(r, i, split), float(v)) for i, (r, v) in enumerate(zip(rows, tr)))
    stat = "mean min(tr, 1/tr)" if split == "forget" else "mean max(0, 1 - tr)"
    return MetricValue(truth_ratio_stat(tr, split), items, {"n_items": len(rows), "statistic": stat,
                                                            **ctx.settings.recorded()})


# name, direction, value, split (the forget split's metrics fall as it is forgotten, the retain ones hold)
register_split_metrics((
    ("rouge_f", "min", rouge, "forget"), ("utility_r", "max", rouge, "retain"),
    ("prob_f", "min", probability, "forget"), ("prob_r", "max", probability, "retain"),
    ("truth_ratio_f", "max", truth_ratio, "forget"), ("truth_ratio_r", "max", truth_ratio, "retain"),
), data="qa")


@register_metric("forget_quality", "max", needs=("forget",), data="qa", reference=True)
class ForgetQuality(Metric):
    def compute(self, ctx):
        ref = ctx.need_reference("forget_truth_ratios", "forget_quality", "forget truth ratios")
        return MetricValue(forget_quality(split_truth_ratios(ctx, "forget"), np.asarray(ref)),
                           settings={"test": "scipy.stats.ks_2samp", "n_items": len(ref), **ctx.settings.recorded()})


@register_metric("model_utility", "max", needs=("retain", "real_authors", "world_facts"), data="qa")
class ModelUtility(Metric):
    def compute(self, ctx):
        parts = {"retain/prob": probability(ctx, "retain").value, "retain/rouge": rouge(ctx, "retain").value,
                 "retain/truth_ratio": truth_ratio(ctx, "retain").value}
        for split in ("real_authors", "world_facts"):
            p = ctx.memo(("norm_prob", split), lambda s=split: normalized_probability(
                ctx.model, ctx.tokenizer, qa_split(ctx, s), ctx.settings.batch_size, add_bos=ctx.settings.add_bos,
                template=ctx.settings.template_format))
            parts[f"{split}/prob"] = float(np.mean(p))
            parts[f"{split}/rouge"] = rouge(ctx, split).value
            parts[f"{split}/truth_ratio"] = truth_ratio(ctx, split).value
        return MetricValue(model_utility(parts), settings={"parts": parts, **ctx.settings.recorded()})
