"""The 2×2 Gram matrix of the retain and forget gradients: everything a combiner sees.

g_R = ∇L_R (retain loss, minimised), g_F = ∇L_F (forget objective, maximised). Every
two-task rule in pareto is a function of these three scalars and the two losses, and the
update direction is always d = w_R·g_R − w_F·g_F (paper Eq. 3 with c_t = w_R/(w_R+w_F)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Gram:
    """‖g_R‖², g_R·g_F, ‖g_F‖² as float64 Python scalars."""

    rr: float
    rf: float
    ff: float

    @property
    def norm_r(self) -> float:
        return math.sqrt(max(self.rr, 0.0))

    @property
    def norm_f(self) -> float:
        return math.sqrt(max(self.ff, 0.0))

    @property
    def cos(self) -> float:
        """cos∠(g_R, g_F); defined as 0 when either gradient is zero."""
        denom = self.norm_r * self.norm_f
        if denom == 0.0:
            return 0.0
        return max(-1.0, min(1.0, self.rf / denom))

    def dots(self, w_r: float, w_f: float) -> tuple[float, float]:
        """(g_R·d, g_F·d) for d = w_R·g_R − w_F·g_F — the two sides of paper Eq. 5."""
        return w_r * self.rr - w_f * self.rf, w_r * self.rf - w_f * self.ff

    def norm_d(self, w_r: float, w_f: float) -> float:
        sq = w_r * w_r * self.rr - 2.0 * w_r * w_f * self.rf + w_f * w_f * self.ff
        return math.sqrt(max(sq, 0.0))


@dataclass(frozen=True)
class Losses:
    """The step's losses: r = L_R (minimised), f = L_F (the forget objective, maximised).

    For the `ga` objective L_F is the forget cross-entropy (positive). Objectives phrased
    as a loss to minimise (npo, simnpo) report L_F = −(that loss), so `-f` is positive.
    """

    r: float
    f: float


def inv(x: float) -> float:
    """1/x with the documented zero rule: a zero norm (or loss) contributes nothing."""
    return 1.0 / x if x > 0.0 else 0.0
