"""Nash-MTL, two-task closed form (Navon et al. 2022; LibMTL `Nash_MTL`).

Nash-MTL solves (GᵀG α)_i = 1/α_i, α > 0. For two tasks t1 = g_R, t2 = −g_F, with
cos θ = t1·t2/(‖t1‖‖t2‖) = −cos∠(g_R, g_F), the solution is
    α_i = 1/(‖t_i‖·√(1 + cos θ)),   d = (u1 + u2)/√(1 + cos θ) = (u_R − u_F)/√(1 + cos θ),
so (w_R, w_F) = (α1, α2) and d ∥ NGDiff; only its length differs.

Zero rule: a zero task gets α = 0 and cos θ is taken as 0, so d is the other task's unit vector
(the Nash condition then holds for the nonzero task); both zero → (0, 0). Exactly conflicting
tasks (1 + cos θ ≤ 1e-12, i.e. g_R and g_F point the same way) have no bargaining solution
(every convex combination has some t_i·d ≤ 0): pareto returns (0, 0), a zero step, as NGDiff's
u_R − u_F also is there.
"""

import math
from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses, inv


@register_combiner("nash")
@dataclass
class NashMTL(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        one_plus_cos = 1.0 - gram.cos  # 1 + cos θ; gram.cos is 0 when a gradient is zero
        if one_plus_cos <= 1e-12:
            return 0.0, 0.0
        r = 1.0 / math.sqrt(one_plus_cos)
        return float(inv(gram.norm_r) * r), float(inv(gram.norm_f) * r)
