"""What every combiner is: (Gram matrix, losses, own state) → (w_R, w_F).

The update direction is d = w_R·g_R − w_F·g_F (paper Eq. 3); the step loop never looks at a
combiner's name. A combiner is a dataclass of its hyper-parameters; `reset(seed)` sets up any
state (RNG, EMA) and `weights` may update it. Weights are float64 Python scalars.
"""

from __future__ import annotations

from pareto._registry import Registry
from pareto.core.gram import Gram, Losses


class Combiner:
    #: True for loss-based rules (log-loss weighting) that need the forget task as a positive
    #: loss to minimise, i.e. L_F < 0 (npo, simnpo); GA's −CE is refused with a clear message.
    needs_positive_forget_loss: bool = False

    def reset(self, seed: int) -> None:
        """Initialise the combiner's own state; called once before the first step."""

    def weights(self, gram: Gram, losses: Losses) -> tuple[float, float]:
        raise NotImplementedError


COMBINERS: Registry[type[Combiner]] = Registry("combiner")
register_combiner = COMBINERS.register


def compatibility_problem(combiner, objective) -> str | None:
    """Why `combiner` cannot run with forget `objective`, or None when it can.

    Each is a registered name, a class or an instance. A loss-based combiner
    (`needs_positive_forget_loss`) needs −L_F > 0 (npo, simnpo); 'ga' gives −L_F < 0. The one
    message the engine, the spec check and famo's own guard all give.
    """
    comb = COMBINERS.get(combiner) if isinstance(combiner, str) else combiner
    if isinstance(objective, str):
        from pareto.core.objectives import OBJECTIVES  # lazy: objectives need not load with combiners

        obj = OBJECTIVES.get(objective)
    else:
        obj = objective
    if not comb.needs_positive_forget_loss or obj.positive_loss:
        return None
    cname = getattr(comb, "registered_name", getattr(comb, "__name__", type(comb).__name__))
    oname = getattr(obj, "registered_name", getattr(obj, "__name__", type(obj).__name__))
    return (f"{cname} weights tasks by log-loss and needs the forget task as a positive loss to minimise; "
            f"the {oname!r} objective's forget loss -L_F is negative. Use a forget objective with a positive "
            f"loss: {', '.join(_positive_objectives())}.")


def _positive_objectives() -> list[str]:
    """The registered forget objectives whose −L_F is a positive loss (npo, simnpo, …)."""
    from pareto.core.objectives import OBJECTIVES

    return [n for n in OBJECTIVES.names() if OBJECTIVES.get(n).positive_loss]


def require_choice(key: str, value, choices) -> None:
    """A parameter that names one of `choices` (ValueError naming them otherwise)."""
    if value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def require_unit(key: str, value: float) -> None:
    """A parameter in [0, 1] (ValueError otherwise)."""
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{key} must lie in [0, 1], got {value}")


def static(c: float) -> tuple[float, float]:
    """Weights of the static scalarisation c·g_R − (1−c)·g_F (paper Eq. 2)."""
    return float(c), 1.0 - float(c)
