"""LossNorm: loss normalisation (paper Sec. 2.2 item 4; the baseline of Sec. 4.2).

The loss-level rule L_R/|L_R| − L_F/|L_F| with the losses detached, whose gradient is
d = g_R/|L_R| − g_F/|L_F|: (w_R, w_F) = (1/|L_R|, 1/|L_F|), i.e. c_t/(1 − c_t) = |L_F|/|L_R|
(the paper's L_F/L_R with both losses positive). The absolute values keep it meaningful for
npo/simnpo, whose L_F is negative. Gradients are not used.
Zero rule: a zero loss gets weight 0 (gram.inv), so that task drops out; both zero → d = 0.
"""

from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses, inv


@register_combiner("lossnorm")
@dataclass
class LossNorm(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        return inv(abs(float(losses.r))), inv(abs(float(losses.f)))
