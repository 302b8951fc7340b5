"""Forget objectives, registered by name: one module each (ga, npo, simnpo, …)."""

import importlib as _importlib
import pkgutil as _pkgutil

from pareto.core.objectives._base import OBJECTIVES, ForgetObjective, register_objective

# Importing a module registers its objective: every module of this package, in name order (a new
# objective is one new file; nothing to add here).
for _m in sorted(m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    _importlib.import_module(f"{__name__}.{_m}")

__all__ = ["OBJECTIVES", "ForgetObjective", "register_objective"]
