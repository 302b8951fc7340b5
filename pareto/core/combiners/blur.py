"""BLUR: bi-level unlearning, forget problem as the lower level (Reisizadeh et al., EACL 2026).

Reference: hadireisizadeh/BLURLLMUnlearning, MUSE/baselines/baselines/iterative.py,
`UnlearnerM`, method 'BLO_forget_lower' (the one its scripts run). Its forget loss is the loss
it minimises (−CE for GA, the NPO loss), so its forget gradient is g_f = −g_F = t2, and its
retain gradient g_r = g_R = t1. It steps along
    ∇ = g_r + ξ·g_f,   ξ = γ − ⟨g_r, g_f⟩/‖g_f‖²,
i.e. in pareto's terms, with ⟨g_r, g_f⟩ = −g_R·g_F:
    d = g_R − (γ + g_R·g_F/‖g_F‖²)·g_F = (g_R with its g_F part removed) − γ·g_F,
    (w_R, w_F) = (1, γ + g_R·g_F/‖g_F‖²).
So g_F·d = −γ‖g_F‖² ≤ 0 always (the forget objective rises at first order), but
g_R·d = ‖g_R‖²(1 − cos²) − γ·g_R·g_F is negative when γ·g_R·g_F > ‖g_R‖²(1 − cos²), e.g. for
parallel g_R, g_F: not conflict-free. w_F < 0 when g_R·g_F < −γ‖g_F‖², as the code does.

Zero rule: g_F = 0 makes ⟨g_r, g_f⟩/‖g_f‖² 0/0 (a division error in the reference): taken as 0
(gram.inv), so (1, γ) and d = g_R. g_R = 0 gives (1, γ), d = −γ·g_F.

The reference applies ξ unclipped (no max(ξ, 0)) and takes γ = 1 (`--gama`, its scripts' GAMA);
pareto follows it.
"""

import math
from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses, inv


@register_combiner("blur")
@dataclass
class BLUR(Combiner):
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(float(self.gamma)) and float(self.gamma) >= 0.0):
            raise ValueError(f"gamma must be a finite number ≥ 0, got {self.gamma}")

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        return 1.0, float(self.gamma + gram.rf * inv(gram.ff))
