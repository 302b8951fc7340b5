"""Aligned-MTL (Senushkin et al., CVPR 2023; LibMTL `Aligned_MTL`), two tasks.

M = GGᵀ is the 2×2 Gram matrix of the tasks t1 = g_R, t2 = −g_F (M = [[‖g_R‖², −g_R·g_F],
[−g_R·g_F, ‖g_F‖²]]). With M = V diag(λ) Vᵀ, keep the eigenvalues λ > tol = max(λ)·2·eps and
    B = √λ_min · V diag(1/√λ) Vᵀ (over the kept ones),   α = B·1,   d = α1·t1 + α2·t2,
so (w_R, w_F) = (α1, α2). Equivalently d = σ_min · (row sum of the polar factor of G), with σ
the singular values of G: the task gradients are made orthogonal and of equal length σ_min.
It is close to, not exactly, NGDiff's direction (exactly NGDiff's when ‖g_R‖ = ‖g_F‖).

eps is float32's machine epsilon (2⁻²³), as in the reference, whose `torch.finfo().eps` is
that of torch's default dtype. Float64's epsilon would sit at the rounding level of a Gram
matrix of exactly parallel gradients, so whether they count as rank 1 (a full step along
them) or rank 2 (an almost-zero step) would be decided by rounding.

Zero rule: a zero task has a zero row/column in M; its eigenvalue is dropped and the step
is the other task, d = t_other (α = 1 for it, 0 for the zero one). All zero → (0, 0).
"""

from dataclasses import dataclass

import numpy as np

from pareto.core.combiners._base import Combiner, register_combiner
from pareto.core.gram import Gram, Losses

EPS = float(np.finfo(np.float32).eps)


@register_combiner("aligned")
@dataclass
class AlignedMTL(Combiner):
    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        m = np.array([[gram.rr, -gram.rf], [-gram.rf, gram.ff]], dtype=np.float64)
        lam, v = np.linalg.eigh(m)
        lam_max = float(lam.max())
        if not lam_max > 0.0:
            return 0.0, 0.0
        keep = lam > lam_max * 2 * EPS
        lam, v = lam[keep], v[:, keep]
        b = np.sqrt(lam.min()) * (v / np.sqrt(lam)) @ v.T
        alpha = b.sum(axis=0)
        return float(alpha[0]), float(alpha[1])
