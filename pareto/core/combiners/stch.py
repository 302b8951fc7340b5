"""STCH: smooth Tchebycheff scalarisation, two tasks (Lin et al., ICML 2024; Xi-L/STCH).

Task losses ℓ_R = L_R and ℓ_F = −L_F (both minimised), ideal point z, preference λ = (1, 1):
    g_μ = μ·log Σ_i exp(λ_i(ℓ_i − z_i)/μ)        (Lin et al.'s smooth Tchebycheff function, as the
                                                   official `run_stch_psl.py` computes it)
    ∇g_μ = Σ_i p_i ∇ℓ_i,   p = softmax((ℓ − z)/μ)  (z held fixed),
and ∇ℓ_R = g_R, ∇ℓ_F = −g_F, so (w_R, w_F) = (p_R, p_F): the weights sum to 1 and the task further
above its ideal value gets more weight; μ → 0 is the Tchebycheff max, μ → ∞ gives (½, ½).

Ideal point: z_i is the lowest ℓ_i seen so far, this step's included (state, cleared by reset), so
ℓ_i − z_i ≥ 0 and the first step gives (½, ½). The official MTL code instead averages the losses
over a warm-up epoch and applies the function to log(ℓ_i/ℓ̄_i) (weights p_i·m/ℓ_i), which needs
positive losses; the 'ga' objective's ℓ_F = −L_F is negative, so pareto applies the paper's form
to the raw losses and `mu` is in loss units (no normalisation).

Zero rule: gradients are not used. Not conflict-free: with conflicting gradients and p_F ≈ 1,
g_R·d < 0.
"""

import math
from dataclasses import dataclass

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses


@register_combiner("stch")
@dataclass
class STCH(Combiner):
    mu: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(float(self.mu)) and float(self.mu) > 0.0):
            raise ValueError(f"mu must be a finite number > 0, got {self.mu}")
        self.reset(0)

    def reset(self, seed: int) -> None:
        self.ideal: tuple[float, float] | None = None  # z = (min ℓ_R, min ℓ_F) so far

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        ell_r, ell_f = float(losses.r), -float(losses.f)
        z_r, z_f = (ell_r, ell_f) if self.ideal is None else self.ideal
        self.ideal = z_r, z_f = min(z_r, ell_r), min(z_f, ell_f)
        a, b = (ell_r - z_r) / self.mu, (ell_f - z_f) / self.mu  # ≥ 0
        m = max(a, b)  # softmax without overflow
        e_r, e_f = math.exp(a - m), math.exp(b - m)
        return e_r / (e_r + e_f), e_f / (e_r + e_f)
