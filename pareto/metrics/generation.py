"""Greedy generation: batched, left-padded, KV-cached; stops at EOS and at stop strings.

    greedy_generate(model, tokenizer, prompts, max_new_tokens=32, stop_strings=("\\n\\n",))

returns one decoded continuation per prompt, in the order given. The result does not depend
on `batch_size`: a prompt's output in a batch equals its output alone (tested on GPT-2 and
Llama; up to float rounding, which can flip a greedy choice only at a near-exact tie of the
two best logits).

How that is ensured:
- prompts are left-padded (`pareto.data.qa.left_pad`) with an attention mask; HF `generate`
  derives the position ids of every row from the mask (cumsum − 1), so a padded row sees the
  same positions as the unpadded prompt. (A plain forward without position ids would not:
  GPT-2 would give the first real token position `pad_count`.)
- a fresh `GenerationConfig` (greedy, one beam, KV cache) is passed, and the model's own
  `generation_config` is swapped for a blank one during the call: transformers 5 fills every
  unset field of a passed config from the model's (a checkpoint's `repetition_penalty`,
  `no_repeat_ngram_size`, `bad_words_ids`, ... would otherwise change "greedy" outputs). The
  model's EOS ids are read before the swap and kept.
- a row that emits EOS (the tokenizer's, plus any the model's generation config lists) is
  finished; later tokens of that row (padding) are dropped before decoding.
- stop strings are matched on the decoded text: a row is finished as soon as its decoded
  continuation contains one, and the returned text is cut before the first occurrence of any
  of them. The cut equals a post-hoc cut of an unstopped generation whenever decoding a
  token prefix gives a prefix of the full decoded text (true of the usual BPE/SentencePiece
  tokenizers away from split UTF-8 bytes).
- a prompt longer than the model's context (`n_positions` / `max_position_embeddings`) minus
  `max_new_tokens` is refused with a ValueError instead of an index error deep in the model.

Prompts are sorted by length before batching (less padding) and the order is restored.
Token-id prompts are used verbatim; string prompts are tokenised without special tokens and get
the tokenizer's BOS prepended when `add_bos` is true and the tokenizer has one (the same ids as
`tokenizer(text)` for Llama, whose only special token added is BOS).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import torch

from pareto.lm import context_length
from pareto.data.qa import PLAIN_TEMPLATE, encode_prompt, left_pad, text_ids

__all__ = ["greedy_generate", "greedy_answers", "cut_at_stop_strings", "encode_text"]


def encode_text(tokenizer, text: str, add_bos: bool = True) -> list[int]:
    """Token ids of `text` without special tokens, BOS prepended when asked and available."""
    ids = text_ids(tokenizer, text)  # long texts are cut by callers
    if add_bos and tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def cut_at_stop_strings(text: str, stop_strings: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop_strings:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def _eos_ids(model, tokenizer) -> list[int]:
    ids: list[int] = []
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        for i in (source if isinstance(source, (list, tuple)) else [source]):
            if i is not None and int(i) not in ids:
                ids.append(int(i))
    return ids


@contextmanager
def _blank_generation_config(model):
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def _stop_criterion(tokenizer, stop_strings: Sequence[str], prompt_width: int):
    from transformers import StoppingCriteria

    class _StopOnStrings(StoppingCriteria):
        """Per row: done once the decoded continuation contains a stop string."""

        def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
            texts = tokenizer.batch_decode(input_ids[:, prompt_width:], skip_special_tokens=True)
            return torch.tensor([any(s in t for s in stop_strings) for t in texts],
                                dtype=torch.bool, device=input_ids.device)

    return _StopOnStrings()


@torch.no_grad()
def greedy_generate(model, tokenizer, prompts: Sequence[list[int]] | Sequence[str], *,
                    max_new_tokens: int, batch_size: int = 32, stop_strings: Sequence[str] = (),
                    add_bos: bool = True) -> list[str]:
    """Greedy continuation of each prompt (decoded with `skip_special_tokens`), in input order.

    prompts: token-id lists (used verbatim) or strings (encoded by `encode_text(…, add_bos)`).
    Generation stops at EOS, after `max_new_tokens`, or once a stop string appears; the text is
    cut before the first stop string. Not stripped: callers decide about whitespace.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(stop_strings, str):
        raise TypeError("stop_strings must be a sequence of strings, not a single string")
    if any(not s for s in stop_strings):
        raise ValueError("stop_strings must not contain an empty string")
    ids = [encode_text(tokenizer, p, add_bos) if isinstance(p, str) else [int(t) for t in p]
           for p in prompts]
    for i, p in enumerate(ids):
        if not p:
            raise ValueError(f"prompt {i} is empty (no tokens); pass add_bos=True or a non-empty prompt")
    if not ids:
        return []
    if max_new_tokens == 0:
        return [""] * len(ids)
    n_ctx = context_length(model)
    longest = max(len(p) for p in ids)
    if n_ctx is not None and longest + max_new_tokens > n_ctx:
        raise ValueError(f"the longest prompt ({longest} tokens) + max_new_tokens "
                         f"({max_new_tokens}) exceeds the model's context length ({n_ctx})")

    from transformers import GenerationConfig

    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = eos[0] if eos else 0
    gen_config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  use_cache=True, pad_token_id=pad,
                                  eos_token_id=eos or None)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[str | None] = [None] * len(ids)
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in left_pad([ids[i] for i in chunk], pad).items()}
            width = batch["input_ids"].shape[1]
            criteria = [_stop_criterion(tokenizer, tuple(stop_strings), width)] if stop_strings else None
            with _blank_generation_config(model):
                generated = model.generate(**batch, generation_config=gen_config,
                                           stopping_criteria=criteria)
            for i, row in zip(chunk, generated[:, width:].tolist()):
                for j, t in enumerate(row):
                    if t in eos:  # finished: EOS and the padding after it are not output
                        row = row[:j]
                        break
                text = tokenizer.decode(row, skip_special_tokens=True)
                out[i] = cut_at_stop_strings(text, stop_strings)
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def greedy_answers(model, tokenizer, questions: Sequence[str], *, max_new_tokens: int = 32,
                   batch_size: int = 32, add_bos: bool = True,
                   template: str = PLAIN_TEMPLATE) -> list[str]:
    """Greedy answers to questions formatted with `template`, stripped of surrounding space."""
    prompts = [encode_prompt(tokenizer, q, add_bos=add_bos, template=template) for q in questions]
    return [t.strip() for t in greedy_generate(model, tokenizer, prompts,
                                               max_new_tokens=max_new_tokens,
                                               batch_size=batch_size)]
