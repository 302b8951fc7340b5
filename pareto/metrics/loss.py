"""Cross-entropy on the whole forget and retain evaluation splits (token-weighted).

The training loss's tokens exactly (`pareto.data.encode.encode_rows`, with the target's template,
BOS choice and example length): the answer tokens and EOS of each QA pair, or every token but
BOS of each text's windows (MUSE-News articles; an item is an article, all its windows). For an
image classifier (pareto.metrics.vision) the mean cross-entropy of the images' labels.
"""

from __future__ import annotations

import torch

from pareto.data.encode import encode_rows, row_kind
from pareto.data.qa import IGNORE, collate
from pareto.lm import context_length, token_nll
from pareto.metrics._base import EvalContext, ItemScore, MetricValue, item_id, register_split_metrics

QA_MAX_LENGTH = 128  # encode_qa's default, when the target's example length is not known


@torch.no_grad()
def answer_losses(model, tokenizer, rows, batch_size: int = 32, add_bos: bool = True, *,
                  template: str = "plain", max_length: int | None = None) -> tuple[list[float], list[int]]:
    """Per item: summed NLL of its scored tokens and their number (the training loss's tokens).

    `template` is a template name; `max_length` the example length (QA: default 128; texts:
    default the model's context), as the target was trained."""
    kind = row_kind(rows, "evaluation")
    if max_length is None:
        max_length = QA_MAX_LENGTH if kind == "qa" else context_length(model)
    if kind == "qa":
        encoded = [[e] for e in encode_rows(tokenizer, rows, max_length=max_length, template=template, add_bos=add_bos)]
    else:  # every window of each text; a text is one item
        encoded = [encode_rows(tokenizer, [r], max_length=max_length, template=template, add_bos=add_bos)
                   for r in rows]
    flat = [(i, e) for i, windows in enumerate(encoded) for e in windows]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums, counts = [0.0] * len(rows), [0] * len(rows)
    try:
        for start in range(0, len(flat), batch_size):
            part = flat[start:start + batch_size]
            batch = {k: v.to(device) for k, v in collate([e for _, e in part], tokenizer.pad_token_id).items()}
            nll, _ = token_nll(model, batch)
            for (i, _), s, c in zip(part, nll.double().sum(dim=1).tolist(),
                                    (batch["labels"][:, 1:] != IGNORE).sum(dim=1).tolist()):
                sums[i] += s
                counts[i] += c
    finally:
        model.train(was_training)
    return sums, counts


def _loss(ctx: EvalContext, split: str) -> MetricValue:
    rows, s = ctx.split(split), ctx.settings
    from pareto.metrics import vision

    if vision.is_images(rows):  # an image classifier: mean cross-entropy of the labels
        return vision.loss_value(ctx, split)
    sums, counts = ctx.memo(("answer_losses", split), lambda: answer_losses(
        ctx.model, ctx.tokenizer, rows, s.batch_size, s.add_bos, template=s.template, max_length=s.max_length))
    qa = row_kind(rows) == "qa"
    items = tuple(ItemScore(item_id(r, i, split), sc / max(c, 1), r["question"] if qa else None, None,
                            r["answer"] if qa else r["text"])
                  for i, (r, sc, c) in enumerate(zip(rows, sums, counts)))
    return MetricValue(sum(sums) / max(sum(counts), 1), items,
                       {"n_items": len(rows), "n_tokens": int(sum(counts)), "reduction": "token mean",
                        "tokens": "answer tokens and EOS" if qa else "every token but BOS",
                        "max_length": s.max_length, **s.recorded()})


# name, direction, value, split: every task's (no data kind)
register_split_metrics((("loss_f_eval", "max", _loss, "forget"), ("loss_r_eval", "min", _loss, "retain")))
