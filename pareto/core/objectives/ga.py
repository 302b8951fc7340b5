"""GA: maximise the forget cross-entropy, L_F = CE (paper Sec. 2): over answer tokens for an LM,
of the label for a classifier (the task's mean loss)."""

from dataclasses import dataclass

from pareto.core.objectives._base import ForgetObjective, register_objective


@register_objective("ga")
@dataclass
class GradientAscent(ForgetObjective):
    def value(self, model, batch):
        return self.task.loss(model, batch)

    def normaliser(self, batch):
        return self.task.normaliser(batch)
