"""SimNPO (Fan et al. 2024), reference-free:

    L_SimNPO = −(2/β)·E_F log σ(β·(NLL(y|x)/|y| − δ))

with the NLL summed over answer tokens and divided by the answer length (a classifier: the label's CE, the task's
`nll_mean`). open-unlearning's
defaults β = 4.5, δ = 0 (its forget-term weight 0.125 is the combiner's business here).
pareto maximises L_F = −L_SimNPO.
"""

from dataclasses import dataclass

import torch.nn.functional as F

from pareto.core.objectives._base import ForgetObjective, register_objective


@register_objective("simnpo")
@dataclass
class SimNPO(ForgetObjective):
    beta: float = 4.5
    delta: float = 0.0
    positive_loss = True

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")

    def value(self, model, batch):
        loss = -(2.0 / self.beta) * F.logsigmoid(self.beta * (self.task.nll_mean(model, batch) - self.delta)).mean()
        return -loss
