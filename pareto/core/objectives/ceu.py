"""CE-U, cross-entropy unlearning (Yang 2025, "CE-U: Cross Entropy Unlearning", arXiv:2503.01224):
at each answer token, the cross-entropy between the model's distribution and a target made from
its own logits z with the true token's logit set to −∞ (held fixed):

    L_CE-U = (1/N)·Σ_t −Σ_{v≠y_t} q_t(v)·log softmax(z_t)_v,   q_t = sg[softmax(z_t with z_t,y_t = −∞)]

the mean over the N scored tokens of the batch, less each answer's first
`ignore_first_n_answer_tokens` tokens (the paper's footnote; 1 by default). Its gradient is
softmax(z_t) − q_t: the true token's probability pushed to 0, the others' ratios kept. pareto
maximises L_F = −L_CE-U. A classifier's answer is its one label: use ignore_first_n_answer_tokens 0.

Checked against open-unlearning `src/trainer/unlearn/ceu.py` (`cross_entropy_unlearning_loss`,
`compute_batch_ceu`). Departure: the first n answer tokens are counted on the shifted labels
(scored positions), theirs on the unshifted ones: the same whenever the first token of an
example is unscored (BOS or a prompt, always for QA data).
"""

from dataclasses import dataclass

import torch

from pareto.core.objectives._base import ForgetObjective, register_objective


@register_objective("ceu")
@dataclass
class CEU(ForgetObjective):
    ignore_first_n_answer_tokens: int = 1
    positive_loss = True

    def __post_init__(self) -> None:
        n = self.ignore_first_n_answer_tokens
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"ignore_first_n_answer_tokens must be an integer >= 0, got {n!r}")

    def _scored(self, mask: torch.Tensor) -> torch.Tensor:
        return mask & (mask.long().cumsum(dim=1) > self.ignore_first_n_answer_tokens)

    def value(self, model, batch):
        logits, targets, mask = self.task.answer_logits(model, batch)
        mask = self._scored(mask)
        if not mask.any() and self.task.answer_mask(batch).any():
            raise ValueError(f"ceu: ignore_first_n_answer_tokens={self.ignore_first_n_answer_tokens} leaves no "
                             "token of this batch to score (a classifier's answer is one label: use 0)")
        logp = torch.log_softmax(logits, dim=-1)
        target = torch.softmax(logits.detach().scatter(-1, targets[..., None], float("-inf")), dim=-1)
        ce = -(target * logp).sum(dim=-1)
        loss = (ce * mask).sum() / mask.sum().clamp_min(1)
        return -loss

    def normaliser(self, batch):
        return int(self._scored(self.task.answer_mask(batch)).sum())
