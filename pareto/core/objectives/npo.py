"""NPO (Zhang et al. 2024; paper Sec. 4.2):

    L_NPO = −(2/β)·E_F log σ(−β·(log π_θ(y|x) − log π_ref(y|x)))

with log-probabilities summed over answer tokens (open-unlearning's convention, not
length-normalised; for a classifier log π(y|x) = −CE of the label: the task's `logprob`) and
π_ref = the model before unlearning. The reference log-probabilities are computed once per
forget example in `prepare` and cached by example index, so no second model is ever held in
memory. pareto maximises L_F = −L_NPO.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from pareto.core.objectives._base import ForgetObjective, register_objective


@register_objective("npo")
@dataclass
class NPO(ForgetObjective):
    beta: float = 0.1
    positive_loss = True
    _ref: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")

    @torch.no_grad()
    def prepare(self, model, forget_batches) -> None:
        was_training = model.training
        model.eval()
        for batch in forget_batches:
            for i, lp in zip(batch["index"].tolist(), self.task.logprob(model, batch).tolist()):
                self._ref[i] = lp
        model.train(was_training)

    def value(self, model, batch):
        try:
            ref = torch.tensor([self._ref[i] for i in batch["index"].tolist()])
        except KeyError as exc:
            raise RuntimeError(f"npo: no reference log-probability for forget example {exc}; "
                               "prepare() must see every forget example") from None
        logprob = self.task.logprob(model, batch)
        log_ratio = logprob - ref.to(logprob.device)
        loss = -(2.0 / self.beta) * F.logsigmoid(-self.beta * log_ratio).mean()
        return -loss
