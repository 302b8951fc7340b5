"""FairGrad(α): α-fair resource allocation, two tasks (Ban & Ji, ICML 2024; OptMN-Lab/fairgrad).

Tasks t1 = g_R, t2 = −g_F, G = [t_i·t_j]. FairGrad maximises Σ_i (t_i·d)^{1−α}/(1 − α) over a ball;
its optimality condition is d = Σ_i w_i t_i with (Gw)_i = t_i·d = w_i^{−1/α}, w > 0 (Ban & Ji's
system GᵀGw = w^{−1/α} as the official `FairGrad.fairgrad` solves it; the paper's equation number
not checked here). α = 1 is Nash-MTL (`nash`).

Two tasks, n_i = ‖t_i‖, c = cos∠(t1, t2) = −cos∠(g_R, g_F). Write d = k·(u1 + ρ·u2), i.e.
w1 = k/n1, w2 = kρ/n2. Dividing the two equations leaves one for ρ > 0:
    ρ·((c + ρ)/(1 + cρ))^α = (n2/n1)^{1−α},      with c + ρ > 0 and 1 + cρ > 0,
whose left side rises from 0 to ∞ over that interval (x = log ρ ∈ (log(−c), −log(−c)) if c < 0,
all of ℝ otherwise): one root, found by bisection (for c < 0 on the distance to the nearer end
of the interval, where 1 + cρ and c + ρ would cancel). Then the first equation,
k·n1(1 + cρ) = (k/n1)^{−1/α}, gives log k = ((1 − α)·log n1 − α·log(1 + cρ))/(1 + α), and
    (w_R, w_F) = (k/‖g_R‖, kρ/‖g_F‖).
For α = 1, ρ = 1 and k = 1/√(1 + c): NGDiff's direction, `nash`'s weights. For any α,
t_i·d = w_i^{−1/α} > 0, so g_R·d > 0 > g_F·d (paper Eq. 5) whenever a solution exists.

Zero rule: a zero task gets w = 0 and the other solves w·n² = w^{−1/α}, w = n^{−2α/(1+α)}; both
zero → (0, 0). Exactly conflicting tasks (1 + c ≤ 1e-12: g_R, g_F point the same way) have no
solution (no d has t1·d > 0 and t2·d > 0): (0, 0), a zero step, as `nash`.

Departures of the official code: it solves the system approximately (scipy least_squares from
w = 1/m, bounds w ≥ 0), and `overwrite_grad` multiplies d by m = 2 "to match the sum loss";
pareto returns the exact solution of the paper's system, without that factor.
"""

import math
from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses


def _log1p_cexp(c: float, y: float) -> float:
    """log(1 + c·e^y) for c ≥ 0, without overflow."""
    if c == 0.0:
        return 0.0
    z = math.log(c) + y
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _bisect(f, lo: float, hi: float, rel: bool) -> float:
    """The sign change of increasing f in [lo, hi], to ~1e-16 (relative to hi if rel) or float spacing."""
    while hi - lo > 1e-16 * (abs(hi) if rel else 1.0):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        lo, hi = (mid, hi) if f(mid) < 0.0 else (lo, mid)
    return 0.5 * (lo + hi)


def _root(c: float, alpha: float, rhs: float) -> tuple[float, float]:
    """x = log ρ with (1 + α)x + α(log(1 + c·e^{−x}) − log(1 + c·e^{x})) = rhs, and log(1 + c·e^x).

    For c < 0 the domain is |x| < E = −log(−c) and 1 + c·e^{±x} = 1 − e^{±x−E} cancels near its
    ends: x is then measured from the nearer end, u = E ∓ x, and 1 − e^{−u} = −expm1(−u) is exact.
    """
    if c >= 0.0:

        def h(x: float) -> float:
            return (1.0 + alpha) * x + alpha * (_log1p_cexp(c, -x) - _log1p_cexp(c, x)) - rhs

        lo, hi = -1.0, 1.0
        while h(lo) > 0.0:
            lo *= 2.0
        while h(hi) < 0.0:
            hi *= 2.0
        x = _bisect(h, lo, hi, rel=False)
        return x, _log1p_cexp(c, x)
    E = -math.log(-c)
    side = 1.0 if rhs > 0.0 else -1.0  # h(0) = −rhs: the root lies on the side of sign(rhs)

    def logs(u: float) -> tuple[float, float]:  # (log(1 − e^{−u}), log(1 − e^{u−2E})): near end, far end
        return (math.log(-math.expm1(-u)) if u > 0.0 else -math.inf), math.log(-math.expm1(u - 2.0 * E))

    def g(u: float) -> float:  # h at x = side·(E − u), times −side: increasing in u
        near, far = logs(u)
        p, q = (far, near) if side > 0 else (near, far)  # log(1 + c·e^{−x}), log(1 + c·e^{x})
        return -side * ((1.0 + alpha) * side * (E - u) + alpha * (p - q) - rhs)

    u = _bisect(g, 0.0, E, rel=True)
    near, far = logs(u)
    return side * (E - u), (near if side > 0 else far)


@register_combiner("fairgrad")
@dataclass
class FairGrad(Combiner):
    alpha: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(float(self.alpha)) and float(self.alpha) > 0.0):
            raise ValueError(f"alpha must be a finite number > 0, got {self.alpha}")

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        a = float(self.alpha)
        n1, n2 = gram.norm_r, gram.norm_f
        if n1 == 0.0 or n2 == 0.0:
            if n1 == n2:
                return 0.0, 0.0
            w = math.exp(-2.0 * a / (1.0 + a) * math.log(max(n1, n2)))
            return (w, 0.0) if n1 > 0.0 else (0.0, w)
        c = -gram.cos  # cos∠(t1, t2)
        if 1.0 + c <= 1e-12:
            return 0.0, 0.0
        ln1, ln2 = math.log(n1), math.log(n2)
        x, log_1p_crho = _root(c, a, (1.0 - a) * (ln2 - ln1))  # log ρ, log(1 + cρ)
        log_k = ((1.0 - a) * ln1 - a * log_1p_crho) / (1.0 + a)
        return math.exp(log_k - ln1), math.exp(log_k + x - ln2)
