"""UNDIAL, self-distillation on adjusted logits (Dong et al. 2024, "UNDIAL: Self-Distillation with
Adjusted Logits for Robust Unlearning in Large Language Models", arXiv:2402.10052): at each answer
token, distil the model towards the original model's distribution with the true token's logit
lowered by β:

    L_UNDIAL = (1/N)·Σ_t −Σ_v q_t(v)·log π_θ(v | x, y_<t),   q_t = softmax(z_ref,t − β·onehot(y_t))

the mean over the N scored tokens of the batch; z_ref are the logits of the model before
unlearning. pareto maximises L_F = −L_UNDIAL.

The reference logits are computed once in `prepare` (eval mode, the trial's autocast) and cached
per forget example, on the CPU, at its scored positions only: no second model is held. Memory:
answer tokens × vocabulary × 4 bytes of host memory (fp32; float64 models: 8), e.g. 400 TOFU
forget10 answers of ~60 tokens with a 128k vocabulary ≈ 12 GB, forget01 ≈ 1.2 GB; each step
copies its batch's rows to the device.

Checked against open-unlearning `src/trainer/utils.py` `compute_undial_loss` (strength `beta`,
default 10 in `configs/trainer/UNDIAL.yaml`). Departure: open-unlearning averages over every
position of the batch — prompt and padding included, where its mask indexes the vocabulary with
label −100 — while pareto averages over the answer tokens only, as the paper's loss is defined.
"""

import math
from dataclasses import dataclass, field

import torch

from pareto.core.objectives._base import ForgetObjective, register_objective


@register_objective("undial")
@dataclass
class UNDIAL(ForgetObjective):
    beta: float = 10.0
    positive_loss = True
    _ref: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta}")

    @torch.no_grad()
    def prepare(self, model, forget_batches) -> None:
        was_training = model.training
        model.eval()
        for batch in forget_batches:
            logits, _, mask = self.task.answer_logits(model, batch)
            for i, row, m in zip(batch["index"].tolist(), logits, mask):
                self._ref[i] = row[m].to("cpu", torch.float64 if row.dtype == torch.float64 else torch.float32)
        model.train(was_training)

    def value(self, model, batch):
        logits, targets, mask = self.task.answer_logits(model, batch)
        try:
            ref = [self._ref[i] for i in batch["index"].tolist()]
        except KeyError as exc:
            raise RuntimeError(f"undial: no reference logits for forget example {exc}; "
                               "prepare() must see every forget example") from None
        student, y = logits[mask], targets[mask]
        ref = torch.cat(ref).to(device=student.device, dtype=student.dtype)
        if ref.shape != student.shape:
            raise RuntimeError(f"undial: the cached reference logits have shape {tuple(ref.shape)}, the batch's "
                               f"answer tokens {tuple(student.shape)}: the forget examples changed since prepare()")
        adjusted = ref.scatter_add(-1, y[:, None], torch.full_like(ref[:, :1], -self.beta))
        target = torch.softmax(adjusted, dim=-1)
        loss = -(target * torch.log_softmax(student, dim=-1)).sum() / max(int(mask.sum()), 1)
        return -loss

    def normaliser(self, batch):
        return int(self.task.answer_mask(batch).sum())
