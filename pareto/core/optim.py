"""Optimizers the core steps with, and the step each would take, computed without taking it.

AutoLR (paper Sec. 3.3, App. B) probes the loss along the optimizer's real update, so for Adam
the preconditioned step. `step_direction` returns u with θ_new = θ − lr·u for one parameter,
from the optimizer's current state, *without* touching that state (a probe that calls
`optimizer.step()` would advance Adam's moments). Tests check u against a real step.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from pareto._registry import Registry

OPTIMIZERS: Registry[Callable] = Registry("optimizer")


@OPTIMIZERS.register("sgd")
def _sgd(params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


@OPTIMIZERS.register("adam")
def _adam(params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def build_optimizer(name: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
    factory = OPTIMIZERS.get(name)
    try:
        return factory(params, lr=lr, **kwargs)
    except TypeError as exc:
        raise ValueError(f"optimizer {name!r}: {exc}") from None


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


@torch.no_grad()
def step_direction(opt: torch.optim.Optimizer, p: torch.Tensor, local=_same) -> torch.Tensor:
    """u such that opt.step() would set p ← p − lr·u (for p.grad as it is now). `local` maps a
    parameter, its gradient and its state to what this rank holds (FSDP: the DTensor's shard);
    u is returned in that form."""
    group = next(g for g in opt.param_groups if any(q is p for q in g["params"]))
    state = {k: (local(v) if isinstance(v, torch.Tensor) and k != "step" else v)
             for k, v in opt.state.get(p, {}).items()}
    p, g = local(p), local(p.grad)
    wd = group.get("weight_decay", 0.0)
    if isinstance(opt, torch.optim.SGD):
        g = g + wd * p if wd else g
        mu = group["momentum"]
        if mu == 0:
            return g if wd else g.clone()
        buf = state.get("momentum_buffer")
        buf = g.clone() if buf is None else buf * mu + (1 - group["dampening"]) * g
        return g + mu * buf if group["nesterov"] else buf
    if isinstance(opt, torch.optim.Adam | torch.optim.AdamW):
        if group.get("amsgrad") or group.get("maximize"):
            raise NotImplementedError("AutoLR probing supports Adam/AdamW without amsgrad/maximize")
        beta1, beta2 = group["betas"]
        decoupled = isinstance(opt, torch.optim.AdamW) or group.get("decoupled_weight_decay", False)
        if wd and not decoupled:
            g = g + wd * p
        t = float(state["step"]) + 1 if "step" in state else 1.0
        m = state["exp_avg"] * beta1 + (1 - beta1) * g if state else (1 - beta1) * g
        v = state["exp_avg_sq"] * beta2 + (1 - beta2) * g * g if state else (1 - beta2) * g * g
        bc1, bc2 = 1 - beta1**t, 1 - beta2**t
        u = (m / bc1) / (v.sqrt() / math.sqrt(bc2) + group["eps"])
        return u + wd * p if (wd and decoupled) else u
    raise NotImplementedError(f"no step_direction for {type(opt).__name__}")


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr
