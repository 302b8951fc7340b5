"""Combiners: two-task rules as (Gram, losses, state) → (w_R, w_F). One file each."""

from pareto.core.combiners._base import COMBINERS, Combiner, compatibility_problem, register_combiner, static

# Importing a module registers its combiner: every module of this package, in name order (a new
# rule is one new file; nothing to add here).
import importlib as _importlib  # noqa: E402
import pkgutil as _pkgutil  # noqa: E402

for _m in sorted(m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    _importlib.import_module(f"{__name__}.{_m}")

__all__ = ["COMBINERS", "Combiner", "compatibility_problem", "register_combiner", "static", "build_combiner"]


def build_combiner(name: str, seed: int = 0, **params) -> Combiner:
    combiner = COMBINERS.build(name, **params)
    combiner.reset(seed)
    return combiner
