"""Causal-LM losses on answer tokens only (question tokens carry label -100)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pareto.data.qa import IGNORE


def token_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL of the scored (answer) tokens and their mask, both [B, T-1]."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logits = logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    mask = targets != IGNORE
    nll = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.clamp_min(0).reshape(-1), reduction="none"
    ).view_as(targets)
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
    sequence_nll_mean (SimNPO). `pareto.vision.task.ClassifierTask` is the image classifier's."""

    name: str = "lm"

    def loss(self, model, batch: dict) -> torch.Tensor:
        return answer_ce(model, batch)

    def logprob(self, model, batch: dict) -> torch.Tensor:
        return sequence_logprob(model, batch)

    def nll_mean(self, model, batch: dict) -> torch.Tensor:
        return sequence_nll_mean(model, batch)

    def normaliser(self, batch: dict) -> int:
        """What `loss` divides by (the scored answer tokens): micro-batches are weighted by it."""
        return int((batch["labels"][:, 1:] != IGNORE).sum())


LM_TASK = LMTask()
