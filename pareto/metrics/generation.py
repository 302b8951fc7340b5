"""Greedy answers to questions: left-padded batches, stop at EOS."""

from __future__ import annotations

from typing import Sequence

import torch

from pareto.data.qa import PLAIN_TEMPLATE, encode_prompt, left_pad


@torch.no_grad()
def greedy_answers(model, tokenizer, questions: Sequence[str], *, max_new_tokens: int = 32,
                   batch_size: int = 32, add_bos: bool = True, template: str = PLAIN_TEMPLATE) -> list[str]:
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    out: list[str] = []
    for start in range(0, len(questions), batch_size):
        prompts = [encode_prompt(tokenizer, q, add_bos=add_bos, template=template)
                   for q in questions[start:start + batch_size]]
        batch = {k: v.to(device) for k, v in left_pad(prompts, pad).items()}
        generated = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                   pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        new = generated[:, batch["input_ids"].shape[1]:]
        out.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    return out
