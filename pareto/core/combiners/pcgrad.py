"""PCGrad: projecting conflicting gradients (Yu et al. 2020; paper Sec. 2.2 item 6).

Tasks t1 = g_R, t2 = −g_F, so t1·t2 = −g_R·g_F. Two variants:

"symmetric" (default; Yu et al. Alg. 1 and LibMTL `PCGrad`): each task is projected onto the
normal plane of the other, and only on conflict t1·t2 < 0:
    d = t1 + t2 − (t1·t2)(t1/‖t1‖² + t2/‖t2‖²),
    (w_R, w_F) = (1 + g_R·g_F/‖g_R‖², 1 + g_R·g_F/‖g_F‖²);
otherwise d = t1 + t2, (w_R, w_F) = (1, 1). The weights are not normalised to sum to 1.

"paper" (the paper's table): c_t/(1 − c_t) = 1 + g_F·g_R/‖g_R‖², which is a one-sided
projection of the forget task only, d ∝ t1 + t2 − (t1·t2) t1/‖t1‖²; returns (c, 1 − c).
The paper writes it unconditionally, which gives c ∉ [0, 1] when g_R·g_F < −‖g_R‖²; pareto
applies it on conflict only (g_R·g_F > 0, as PCGrad does) and uses c = 0.5 otherwise.

Zero rule: a zero task's projection term is skipped (1/‖t‖² taken as 0, gram.inv); with both
zero d = 0.
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner, require_choice
from pareto.core.gram import Gram, Losses, inv

VARIANTS = ("symmetric", "paper")


@register_combiner("pcgrad")
@dataclass
class PCGrad(Combiner):
    variant: str = "symmetric"

    def __post_init__(self) -> None:
        require_choice("variant", self.variant, VARIANTS)

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        conflict = gram.rf > 0.0  # t1·t2 = −g_R·g_F < 0
        if self.variant == "symmetric":
            if not conflict:
                return 1.0, 1.0
            return float(1.0 + gram.rf * inv(gram.rr)), float(1.0 + gram.rf * inv(gram.ff))
        if not conflict:
            return 0.5, 0.5
        k = float(1.0 + gram.rf * inv(gram.rr))  # c/(1 − c) ≥ 1
        return k / (1.0 + k), 1.0 / (1.0 + k)
