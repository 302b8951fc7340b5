"""Evaluation of an unlearned model on the forget and retain sets.

Each metric is declared once with its direction (higher or lower is better) in
`pareto.results.schema.METRICS`; `evaluate` computes them.
"""

from __future__ import annotations

from typing import Sequence

import torch

from pareto.data.qa import collate, encode_qa
from pareto.lm import answer_ce
from pareto.metrics.generation import greedy_answers
from pareto.metrics.rouge import rouge_l_recall

__all__ = ["evaluate", "greedy_answers", "rouge_l_recall", "mean_answer_ce"]


@torch.no_grad()
def mean_answer_ce(model, tokenizer, rows: Sequence[dict], batch_size: int = 32) -> float:
    """Cross-entropy over all answer tokens of `rows` (token-weighted, like the training loss)."""
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for start in range(0, len(rows), batch_size):
        enc = [encode_qa(tokenizer, r["question"], r["answer"]) for r in rows[start:start + batch_size]]
        batch = {k: v.to(device) for k, v in collate(enc, tokenizer.pad_token_id).items()}
        n = int((batch["labels"][:, 1:] != -100).sum())
        total += answer_ce(model, batch).item() * n
        count += n
    return total / max(count, 1)


def evaluate(model, tokenizer, forget: Sequence[dict], retain: Sequence[dict], *,
             max_new_tokens: int = 24, batch_size: int = 32) -> dict:
    """loss_f_eval / loss_r_eval (answer CE) and rouge_f / rouge_r (ROUGE-L recall of greedy answers)."""
    result = {"loss_f_eval": mean_answer_ce(model, tokenizer, forget, batch_size),
              "loss_r_eval": mean_answer_ce(model, tokenizer, retain, batch_size)}
    for key, rows in (("rouge_f", forget), ("rouge_r", retain)):
        gens = greedy_answers(model, tokenizer, [r["question"] for r in rows],
                              max_new_tokens=max_new_tokens, batch_size=batch_size)
        scores = rouge_l_recall(gens, [r["answer"] for r in rows])
        result[key] = sum(scores) / len(scores)
    return result
