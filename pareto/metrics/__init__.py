"""Metrics, registered by name with their direction (higher or lower is better).

    values = evaluate(EvalContext(model, tokenizer, data), ["rouge_f", "utility_r"])

Each metric lives in a short module (loss, tofu, muse, vision) and reads the splits it needs from the
context; `evaluate` runs the requested ones and returns their values with per-item records.
"""

from __future__ import annotations

from typing import Sequence

from pareto.metrics import loss, muse, tofu, vision  # noqa: F401  (registration)
from pareto.metrics._base import (METRICS, EvalContext, EvalSettings, ItemScore, Metric, MetricValue,
                                  eval_settings, register_metric)
from pareto.metrics.generation import greedy_answers
from pareto.metrics.rouge import rouge_l_recall

__all__ = ["METRICS", "EvalContext", "EvalSettings", "ItemScore", "Metric", "MetricValue", "eval_settings", "register_metric",
           "evaluate", "mean_answer_ce", "greedy_answers", "rouge_l_recall"]


def evaluate(ctx: EvalContext, names: Sequence[str]) -> dict[str, MetricValue]:
    return {name: METRICS.get(name)().compute(ctx) for name in names}


def mean_answer_ce(model, tokenizer, rows, batch_size: int = 32) -> float:
    """Cross-entropy over all answer tokens of `rows` (token-weighted, like the training loss)."""
    sums, counts = loss.answer_losses(model, tokenizer, rows, batch_size)
    return sum(sums) / max(sum(counts), 1)
