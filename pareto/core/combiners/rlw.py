"""RLW: random loss weighting (Lin et al., TMLR 2022; paper Sec. 2.2 item 5; LibMTL `RLW`).

c_t = e^λ1/(e^λ1 + e^λ2) = sigmoid(λ1 − λ2) with λ1, λ2 ~ N(0, 1) drawn fresh every step;
(w_R, w_F) = (c_t, 1 − c_t). The draws come from a numpy Generator seeded by `reset(seed)`,
so a run is reproducible. No gradient is used, so zero gradients need no rule.
"""

import math
from dataclasses import dataclass

import numpy as np

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses


def _sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@register_combiner("rlw")
@dataclass
class RLW(Combiner):
    def __post_init__(self) -> None:
        self.reset(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        lam1, lam2 = self._rng.standard_normal(2)
        x = float(lam1 - lam2)
        return _sigmoid(x), _sigmoid(-x)  # c and 1 − c, each without cancellation
