"""DualProj: the mean gradient projected onto the dual cone, two tasks (Quinton & Rey 2024; torchjd).

Tasks t1 = g_R, t2 = −g_F, v_ij = t_i·t_j. d = π_J(Jᵀu) with u = (½, ½): w = argmin_{v ≥ u} vᵀGv
(Quinton & Rey Eq. 3 and Proposition 1; GEM, Lopez-Paz & Ranzato 2017 Eq. 11; torchjd
`DualProjWeighting.forward`), the projection of g0 = (t1 + t2)/2 onto {y: t1·y ≥ 0, t2·y ≥ 0}.

Two tasks: t1·g0 = (v11 + v12)/2 and t2·g0 = (v12 + v22)/2 are never both negative (they sum to
2‖g0‖²). If both are ≥ 0, d = g0. If t1·g0 < 0, d is g0's projection onto the plane t1·y = 0,
½(t2 − (v12/v11)·t1), which lies in the cone (t2·d = ½(v22 − v12²/v11) ≥ 0); likewise for t2.
With v12 = −g_R·g_F:
    (½, ½)                          if g_R·g_F ≤ min(‖g_R‖², ‖g_F‖²),
    (g_R·g_F/(2‖g_R‖²), ½)          if g_R·g_F > ‖g_R‖²  (d = −½·(g_F with its g_R part removed)),
    (½, g_R·g_F/(2‖g_F‖²))          if g_R·g_F > ‖g_F‖²  (d = ½·(g_R with its g_F part removed)).
d lies in the dual cone, so g_R·d ≥ 0 ≥ g_F·d (paper Eq. 5) always.

Zero rule: a zero gradient has g_R·g_F = 0, so (½, ½), d = half the other task (1/‖g‖² is taken
as 0, gram.inv, where rounding leaves g_R·g_F > ‖g‖² = 0). Exactly conflicting tasks
(g_F = k·g_R, k > 0) give finite weights with d = 0.

Departure from torchjd: as for `upgrad` (trace normalisation, reg_eps = 1e-4, quadprog); pareto
projects exactly.
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses, inv


@register_combiner("dualproj")
@dataclass
class DualProj(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        rf = gram.rf
        if rf > gram.rr:  # t1·g0 < 0
            return float(0.5 * rf * inv(gram.rr)), 0.5
        if rf > gram.ff:  # t2·g0 < 0
            return 0.5, float(0.5 * rf * inv(gram.ff))
        return 0.5, 0.5
