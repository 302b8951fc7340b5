"""Extended GDiff: static linear scalarisation c·g_R − (1−c)·g_F (paper Eqs. 1–2, Remark 2.1).

c = 0.5 is vanilla GDiff (Liu et al. 2022); the sweep over c traces paper Fig. 1.
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner, require_unit, static
from pareto.core.gram import Gram, Losses


@register_combiner("gdiff")
@dataclass
class GDiff(Combiner):
    """The static scalarisation c·g_R − (1−c)·g_F (paper Eq. 2)."""

    c: float = 0.5

    def __post_init__(self) -> None:
        require_unit("c", self.c)

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        return static(self.c)
