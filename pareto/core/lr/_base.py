"""Learning-rate rules: set η for the step along the optimizer's update.

A rule sees the step index, the current η and a `LineProbe` that measures the retain loss
along the optimizer's real update u (θ_new = θ − η·u) without moving θ or the optimizer's
state. It returns the η to use now and, on the steps where it fitted something, a record
for the telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pareto._registry import Registry


class LineProbe(Protocol):
    loss0: float  # L_R(θ) on this step's retain batch

    def __call__(self, eta: float) -> tuple[float, float]:
        """(L_R(θ − η·u), L_R(θ + η·u)) on this step's retain batch; θ is restored exactly."""


@dataclass(frozen=True)
class Fit:
    gd: float  # Gᵀu estimate
    dhd: float  # uᵀH_R u estimate
    eta: float  # η* = Gᵀu / uᵀH_R u (NaN when not defined)
    accepted: bool


class LRRule:
    def next_lr(self, step: int, lr: float, probe: LineProbe) -> tuple[float, Fit | None]:
        raise NotImplementedError


LR_RULES: Registry[type[LRRule]] = Registry("lr rule")
register_lr_rule = LR_RULES.register
