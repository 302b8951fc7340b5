"""WGA, weighted gradient ascent (Wang et al. 2025, "Rethinking LLM Unlearning Objectives: A
Gradient Perspective and Go Beyond", ICLR 2025): gradient ascent on the answer tokens, each
token's cross-entropy weighted by its own probability to the power β, the weight held fixed:

    L_F = (1/N)·Σ_t w_t·CE_t,   CE_t = −log π_θ(y_t | x, y_<t),   w_t = sg[π_θ(y_t | x, y_<t)^β]

the mean over the N scored tokens of the batch (sg: no gradient through the weight). Tokens the
model already finds unlikely (p_t → 0) get little weight, so ascent stops pushing them once they
are forgotten; β = 0 is GA. For a classifier the one "token" is the label.

Checked against open-unlearning `src/trainer/utils.py` `compute_wga_loss` (its forget loss is
−L_F, minimised; default β = 1 in `configs/trainer/WGA.yaml`). Same value and gradient; its γ, α
weights are the combiner's business here. Like ga, −L_F < 0: loss-weighting combiners refuse it.
"""

import math
from dataclasses import dataclass

from pareto.core.objectives._base import ForgetObjective, answer_token_ce, register_objective


@register_objective("wga")
@dataclass
class WGA(ForgetObjective):
    beta: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta}")

    def value(self, model, batch):
        ce, mask, _ = answer_token_ce(self.task, model, batch)
        weight = (-ce.detach()).exp().pow(self.beta)
        return (weight * ce * mask).sum() / mask.sum().clamp_min(1)

    def normaliser(self, batch):
        return int(self.task.answer_mask(batch).sum())
