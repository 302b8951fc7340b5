"""MGDA: multiple-gradient descent, two-task closed form (Désidéri 2012; Sener & Koltun 2018).

Tasks t1 = g_R, t2 = −g_F, each first divided by a normaliser n_i (LibMTL `MGDA`, `mgda_gn`):
"none" n_i = 1, "l2" n_i = ‖t_i‖, "loss" n_i = |L_i|, "loss+" n_i = |L_i|·‖t_i‖.
With v_ij = (t_i/n_i)·(t_j/n_j), the min-norm point of the segment is
    γ = (v22 − v12)/(v11 + v22 − 2·v12), clipped to [0.001, 0.999],   d = γ·t1/n1 + (1 − γ)·t2/n2,
so (w_R, w_F) = (γ/n1, (1 − γ)/n2). With "l2", v11 = v22 = 1 gives γ = 1/2 and d ∝ NGDiff.
The clip reproduces the reference `_min_norm_element_from2` (γ = 0.999 if v12 ≥ v11, 0.001 if
v12 ≥ v22); it also clips interior values closer than 0.001 to an end, which the reference
leaves as they are.

Zero rule: a zero normaliser (zero gradient under "l2"/"loss+", zero loss under "loss"/"loss+")
makes 1/n_i = 0 (gram.inv), i.e. that task is 0; the denominator ‖t1/n1 − t2/n2‖² = 0 (equal
normalised tasks, or both zero) gives γ = 0.5. A single zero task sends γ to the clip bound,
so d = 0.001 × the other task (MGDA's min-norm point is 0 there).
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner, require_choice
from pareto.core.gram import Gram, Losses, inv

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@register_combiner("mgda")
@dataclass
class MGDA(Combiner):
    """The min-norm point of the two (normalised) gradients' convex hull (Sener & Koltun 2018)."""

    normalization: str = "none"

    def __post_init__(self) -> None:
        require_choice("normalization", self.normalization, NORMALIZATIONS)

    def _scales(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        """1/n_R, 1/n_F."""
        lr, lf = abs(float(losses.r)), abs(float(losses.f))
        if self.normalization == "l2":
            return inv(gram.norm_r), inv(gram.norm_f)
        if self.normalization == "loss":
            return inv(lr), inv(lf)
        if self.normalization == "loss+":
            return inv(lr) * inv(gram.norm_r), inv(lf) * inv(gram.norm_f)
        return 1.0, 1.0

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        s1, s2 = self._scales(gram, losses)
        v11, v12, v22 = s1 * s1 * gram.rr, -s1 * s2 * gram.rf, s2 * s2 * gram.ff
        denom = v11 + v22 - 2.0 * v12  # ‖t1/n1 − t2/n2‖²
        gamma = 0.5 if denom <= 0.0 else min(max((v22 - v12) / denom, 0.001), 0.999)
        return float(gamma * s1), float((1.0 - gamma) * s2)
