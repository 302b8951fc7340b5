"""ConFIG: conflict-free inverse gradients, two tasks (Liu et al. 2024; tum-pbs/ConFIG).

Tasks t1 = g_R, t2 = −g_F with unit vectors u_i (zero for a zero task). ConFIG, as the package
README writes Liu et al.'s update and conflictfree `ConFIG_update` computes it (EqualWeight,
ProjectionLength; the paper's equation number not checked here):
    g_u = U[[u1, u2]^{−ᵀ}·1],   d = (Σ_i t_i·g_u)·g_u,
U the unit vector, M^{−ᵀ} the pseudo-inverse (the reference's least-squares solve).
Two tasks, c = u1·u2 = −cos∠(g_R, g_F): [u1, u2]^{−ᵀ}·1 is the minimum-norm x in span{u1, u2} with
u1·x = u2·x = 1, x = (u1 + u2)/(1 + c), so g_u = (u1 + u2)/‖u1 + u2‖ and
Σ_i t_i·g_u = (‖t1‖ + ‖t2‖)(1 + c)/‖u1 + u2‖ with ‖u1 + u2‖² = 2(1 + c):
    d = ½(‖g_R‖ + ‖g_F‖)·(u_R − u_F),   (w_R, w_F) = ((‖g_R‖ + ‖g_F‖)/(2‖g_R‖), (‖g_R‖ + ‖g_F‖)/(2‖g_F‖)).
So d ∥ NGDiff's u_R − u_F (length ½(‖g_R‖ + ‖g_F‖) times NGDiff's) and Lemma 4 holds:
g_R·d = ½(‖g_R‖ + ‖g_F‖)‖g_R‖(1 − cos) ≥ 0 ≥ ½(‖g_R‖ + ‖g_F‖)‖g_F‖(cos − 1) = g_F·d.

Zero rule (what the pseudo-inverse gives): a zero task's row is 0 and only adds a constant
residual, so g_u = the other task's unit vector and d = that task: (1, 0) or (0, 1); both zero →
(0, 0). Exactly conflicting tasks (u_R = u_F): the minimum-norm solution is x = 0 and
conflictfree's `unit_vector` maps 0 to 0, so d = 0; the formula's finite weights give that.

Departure: the reference's two-gradient shortcut `ConFIG_update_double` builds the same direction
from the orthogonal parts and is 0/0 (NaN) for parallel gradients; `ConFIG_update` (lstsq) is not.
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses, inv


@register_combiner("config")
@dataclass
class ConFIG(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        n_r, n_f = gram.norm_r, gram.norm_f
        if n_r == 0.0 or n_f == 0.0:
            return (1.0 if n_r > 0.0 else 0.0), (1.0 if n_f > 0.0 else 0.0)
        half = 0.5 * (n_r + n_f)
        return float(half * inv(n_r)), float(half * inv(n_f))
