"""GD: gradient descent on the retain set only, c = 1 (paper Sec. 2.2, item 1)."""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner, static
from pareto.core.gram import Gram, Losses


@register_combiner("gd")
@dataclass
class GD(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        return static(1.0)
