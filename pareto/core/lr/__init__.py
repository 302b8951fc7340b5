"""Learning-rate rules, registered by name: fixed, autolr."""

from pareto.core.lr._base import LR_RULES, Fit, LineProbe, LRRule, register_lr_rule
from pareto.core.lr import autolr, fixed  # noqa: F401,E402

__all__ = ["LR_RULES", "Fit", "LineProbe", "LRRule", "register_lr_rule"]
