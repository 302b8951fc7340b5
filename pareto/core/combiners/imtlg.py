"""IMTL-G: impartial gradient weighting (Liu et al. 2021; paper Sec. 2.2 item 7).

Paper's closed form, with u = g/‖g‖:
    c_t = g_F·(u_F − u_R) / (g_F − g_R)·(u_F − u_R);   (w_R, w_F) = (c_t, 1 − c_t).
Expanding, numerator = ‖g_F‖(1 − cos) and denominator = (‖g_R‖ + ‖g_F‖)(1 − cos) with
cos = cos∠(g_R, g_F), so c_t = ‖g_F‖/(‖g_R‖ + ‖g_F‖) whenever cos ≠ 1, and this is also the
formula's limit at cos = 1. It is NGDiff's c_t: for two tasks IMTL-G's direction is NGDiff's
u_R − u_F, scaled by ‖g_R‖‖g_F‖/(‖g_R‖ + ‖g_F‖). pareto evaluates the cancelled form, which is
exact algebra and avoids the 0/0 the literal form hits for (nearly) parallel gradients.

Zero rule: a zero gradient's unit vector is 0. Then the literal formula gives c = 1 for
g_R = 0 and c = 0 for g_F = 0, the same as the cancelled form, and both give d = 0 (IMTL-G's
equal-projection condition cannot hold with a nonzero step; unlike NGDiff, which then steps
along the nonzero gradient). Both zero: c = 0.5 (d = 0).
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses


@register_combiner("imtlg")
@dataclass
class IMTLG(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        nr, nf = gram.norm_r, gram.norm_f
        if nr + nf == 0.0:
            return 0.5, 0.5
        return float(nf / (nr + nf)), float(nr / (nr + nf))
