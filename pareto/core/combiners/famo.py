"""FAMO: fast adaptive multitask optimisation (Liu et al., NeurIPS 2023), two tasks.

Loss-based: the task losses ℓ_R = L_R and ℓ_F = −L_F must both be positive (npo, simnpo);
the 'ga' objective's −L_F is negative and is refused. With logits ξ ∈ R², z = softmax(ξ):
    c_i = (z_i/ℓ_i) / Σ_j (z_j/ℓ_j),   d = c_R·∇ℓ_R + c_F·∇ℓ_F = c_R·g_R − c_F·g_F,
the gradient of Σ z_i log ℓ_i / Σ_j (z_j/ℓ_j) (official `get_weighted_loss`), so
(w_R, w_F) = (c_R, c_F), which sum to 1.

Logit update (official `update`, also LibMTL `FAMO`):
    δ = log ℓ_prev − log ℓ_now   (per task; positive = that task improved),
    ∇ξ = J_softmax(ξ)ᵀ δ = z ⊙ (δ − z·δ),
and ξ takes a descent step on ∇ξ + gamma·ξ, so a task that improved more loses weight.
`logit_optimizer` = "adam" (default) is what the official code and LibMTL do:
torch.optim.Adam(lr, betas (0.9, 0.999), eps 1e-8, weight_decay=gamma), written out here;
"sgd" is the plain step ξ ← ξ − lr·(∇ξ + gamma·ξ). With lr = 0.025 the plain step moves ξ_i
by at most lr·|δ_R − δ_F|/4 per step, far less than Adam's ~lr, so they need different lr.

Differences from the official code, both deliberate: (1) the official code re-measures the
losses on the same batch after the model step; pareto updates ξ at the next call from
consecutive steps' losses, which are measured on different batches (no extra forward pass);
(2) the official code uses ℓ + 1e-8, pareto floors ℓ at `min_loss` (default 1e-8).
Zero rule: gradients are not used; a loss ≤ 0 raises ValueError.
"""

import math
from dataclasses import dataclass

import numpy as np

from pareto.core.combiners._base import Combiner, compatibility_problem, register_combiner, require_choice
from pareto.core.gram import Gram, Losses

OPTIMIZERS = ("adam", "sgd")
_BETA1, _BETA2, _ADAM_EPS = 0.9, 0.999, 1e-8


@register_combiner("famo")
@dataclass
class FAMO(Combiner):
    needs_positive_forget_loss = True

    gamma: float = 0.01
    lr: float = 0.025
    min_loss: float = 1e-8
    logit_optimizer: str = "adam"

    def __post_init__(self) -> None:
        if not float(self.gamma) >= 0.0:
            raise ValueError(f"gamma must be ≥ 0, got {self.gamma}")
        if not float(self.lr) > 0.0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not float(self.min_loss) > 0.0:
            raise ValueError(f"min_loss must be > 0, got {self.min_loss}")
        require_choice("logit_optimizer", self.logit_optimizer, OPTIMIZERS)
        self.reset(0)

    def reset(self, seed: int) -> None:
        self.xi = np.zeros(2)  # logits ξ
        self._prev_log: np.ndarray | None = None
        self._m, self._v, self._t = np.zeros(2), np.zeros(2), 0  # Adam state

    def _step_logits(self, delta: np.ndarray) -> None:
        z = _softmax(self.xi)
        grad = z * (delta - z @ delta) + self.gamma * self.xi
        if self.logit_optimizer == "sgd":
            self.xi = self.xi - self.lr * grad
            return
        self._t += 1
        self._m = _BETA1 * self._m + (1.0 - _BETA1) * grad
        self._v = _BETA2 * self._v + (1.0 - _BETA2) * grad * grad
        denom = np.sqrt(self._v) / math.sqrt(1.0 - _BETA2**self._t) + _ADAM_EPS
        self.xi = self.xi - (self.lr / (1.0 - _BETA1**self._t)) * self._m / denom

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        ell_r, ell_f = float(losses.r), -float(losses.f)
        if not ell_f > 0.0:
            raise ValueError(f"{compatibility_problem(type(self), 'ga')} (got -L_F = {ell_f})")
        if not ell_r > 0.0:
            raise ValueError(f"famo needs a positive retain loss L_R, got {ell_r}")
        log_now = np.log(np.maximum([ell_r, ell_f], self.min_loss))
        if self._prev_log is not None:
            self._step_logits(self._prev_log - log_now)
        self._prev_log = log_now
        zl = _softmax(self.xi) * np.exp(-log_now)  # z_i/ℓ_i
        c = zl / zl.sum()
        return float(c[0]), float(c[1])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()
