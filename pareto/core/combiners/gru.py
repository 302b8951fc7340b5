"""GRU: gradient rectified unlearning (Wang et al., ICML 2025), without the retain-gradient EMA.

Reference: open-unlearning, src/trainer/unlearn/gru.py (`GRU.training_step`, `pipeline`,
`orthogonal_component`). Its unlearning gradient is that of the forget loss it minimises (−CE for
GA), g_u = −g_F = t2; its retain reference is r̃ = γ_gru·g_R + (1 − γ_gru)·r̃_prev. When they
conflict (g_u·r̃ < 0) it removes g_u's component along r̃, and it steps along g_u alone (no retain
step):
    d = g_u − (g_u·r̃/‖r̃‖²)·r̃  if g_u·r̃ < 0,  else d = g_u.
pareto has no past gradient vectors (a combiner sees this step's Gram matrix), so r̃ = g_R,
γ_gru = 1 (the 'N/A' entry of the GRU README's EMA search space). With g_u·g_R = −g_R·g_F:
    (w_R, w_F) = (g_R·g_F/‖g_R‖², 1)  if g_R·g_F > 0,  else (0, 1).
Then g_R·d = 0 on conflict and −g_R·g_F ≥ 0 otherwise, and g_F·d = (g_R·g_F)²/‖g_R‖² − ‖g_F‖² ≤ 0
(Cauchy–Schwarz) or −‖g_F‖²: conflict-free (paper Eq. 5) always. It is `dualproj`'s
"g_R·g_F > ‖g_R‖²" case, doubled, applied at every conflict.

Zero rule: g_R = 0 has no conflict: (0, 1), d = −g_F (1/‖g_R‖² is taken as 0, gram.inv).
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses, inv


@register_combiner("gru")
@dataclass
class GRU(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        if not gram.rf > 0.0:  # g_u·g_R ≥ 0: no conflict
            return 0.0, 1.0
        return float(gram.rf * inv(gram.rr)), 1.0
