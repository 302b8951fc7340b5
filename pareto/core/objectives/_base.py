"""Forget objectives: what "forgetting" maximises on a forget batch.

`value(model, batch)` returns L_F, the quantity to *maximise*; the engine backpropagates it
to get g_F = ∇L_F, and every combiner steps along d = w_R·g_R − w_F·g_F. Objectives that the
literature phrases as a loss to minimise (NPO, SimNPO) return L_F = −loss, so `-L_F > 0` and
`positive_loss` is True (what loss-weighting combiners such as famo need).
"""

from __future__ import annotations

from typing import Iterable

import torch

from pareto._registry import Registry


class ForgetObjective:
    #: −L_F is a positive loss to minimise (npo, simnpo); False for ga (L_F = CE > 0).
    positive_loss: bool = False

    def prepare(self, model, forget_batches: Iterable[dict]) -> None:
        """Called once before unlearning with every forget batch (each carries `index`)."""

    def value(self, model, batch: dict) -> torch.Tensor:
        raise NotImplementedError


OBJECTIVES: Registry[type[ForgetObjective]] = Registry("forget objective")
register_objective = OBJECTIVES.register
