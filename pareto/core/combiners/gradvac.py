"""GradVac: gradient vaccine, two tasks (Wang et al., ICLR 2021, Alg. 1; LibMTL `GradVac`).

Tasks t1 = g_R, t2 = −g_F, ρ = cos(t1, t2) = −cos∠(g_R, g_F), target φ̂ an EMA (starts at 0).
If ρ < φ̂, each task gets a multiple of the other added so that its cosine with the other
becomes φ̂:
    pc1 = t1 + w1·t2,  w1 = ‖t1‖(φ̂√(1 − ρ²) − ρ√(1 − φ̂²)) / (‖t2‖√(1 − φ̂²)),
    pc2 = t2 + w2·t1,  w2 = ‖t2‖(φ̂√(1 − ρ²) − ρ√(1 − φ̂²)) / (‖t1‖√(1 − φ̂²)),
d = pc1 + pc2 = (1 + w2)·t1 + (1 + w1)·t2, so (w_R, w_F) = (1 + w2, 1 + w1); otherwise (1, 1).
Then, whether or not it projected, φ̂ ← (1 − beta)·φ̂ + beta·ρ (Alg. 1 and current LibMTL;
older LibMTL versions updated φ̂ only when projecting). One φ̂ serves both ordered pairs: the
reference keeps φ̂_12 and φ̂_21, but for two tasks they receive identical updates.

Zero rule: a zero task has no cosine: no projection (d = t1 + t2) and no EMA update.
If φ̂ = 1 exactly (reachable only through exactly parallel tasks) no finite w attains it:
no projection (the reference's +1e-8 would give a huge finite w instead).
"""

import math
from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner, require_unit
from pareto.core.gram import Gram, Losses


@register_combiner("gradvac")
@dataclass
class GradVac(Combiner):
    beta: float = 0.5

    def __post_init__(self) -> None:
        require_unit("beta", self.beta)
        self.reset(0)

    def reset(self, seed: int) -> None:
        self.phi = 0.0  # φ̂, the EMA target cosine

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        n1, n2 = gram.norm_r, gram.norm_f
        if n1 == 0.0 or n2 == 0.0:
            return 1.0, 1.0
        rho, phi = -float(gram.cos), self.phi
        w1 = w2 = 0.0
        root_phi = math.sqrt(max(1.0 - phi * phi, 0.0))
        if rho < phi and root_phi > 0.0:
            k = (phi * math.sqrt(max(1.0 - rho * rho, 0.0)) - rho * root_phi) / root_phi
            w1, w2 = k * n1 / n2, k * n2 / n1
        self.phi = (1.0 - self.beta) * phi + self.beta * rho
        return float(1.0 + w2), float(1.0 + w1)
