"""NGDiff: normalised gradient difference (paper Sec. 3.2).

c_t = (1/‖g_R‖)/(1/‖g_R‖ + 1/‖g_F‖)  ⇒  d = g_R/‖g_R‖ − g_F/‖g_F‖ (the common factor dropped).
Lemma 4: g_R·d = ‖g_R‖(1 − cos) ≥ 0 ≥ ‖g_F‖(cos − 1) = g_F·d for any g_R, g_F (Eq. 5).
Zero rule: a zero gradient's unit vector is taken as 0, so d = −g_F/‖g_F‖ when g_R = 0,
d = g_R/‖g_R‖ when g_F = 0, and d = 0 when both vanish; Lemma 4 still holds.
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses, inv


@register_combiner("ngdiff")
@dataclass
class NGDiff(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        return inv(gram.norm_r), inv(gram.norm_f)
