"""Combiners: two-task rules as (Gram, losses, state) → (w_R, w_F). One file each."""

from pareto.core.combiners._base import COMBINERS, Combiner, compatibility_problem, register_combiner, static

# Importing a module registers its combiner.
from pareto.core.combiners import aligned, cagrad, famo, ga, gd, gdiff, gradvac, imtlg, lossnorm, mgda, nash, ngdiff, pcgrad, rlw  # noqa: F401,E402,E501

__all__ = ["COMBINERS", "Combiner", "compatibility_problem", "register_combiner", "static", "build_combiner"]


def build_combiner(name: str, seed: int = 0, **params) -> Combiner:
    combiner = COMBINERS.build(name, **params)
    combiner.reset(seed)
    return combiner
