"""Image classification as an unlearning task (paper App. C): the losses the core differentiates.

A task supplies, for a batch, the three quantities the core and the forget objectives use
(`pareto.core.objectives._base.Task`):

    loss(model, batch)      mean cross-entropy of the batch          L_R, and GA's L_F
    logprob(model, batch)   log π(y|x) = −CE per image, [B]          NPO
    nll_mean(model, batch)  CE per image, [B] (one "token": the label)  SimNPO
    answer_logits(model, batch)  the logits as one scored "token" per image,
                            ([B, 1, C], labels [B, 1], mask [B, 1])  wga, satimp, ceu, undial

`with_answers` (the "I don't know" objectives) and `hidden_states` (rmu) are for language models
only and say so.

Batches are {images: uint8 [B, 3, 32, 32], labels: [B], index: [B]} (`ImageBatches`).

BatchNorm while unlearning (`unlearn.batchnorm`, recorded with the spec in every result row):

- `batch` (default; what plain PyTorch unlearning loops do, `model.train()`): each batch is
  normalised with its own statistics and the running statistics are updated by every forward
  pass in the step — AutoLR's probes and the after-step measurements included. The weights
  before each BatchNorm are then scale-invariant, which keeps gradient ascent from exploding.
- `frozen`: the target's running statistics (the model in eval mode inside every loss; gradients
  still reach every parameter, the BatchNorm affine weights included). The losses the engine
  differentiates are exactly the ones the metrics measure, a forget batch of a single class
  cannot move the statistics, and probes leave no trace in the model; gradient ascent through a
  frozen-statistics ResNet can explode (see docs/vision.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


BATCHNORM_MODES = ("batch", "frozen")


@dataclass(frozen=True)
class ClassifierTask:
    name: str = "classification"
    batchnorm: str = "batch"  # batch | frozen (the module docstring)

    def __post_init__(self) -> None:
        if self.batchnorm not in BATCHNORM_MODES:
            raise ValueError(f"batchnorm must be one of {', '.join(BATCHNORM_MODES)}, got {self.batchnorm!r}")

    def per_image_ce(self, model, batch: dict) -> torch.Tensor:
        if self.batchnorm == "frozen":
            model.eval()  # running statistics; the engine put the model in train mode for the step
        logits = model(batch["images"]).float()
        return F.cross_entropy(logits, batch["labels"], reduction="none")

    def loss(self, model, batch: dict) -> torch.Tensor:
        return self.per_image_ce(model, batch).mean()

    def logprob(self, model, batch: dict) -> torch.Tensor:
        return -self.per_image_ce(model, batch)

    def nll_mean(self, model, batch: dict) -> torch.Tensor:
        return self.per_image_ce(model, batch)

    def answer_mask(self, batch: dict) -> torch.Tensor:
        return torch.ones(batch["labels"].shape[0], 1, dtype=torch.bool, device=batch["labels"].device)

    def answer_logits(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.batchnorm == "frozen":
            model.eval()
        logits = model(batch["images"])
        logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        return logits[:, None], batch["labels"][:, None], self.answer_mask(batch)

    def with_answers(self, batch: dict, answers: list[str]) -> dict:
        raise ValueError("objectives that score another answer (idknll, idkdpo) are for language models "
                         "only: an image classifier has no answer text to replace")

    def hidden_states(self, model, batch: dict, layer: int):
        raise ValueError("objectives that read a transformer block's hidden states (rmu) are for language "
                         "models only")

    def normaliser(self, batch: dict) -> int:
        """What `loss` divides by (the images): micro-batches are weighted by it."""
        return int(batch["labels"].shape[0])


CLASSIFIER_TASK = ClassifierTask()
