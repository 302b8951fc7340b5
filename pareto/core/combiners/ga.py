"""GA: gradient ascent on the forget set only, c = 0 (paper Sec. 2.2, item 2)."""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner, static
from pareto.core.gram import Gram, Losses


@register_combiner("ga")
@dataclass
class GA(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        return static(0.0)
