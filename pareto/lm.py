"""Causal-LM losses on answer tokens only (question tokens carry label -100)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from pareto.data.qa import IGNORE, Encoded, collate


def answer_logits(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, targets, mask) of the scored tokens, [B, T-1, V], [B, T-1], [B, T-1]: position t's
    logits predict token t+1; targets are 0 where not scored. Half precision is cast to fp32,
    float64 is kept."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    targets = batch["labels"][:, 1:]
    mask = targets != IGNORE
    return logits, targets.clamp_min(0), mask


def token_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL of the scored (answer) tokens and their mask, both [B, T-1] (fp32 for a
    half-precision model, float64 for a float64 one)."""
    logits, targets, mask = answer_logits(model, batch)
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none").view_as(targets)
    return nll * mask, mask


def answer_ce(model, batch: dict) -> torch.Tensor:
    """Cross-entropy averaged over all answer tokens of the batch (the L_R and GA's L_F)."""
    nll, mask = token_nll(model, batch)
    return nll.sum() / mask.sum().clamp_min(1)


def sequence_logprob(model, batch: dict) -> torch.Tensor:
    """log π(y|x) per example, summed over answer tokens (not length-normalised), [B]."""
    nll, _ = token_nll(model, batch)
    return -nll.sum(dim=1)


def sequence_nll_mean(model, batch: dict) -> torch.Tensor:
    """Length-normalised NLL per example, [B] (SimNPO, truth ratio)."""
    nll, mask = token_nll(model, batch)
    return nll.sum(dim=1) / mask.sum(dim=1).clamp_min(1)


def prompt_lengths(batch: dict) -> list[int]:
    """Each example's unscored prefix (BOS + prompt): the position of its first scored label."""
    scored = batch["labels"] != IGNORE
    first = torch.where(scored.any(dim=1), scored.float().argmax(dim=1), batch["attention_mask"].sum(dim=1))
    return first.tolist()


def context_length(model) -> int | None:
    """The model's maximum sequence length from its config, when it declares one."""
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(model.config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@dataclass(frozen=True)
class LMTask:
    """The causal-LM task (`pareto.core.objectives._base.Task`): the functions above, unchanged.

    loss = answer_ce (L_R, GA's L_F), logprob = sequence_logprob (NPO), nll_mean =
    sequence_nll_mean (SimNPO), answer_logits (wga, satimp, ceu, undial). `with_answers` (the
    "I don't know" objectives) needs the tokenizer and the example length the batches were
    encoded with: the trial's task is `LMTask(tokenizer=..., max_length=...)`; `LM_TASK` has
    neither. `pareto.vision.task.ClassifierTask` is the image classifier's."""

    name: str = "lm"
    tokenizer: Any = field(default=None, compare=False, repr=False)
    max_length: int | None = None

    def loss(self, model, batch: dict) -> torch.Tensor:
        return answer_ce(model, batch)

    def logprob(self, model, batch: dict) -> torch.Tensor:
        return sequence_logprob(model, batch)

    def nll_mean(self, model, batch: dict) -> torch.Tensor:
        return sequence_nll_mean(model, batch)

    def answer_mask(self, batch: dict) -> torch.Tensor:
        return batch["labels"][:, 1:] != IGNORE

    def answer_logits(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return answer_logits(model, batch)

    def with_answers(self, batch: dict, answers: list[str]) -> dict:
        """Each example's prompt (its unscored prefix) followed by " {answer}" and EOS, encoded
        as `pareto.data.qa.encode_qa` does (cut to `max_length`, right-padded), `index` kept."""
        tok = self.tokenizer
        if tok is None:
            raise RuntimeError("this LM task has no tokenizer: objectives that score other answers need "
                               "LMTask(tokenizer=..., max_length=...) as the trial's task")
        if len(answers) != batch["input_ids"].shape[0]:
            raise ValueError(f"with_answers: {len(answers)} answers for {batch['input_ids'].shape[0]} examples")
        examples = []
        for ids, n, answer in zip(batch["input_ids"].tolist(), prompt_lengths(batch), answers):
            if n <= 1:  # nothing or BOS alone before the scored tokens: a window of a text
                raise ValueError("with_answers: an example has no prompt before its answer (a text window, "
                                 "not a question/answer pair); the \"I don't know\" objectives need QA data")
            answer_ids = list(tok(" " + answer, add_special_tokens=False)["input_ids"])
            if tok.eos_token_id is not None:
                answer_ids.append(tok.eos_token_id)
            full = (ids[:n] + answer_ids)[: self.max_length or None]
            examples.append(Encoded(full, ([IGNORE] * n + answer_ids)[: len(full)], n))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        out = collate(examples, pad)
        out = {k: v.to(batch["input_ids"].device) for k, v in out.items()}
        if "index" in batch:
            out["index"] = batch["index"]
        return out

    def hidden_states(self, model, batch: dict, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The output of transformer block `layer` (0-based, `model.layers.{layer}`), [B, T, d], and
        the answer tokens' positions [B, T] (labels ≠ −100, unshifted). Hugging Face's
        `hidden_states[layer + 1]`; the last block's entry has the final norm applied there, so
        `layer` must be below the number of blocks − 1."""
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
        blocks = len(out.hidden_states) - 1
        if not 0 <= layer < blocks - 1:
            raise ValueError(f"layer must be in 0..{blocks - 2} for this {blocks}-block model (the last block's "
                             f"output is read after the final norm), got {layer}")
        h = out.hidden_states[layer + 1]
        return (h.float() if h.dtype in (torch.float16, torch.bfloat16) else h), batch["labels"] != IGNORE

    def normaliser(self, batch: dict) -> int:
        """What `loss` divides by (the scored answer tokens): micro-batches are weighted by it."""
        return int((batch["labels"][:, 1:] != IGNORE).sum())


LM_TASK = LMTask()
