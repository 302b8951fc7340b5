"""GA: maximise the forget cross-entropy over answer tokens, L_F = CE (paper Sec. 2)."""

from dataclasses import dataclass

from pareto.core.objectives._base import ForgetObjective, register_objective
from pareto.lm import answer_ce


@register_objective("ga")
@dataclass
class GradientAscent(ForgetObjective):
    def value(self, model, batch):
        return answer_ce(model, batch)
