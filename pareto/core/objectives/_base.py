"""Forget objectives: what "forgetting" maximises on a forget batch.

`value(model, batch)` returns L_F, the quantity to *maximise*; the engine backpropagates it
to get g_F = ∇L_F, and every combiner steps along d = w_R·g_R − w_F·g_F. Objectives that the
literature phrases as a loss to minimise (NPO, SimNPO) return L_F = −loss, so `-L_F > 0` and
`positive_loss` is True (what loss-weighting combiners such as famo need).

Objectives are model-agnostic: they reach the model only through their `task` (a `Task`), which
says what a batch's loss, per-example log-likelihood and per-example mean NLL are — answer tokens
of a causal LM (`pareto.lm.LM_TASK`) or the label of an image classifier
(`pareto.vision.task.CLASSIFIER_TASK`). There is no default (the core imports no task): the
trial sets it (`objective.task = task`) before the first step, and using an objective without
one raises a RuntimeError naming it. It is not a spec parameter and not checkpointed state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

import torch

from pareto._registry import Registry


class Task(Protocol):
    """What the core needs of a task (model kind + data kind), for one batch."""

    name: str

    def loss(self, model, batch: dict) -> torch.Tensor:
        """The mean loss of the batch, a scalar (L_R; GA's L_F)."""

    def logprob(self, model, batch: dict) -> torch.Tensor:
        """log π(y|x) per example, [B] (LM: summed over answer tokens; classifier: −CE)."""

    def nll_mean(self, model, batch: dict) -> torch.Tensor:
        """Length-normalised NLL per example, [B] (classifier: CE of the label)."""


@dataclass
class ForgetObjective:
    #: −L_F is a positive loss to minimise (npo, simnpo); False for ga (L_F = CE > 0).
    positive_loss = False
    #: the task whose losses the objective uses (set by the trial through `task`; None until then)
    _task: Task | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def task(self) -> Task:
        if self._task is None:
            name = getattr(type(self), "registered_name", type(self).__name__)
            raise RuntimeError(f"forget objective {name!r} has no task: set objective.task to the task whose "
                               "losses it uses (pareto.lm.LM_TASK or pareto.vision.task.CLASSIFIER_TASK) "
                               "before the first step")
        return self._task

    @task.setter
    def task(self, task: Task | None) -> None:
        self._task = task

    def prepare(self, model, forget_batches: Iterable[dict]) -> None:
        """Called once before unlearning with every forget batch (each carries `index`)."""

    def value(self, model, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def normaliser(self, batch: dict) -> int:
        """What `value`'s mean divides by, so micro-batches accumulate exactly: the examples
        (NPO, SimNPO average per example); GA uses its task's (answer tokens for an LM)."""
        return int(batch["index"].shape[0]) if "index" in batch else int(next(iter(batch.values())).shape[0])


OBJECTIVES: Registry[type[ForgetObjective]] = Registry("forget objective")
register_objective = OBJECTIVES.register
