"""Answer cross-entropy on the whole forget and retain evaluation splits (token-weighted)."""

from __future__ import annotations

import torch

from pareto.data.qa import IGNORE, collate, encode_qa
from pareto.lm import token_nll
from pareto.metrics._base import EvalContext, ItemScore, Metric, MetricValue, item_id, register_metric


@torch.no_grad()
def answer_losses(model, tokenizer, rows, batch_size: int = 32, add_bos: bool = True) -> tuple[list[float], list[int]]:
    """Per item: summed answer NLL and the number of answer tokens (the training loss's tokens)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums, counts = [], []
    for start in range(0, len(rows), batch_size):
        enc = [encode_qa(tokenizer, r["question"], r["answer"], add_bos=add_bos) for r in rows[start:start + batch_size]]
        batch = {k: v.to(device) for k, v in collate(enc, tokenizer.pad_token_id).items()}
        nll, mask = token_nll(model, batch)
        sums += nll.double().sum(dim=1).tolist()
        counts += (batch["labels"][:, 1:] != IGNORE).sum(dim=1).tolist()
    model.train(was_training)
    return sums, counts


def _loss(ctx: EvalContext, split: str) -> MetricValue:
    rows = ctx.split(split)
    sums, counts = ctx.memo(("answer_losses", split), lambda: answer_losses(
        ctx.model, ctx.tokenizer, rows, ctx.settings.batch_size, ctx.settings.add_bos))
    items = tuple(ItemScore(item_id(r, i, split), s / max(c, 1), r["question"], None, r["answer"])
                  for i, (r, s, c) in enumerate(zip(rows, sums, counts)))
    return MetricValue(sum(sums) / max(sum(counts), 1), items, {"n_items": len(rows), "reduction": "token mean"})


@register_metric("loss_f_eval", "max", needs=("forget",))
class ForgetLoss(Metric):
    def compute(self, ctx):
        return _loss(ctx, "forget")


@register_metric("loss_r_eval", "min", needs=("retain",))
class RetainLoss(Metric):
    def compute(self, ctx):
        return _loss(ctx, "retain")
