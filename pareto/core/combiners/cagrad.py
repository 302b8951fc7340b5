"""CAGrad: conflict-averse gradient descent, two tasks (Liu et al. 2021; LibMTL `CAGrad`).

Tasks t1 = g_R, t2 = −g_F; g0 = (t1 + t2)/2, √φ = alpha·‖g0‖, g_w = w·t1 + (1 − w)·t2.
The dual (CAGrad Eq. 4, two tasks) is the 1-D convex problem
    w* = argmin_{w∈[0,1]} F(w),   F(w) = g_w·g0 + √φ·‖g_w‖,
and d = g0 + (√φ/‖g_w*‖)·g_w*, divided by (1 + alpha²) when `rescale` (LibMTL rescale=1).
So (w_R, w_F) = (½ + λw*, ½ + λ(1 − w*))·s with λ = √φ/‖g_w*‖, s = 1/(1 + alpha²) or 1.
Everything comes from the Gram matrix. pareto solves F'(w*) = 0 by bracketing root-finding
(F is convex, so F' is non-decreasing and w* is an end point when F' does not change sign),
which locates w* to ~1e-15 relative; a value-based minimiser only reaches ~√eps on this flat
minimum.

Zero rule, where ‖g_w*‖ = 0 leaves the dual formula undefined (the primal is then
max min_i t_i·d over the ball ‖d − g0‖ ≤ √φ with the constraint inactive):
- √φ = 0 (g0 = 0, e.g. g_R = g_F) or a zero task: d = g0 (a primal solution, the one
  nearest g0; with t2 = 0 it is t1/2).
- exactly opposite tasks (t2 = −k·t1, k > 0, i.e. g_R and g_F point the same way, judged as
  1 + cos∠(t1, t2) ≤ 1e-12) with the kink w = k/(1 + k) as minimiser (only for alpha > 1):
  the primal solutions are the d ⊥ t1 in the ball, and the only one in span{t1, t2} is
  d = 0, so the weights are (0, 0).
"""

import math
from dataclasses import dataclass

from scipy.optimize import brentq

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses


def _solve(v11: float, v12: float, v22: float, c: float) -> tuple[float, float]:
    """(w*, 1 − w*) for argmin over [0, 1] of F(w) = g_w·g0 + c‖g_w‖ (v_ij = t_i·t_j, c > 0).

    F is symmetric under t1 ↔ t2, w ↔ 1 − w; a root in [½, 1] is found as 1 − w in [0, ½]
    of the swapped problem, so the smaller of w*, 1 − w* keeps full relative precision.
    """

    def dF(w: float, a11: float, a22: float) -> float:
        q = w * w * a11 + 2.0 * w * (1.0 - w) * v12 + (1.0 - w) * (1.0 - w) * a22  # ‖g_w‖²
        if q <= 0.0:
            return 0.5 * (a11 - a22)  # the kink: a value inside F's subdifferential
        return 0.5 * (a11 - a22) + c * (w * (a11 - v12) - (1.0 - w) * (a22 - v12)) / math.sqrt(q)

    if dF(0.0, v11, v22) >= 0.0:
        return 0.0, 1.0
    if dF(1.0, v11, v22) <= 0.0:
        return 1.0, 0.0
    if dF(0.5, v11, v22) >= 0.0:
        w = brentq(dF, 0.0, 0.5, args=(v11, v22), xtol=1e-300, rtol=1e-15, maxiter=200, disp=False)
        return w, 1.0 - w
    u = brentq(dF, 0.0, 0.5, args=(v22, v11), xtol=1e-300, rtol=1e-15, maxiter=200, disp=False)
    return 1.0 - u, u


@register_combiner("cagrad")
@dataclass
class CAGrad(Combiner):
    alpha: float = 0.5
    rescale: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(float(self.alpha)) and float(self.alpha) >= 0.0):
            raise ValueError(f"alpha must be a finite number ≥ 0, got {self.alpha}")

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        v11, v12, v22 = float(gram.rr), -float(gram.rf), float(gram.ff)
        alpha = float(self.alpha)
        s = 1.0 / (1.0 + alpha * alpha) if self.rescale else 1.0
        c = alpha * math.sqrt(max(0.25 * (v11 + 2.0 * v12 + v22), 0.0))  # √φ = alpha‖g0‖
        if c == 0.0 or v11 == 0.0 or v22 == 0.0:
            return 0.5 * s, 0.5 * s  # d = g0
        n1, n2 = math.sqrt(v11), math.sqrt(v22)
        if 1.0 + v12 / (n1 * n2) <= 1e-12 and abs(0.5 * (v11 - v22)) < c * (n1 + n2):
            return 0.0, 0.0  # opposite tasks, kink minimiser: d = 0
        w, u = _solve(v11, v12, v22, c)  # u = 1 − w
        q = w * w * v11 + 2.0 * w * u * v12 + u * u * v22
        lam = c / math.sqrt(q) if q > 0.0 else 0.0
        return (0.5 + lam * w) * s, (0.5 + lam * u) * s
