"""Question/answer examples → token ids with answer-only labels, and batching.

Prompt format (the plain default): "Question: {q}\nAnswer:" followed by " {a}" and EOS.
The prompt and the answer are tokenised separately and concatenated, so the boundary is
exact: labels are -100 on the prompt (and on BOS), the answer tokens and EOS are scored.
BOS is prepended when `add_bos` is true and the tokenizer has one; that choice is recorded
with the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

IGNORE = -100
PLAIN_TEMPLATE = "Question: {question}\nAnswer:"


def text_ids(tokenizer, text: str) -> list[int]:
    """Token ids of `text`, no special tokens. A long text (an article, cut into windows later) is
    not warned about: transformers tokenizers are asked not to (`verbose=False`)."""
    from transformers import PreTrainedTokenizerBase

    quiet = {"verbose": False} if isinstance(tokenizer, PreTrainedTokenizerBase) else {}
    return list(tokenizer(text, add_special_tokens=False, **quiet)["input_ids"])


def format_prompt(question: str, template: str = PLAIN_TEMPLATE) -> str:
    return template.format(question=question)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    prompt_len: int  # number of leading tokens (BOS + prompt) not scored


def encode_qa(tokenizer, question: str, answer: str, *, max_length: int = 128,
              add_bos: bool = True, template: str = PLAIN_TEMPLATE) -> Encoded:
    prompt_ids = tokenizer(format_prompt(question, template), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        answer_ids = answer_ids + [tokenizer.eos_token_id]
    if add_bos and tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id] + prompt_ids
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_length]
    return Encoded(ids, labels, len(prompt_ids))


def encode_prompt(tokenizer, question: str, *, add_bos: bool = True,
                  template: str = PLAIN_TEMPLATE) -> list[int]:
    ids = tokenizer(format_prompt(question, template), add_special_tokens=False)["input_ids"]
    if add_bos and tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def collate(examples: Sequence[Encoded], pad_id: int, indices: Sequence[int] | None = None) -> dict:
    """Right-padded batch: input_ids, attention_mask, labels (and `index` of each example)."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(e.labels)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if indices is not None:
        batch["index"] = torch.tensor(list(indices), dtype=torch.long)
    return batch


def left_pad(prompts: Sequence[list[int]], pad_id: int) -> dict:
    """Left-padded prompt batch for greedy generation."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    return {"input_ids": ids, "attention_mask": mask}


class Batches:
    """An endless, seeded stream of batches: reshuffled each epoch, every example once per epoch."""

    def __init__(self, examples: Sequence[Encoded], batch_size: int, pad_id: int, seed: int) -> None:
        if not examples:
            raise ValueError("no examples to batch")
        self.examples, self.pad_id = list(examples), pad_id
        self.batch_size = min(batch_size, len(self.examples))
        self.generator = torch.Generator().manual_seed(seed)
        self._order: list[int] = []

    def next(self) -> dict:
        if len(self._order) < self.batch_size:
            self._order += torch.randperm(len(self.examples), generator=self.generator).tolist()
        idx, self._order = self._order[:self.batch_size], self._order[self.batch_size:]
        return collate([self.examples[i] for i in idx], self.pad_id, indices=idx)

    def all(self, batch_size: int | None = None) -> list[dict]:
        """Every example once, in order (e.g. for NPO's reference log-probabilities)."""
        bs = batch_size or self.batch_size
        return [collate(self.examples[i:i + bs], self.pad_id, indices=range(i, min(i + bs, len(self.examples))))
                for i in range(0, len(self.examples), bs)]


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}
