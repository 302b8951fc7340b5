"""AutoLR: GeN (Bu & Xu 2024) adapted to unlearning (paper Sec. 3.3, Algorithm 1, App. B).

Every K steps, with u the optimizer's real update direction and f(s) = L_R(θ − s·u):

    L₋ = L_R(θ − η·u),  L₀ = L_R(θ),  L₊ = L_R(θ + η·u)          (two extra forwards, R only)
    Gᵀu   ≈ (L₊ − L₋) / (2η)                                    (App. B.1, central difference)
    uᵀHu  ≈ (L₊ + L₋ − 2·L₀) / η²
    η*    = Gᵀu / uᵀH_R u                                       (paper Eq. 6)

Only the retain loss sets the curvature (App. B.2: maximising L_F has no finite optimum).
η* is accepted only when both estimates are positive (Remark 3.1); otherwise `on_reject`
says what happens: "keep" η (the paper) or "halve" it (the official GeN code). Options from
the official code: `clip` η* to [clip[0]·η, clip[1]·η] (GeN: [0.5, 2]) and `smoothing` s,
η ← (1−s)·η + s·η* (GeN: 0.1). The defaults are the paper's: no clip, no smoothing, keep.
Probing starts at step 0 (then every K steps), so the first steps already use a fitted η.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pareto.core.lr._base import Fit, LRRule, register_lr_rule


@register_lr_rule("autolr")
@dataclass
class AutoLR(LRRule):
    every: int = 10
    clip: tuple[float, float] | None = None
    smoothing: float = 1.0  # weight of η*: 1.0 = take η* (the paper), 0.1 = GeN
    on_reject: str = "keep"

    def __post_init__(self) -> None:
        if int(self.every) < 1:
            raise ValueError(f"every (K) must be ≥ 1, got {self.every}")
        if self.on_reject not in ("keep", "halve"):
            raise ValueError(f"on_reject must be 'keep' or 'halve', got {self.on_reject!r}")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")
        if self.clip is not None:
            if not isinstance(self.clip, (list, tuple)) or len(self.clip) != 2:
                raise ValueError(f"clip must be a pair [lo, hi], got {self.clip!r}; inside a search space a list "
                                 "is a set of choices, so write the pair as clip: [[0.5, 2.0]]")
            lo, hi = self.clip
            if not 0 < lo <= 1 <= hi:
                raise ValueError(f"clip must be [lo, hi] with 0 < lo ≤ 1 ≤ hi, got {self.clip}")

    def next_lr(self, step, lr, probe):
        if step % int(self.every):
            return lr, None
        minus, plus = probe(lr)
        gd = (plus - minus) / (2.0 * lr)
        dhd = (plus + minus - 2.0 * probe.loss0) / (lr * lr)
        accepted = gd > 0 and dhd > 0 and math.isfinite(gd) and math.isfinite(dhd)
        if not accepted:
            new = lr if self.on_reject == "keep" else lr / 2.0
            return new, Fit(gd, dhd, math.nan, False)
        eta = gd / dhd
        target = eta if self.clip is None else min(max(eta, self.clip[0] * lr), self.clip[1] * lr)
        return (1.0 - self.smoothing) * lr + self.smoothing * target, Fit(gd, dhd, eta, True)
