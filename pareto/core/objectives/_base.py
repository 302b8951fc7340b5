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

Token-level objectives (wga, satimp, ceu, undial) use the task's `answer_logits`: the logits at
the scored positions (an LM's answer tokens; a classifier's one "token", its label). The "I don't
know" family (idknll, idkdpo) builds a second batch with `with_answers` (the same prompts, another
answer) and rmu reads `hidden_states`: language models only (`language_models_only`; `task_problem` says why an objective
cannot run on a task, for the spec check).
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

    def answer_mask(self, batch: dict) -> torch.Tensor:
        """Which positions are scored, bool [B, T] (LM: the answer tokens, shifted; classifier: [B, 1])."""

    def answer_logits(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits [B, T, V] in at least fp32, targets [B, T] (≥ 0 everywhere), mask [B, T]): the
        prediction of each scored token (LM: position t predicts token t+1; classifier: T = 1)."""

    def with_answers(self, batch: dict, answers: list[str]) -> dict:
        """The batch with each example's answer replaced by `answers[i]` (same prompt, same
        encoding; `index` kept). Language models only: a classifier raises ValueError."""

    def hidden_states(self, model, batch: dict, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(output of transformer block `layer` [B, T, d], the answer tokens' mask [B, T]) (rmu).
        Language models only: a classifier raises ValueError."""


@dataclass
class ForgetObjective:
    #: −L_F is a positive loss to minimise (npo, simnpo); False for ga (L_F = CE > 0).
    positive_loss = False
    #: why the objective needs a causal LM ('' when any task will do): it builds other answers
    #: (`Task.with_answers`: idknll, idkdpo) or reads a block's hidden states (rmu)
    language_models_only = ""
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


def answer_token_ce(task: Task, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(CE per scored token [B, T] (0 where not scored), mask [B, T], logits [B, T, V]) from the
    task's `answer_logits`: what the token-level objectives weight."""
    logits, targets, mask = task.answer_logits(model, batch)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                           reduction="none").view_as(targets)
    return ce * mask, mask, logits


def task_problem(objective, task: str) -> str | None:
    """Why forget `objective` (a registered name, class or instance) cannot run on `task` (a
    task's name: 'language_model' or 'lm', 'image_classification' or 'classification'), or None."""
    obj = OBJECTIVES.get(objective) if isinstance(objective, str) else objective
    if not obj.language_models_only or task in ("language_model", "lm"):
        return None
    name = getattr(obj, "registered_name", getattr(obj, "__name__", type(obj).__name__))
    return f"forget objective {name!r} is for language models only ({obj.language_models_only}), not task {task!r}"


OBJECTIVES: Registry[type[ForgetObjective]] = Registry("forget objective")
register_objective = OBJECTIVES.register
