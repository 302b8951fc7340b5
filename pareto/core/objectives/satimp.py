"""SatImp (Yang et al. 2025, "Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning",
ICML 2025): gradient ascent on the answer tokens, each token's cross-entropy weighted by a
saturation term p^β1 and an importance term (1 − p)^β2, held fixed:

    L_F = (1/N)·Σ_t w_t·CE_t,   p_t = π_θ(y_t | x, y_<t),   w_t = sg[p_t^β1·(1 − p_t)^β2]

the mean over the N scored tokens of the batch (sg: no gradient through the weight). β2 = 0 is
wga with β = β1. For a classifier the one "token" is the label.

Checked against open-unlearning `src/trainer/utils.py` `compute_satimp_loss` (forget loss −L_F,
minimised; defaults β1 = 5, β2 = 1 of `configs/trainer/SatImp.yaml`). Same value and gradient;
its γ, α weights are the combiner's business. Like ga, −L_F < 0: loss-weighting combiners refuse it.
"""

import math
from dataclasses import dataclass

from pareto.core.objectives._base import ForgetObjective, answer_token_ce, register_objective


@register_objective("satimp")
@dataclass
class SatImp(ForgetObjective):
    beta1: float = 5.0
    beta2: float = 1.0

    def __post_init__(self) -> None:
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")

    def value(self, model, batch):
        ce, mask, _ = answer_token_ce(self.task, model, batch)
        p = (-ce.detach()).exp()
        weight = p.pow(self.beta1) * (1 - p).pow(self.beta2)
        return (weight * ce * mask).sum() / mask.sum().clamp_min(1)

    def normaliser(self, batch):
        return int(self.task.answer_mask(batch).sum())
