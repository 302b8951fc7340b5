"""Extended GDiff: static linear scalarisation c·g_R − (1−c)·g_F (paper Eqs. 1–2, Remark 2.1).

c = 0.5 is vanilla GDiff (Liu et al. 2022); the sweep over c traces paper Fig. 1.
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner, static
from pareto.core.gram import Gram, Losses


@register_combiner("gdiff")
@dataclass
class GDiff(Combiner):
    c: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.c) <= 1.0:
            raise ValueError(f"c must lie in [0, 1], got {self.c}")

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        return static(self.c)
