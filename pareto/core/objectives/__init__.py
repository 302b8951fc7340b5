"""Forget objectives, registered by name: ga, npo, simnpo."""

from pareto.core.objectives._base import OBJECTIVES, ForgetObjective, register_objective
from pareto.core.objectives import ga, npo, simnpo  # noqa: F401,E402

__all__ = ["OBJECTIVES", "ForgetObjective", "register_objective"]
