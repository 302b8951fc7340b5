"""RMU, representation misdirection — its forget term (Li et al. 2024, "The WMDP Benchmark:
Measuring and Reducing Malicious Use With Unlearning", Sec. 5): steer the activations of the
forget answers at one transformer block towards a fixed random direction of norm c:

    L_RMU,F = E_F (1/|y|)·Σ_{t ∈ y} (1/d)·‖h_θ,l(x)_t − c·u‖²

h_θ,l the output of block l (`model.layers.{l}`; d its width), t over the answer tokens, u a unit
vector drawn once (uniform [0, 1)^d, normalised, as the reference code; seeded by `seed`), the mean
over examples. pareto maximises L_F = −L_RMU,F. Language models only.

Departure (the important one): pareto's rmu keeps the retain loss the engine always uses, the
task's cross-entropy on retain answers, not the paper's retain term α·‖h_θ,l(x_R) − h_frozen,l(x_R)‖²
(activation matching against the frozen model at the same block), which pareto's engine does not
compute. So retain is protected at the output (its answers' likelihood), not in the block-l
representations: those may drift where the paper's method pins them, and the combiner's weights
trade the steering term against a CE instead of against a second activation distance. It is
open-unlearning's RMU with `retain_loss_type: NLL`. Every trainable parameter moves (as
open-unlearning's RMU.yaml, `.*`; the WMDP code updates three MLP matrices below the layer: use
LoRA or freeze parameters for that).

Checked against open-unlearning `src/trainer/unlearn/rmu.py` (`get_control_vector`,
`compute_activation_loss`, mask = labels ≠ −100 unshifted; defaults layer 7 and steering
coefficient 2 of `configs/trainer/RMU.yaml`). Departures besides the retain term: u is seeded
(theirs comes from the global generator), and an example without answer tokens counts 0 (theirs
divides by zero).
"""

import math
from dataclasses import dataclass, field

import torch

from pareto.core.objectives._base import ForgetObjective, register_objective


@register_objective("rmu")
@dataclass
class RMU(ForgetObjective):
    layer: int = 7
    steering_coeff: float = 2.0
    seed: int = 0
    positive_loss = True
    language_models_only = "it steers a transformer block's hidden states"
    _u: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0:
            raise ValueError(f"layer must be an integer >= 0, got {self.layer!r}")
        if not (math.isfinite(self.steering_coeff) and self.steering_coeff > 0):
            raise ValueError(f"steering_coeff must be a finite number > 0, got {self.steering_coeff}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def direction(self, dim: int) -> torch.Tensor:
        """u: uniform [0, 1)^dim, normalised, from a generator seeded by `seed` (float64, CPU)."""
        if self._u is None or self._u.numel() != dim:
            u = torch.rand(dim, generator=torch.Generator().manual_seed(self.seed), dtype=torch.float64)
            self._u = u / u.norm()
        return self._u

    def value(self, model, batch):
        h, mask = self.task.hidden_states(model, batch, self.layer)
        target = (self.steering_coeff * self.direction(h.shape[-1])).to(h)
        per_token = (h - target).pow(2).mean(dim=-1) * mask
        loss = (per_token.sum(dim=1) / mask.sum(dim=1).clamp_min(1)).mean()
        return -loss
