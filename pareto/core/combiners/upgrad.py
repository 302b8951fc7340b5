"""UPGrad: unconflicting projection of gradients, two tasks (Quinton & Rey 2024; torchjd `UPGrad`).

Jacobian J with rows t1 = g_R, t2 = −g_F; Gramian G = JJᵀ, v_ij = t_i·t_j. π_J(x) projects x onto
the dual cone {y: t1·y ≥ 0, t2·y ≥ 0} (Quinton & Rey Eq. 3); by their Proposition 1,
π_J(Jᵀu) = Jᵀw with w = argmin_{v ≥ u} vᵀGv. UPGrad (default, mean preference) is
d = (1/m)·Σ_i π_J(t_i), i.e. w = Σ_i argmin_{v ≥ e_i/m} vᵀGv (torchjd `UPGradWeighting.forward`,
`_utils/dual_cone.project_weights`).

Two tasks. With t1·t2 ≥ 0 both tasks lie in the cone: d = (t1 + t2)/2. Otherwise π_J(t1) is t1's
projection onto the plane t2·y = 0, t1 − (v12/v22)·t2 (it is in the cone: its product with t1,
v11 − v12²/v22, is ≥ 0 by Cauchy–Schwarz), and symmetrically for t2:
    d = ½[(1 − v12/v11)·t1 + (1 − v12/v22)·t2],
    (w_R, w_F) = (½(1 + g_R·g_F/‖g_R‖²), ½(1 + g_R·g_F/‖g_F‖²)) on conflict (g_R·g_F > 0), else (½, ½):
half of `pcgrad`'s symmetric weights (for two tasks UPGrad = PCGrad/2). d lies in the dual cone,
so g_R·d ≥ 0 ≥ g_F·d (paper Eq. 5) always.

Zero rule: a zero task projects to 0 and constrains nothing: 1/‖t‖² is taken as 0 (gram.inv), so
one zero gradient gives (½, ½), d = half the other task. Exactly conflicting tasks (g_F = k·g_R,
k > 0): the cone is the plane ⊥ g_R and the formula's finite weights give d = 0.

Departure from torchjd: it divides G by its trace and adds reg_eps·I (1e-4) before solving with
quadprog (and uses weights u when trace(G) < norm_eps = 1e-4); that moves the weights by ~1e-4
relative and gives a small nonzero d for exactly conflicting tasks. pareto solves the
unregularised problem (the paper's π_J) exactly.
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses, inv


@register_combiner("upgrad")
@dataclass
class UPGrad(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        if not gram.rf > 0.0:  # t1·t2 = −g_R·g_F ≥ 0: both tasks in the dual cone
            return 0.5, 0.5
        return float(0.5 * (1.0 + gram.rf * inv(gram.rr))), float(0.5 * (1.0 + gram.rf * inv(gram.ff)))
