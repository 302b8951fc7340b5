"""One unlearning step for any model and any pair of losses (paper Eq. 3).

    1. forward + backward on a retain batch  → L_R, g_R   (kept in one flat buffer)
    2. forward + backward on a forget batch  → L_F, g_F   (the parameters' .grad)
    3. the Gram matrix of (g_R, g_F): ‖g_R‖², g_R·g_F, ‖g_F‖²   (three dot products)
    4. the combiner maps (Gram, losses, its state) → (w_R, w_F);  d = w_R·g_R − w_F·g_F
    5. the lr rule picks η (AutoLR probes along the optimizer's real step), the optimizer steps.

Memory: the parameters' gradients live in one flat buffer and g_R in a second one of the same
size — exactly one gradient buffer more than plain training, and never a model copy. The two
buffers are swapped in and out of `.grad` as views, so autograd accumulates into them in place.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from pareto.core.combiners import Combiner
from pareto.core.gram import Gram, Losses
from pareto.core.lr import LRRule
from pareto.core.objectives import ForgetObjective
from pareto.core.optim import set_lr, step_direction
from pareto.lm import answer_ce

#: Telemetry columns, one row per step (part of the results schema).
STEP_COLUMNS = (
    "step", "loss_r", "loss_f", "gram_rr", "gram_rf", "gram_ff", "w_r", "w_f", "c_t", "lr",
    "dot_r_upd", "dot_f_upd", "loss_r_after", "loss_f_after",
    "autolr_gd", "autolr_dhd", "autolr_eta", "autolr_accepted", "step_time_s",
)


_CHUNK = 1 << 24


def gram_entries(r: torch.Tensor, g: torch.Tensor) -> list[float]:
    """[r·r, r·g, g·g] as float64 scalars. Half-precision buffers are accumulated in fp32
    chunk by chunk (no full-size fp32 copy), and the chunk sums in float64."""
    if r.dtype in (torch.float32, torch.float64):
        return torch.stack([r @ r, r @ g, g @ g]).double().tolist()
    acc = torch.zeros(3, dtype=torch.float64, device=r.device)
    for i in range(0, r.numel(), _CHUNK):
        a, b = r[i:i + _CHUNK].float(), g[i:i + _CHUNK].float()
        acc += torch.stack([a @ a, a @ b, b @ b]).double()
    return acc.tolist()


class Divergence(RuntimeError):
    """A loss or gradient became NaN or infinite; the trial stops at this step."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"step {step}: {what} is not finite")
        self.step, self.what = step, what


@dataclass
class _Probe:
    """LineProbe over this step's retain batch; restores θ exactly from a saved copy."""

    engine: "UnlearnEngine"
    batch: dict
    loss0: float

    @torch.no_grad()
    def __call__(self, eta: float) -> tuple[float, float]:
        e = self.engine
        # g_R is no longer needed once d is formed: its buffer holds θ while probing.
        for p, s in zip(e.params, e._views_r):
            s.copy_(p)
        for p in e.params:  # θ − η·u (u computed once, from the optimizer's untouched state)
            p.add_(step_direction(e.optimizer, p), alpha=-eta)
        minus = e.retain_loss(e.model, self.batch).item()
        for p, s in zip(e.params, e._views_r):  # θ + η·u = 2θ − (θ − η·u), up to one rounding
            p.neg_().add_(s, alpha=2.0)
        plus = e.retain_loss(e.model, self.batch).item()
        for p, s in zip(e.params, e._views_r):  # θ restored exactly from the saved copy
            p.copy_(s)
        return minus, plus


class UnlearnEngine:
    def __init__(self, model, combiner: Combiner, objective: ForgetObjective, lr_rule: LRRule,
                 optimizer: torch.optim.Optimizer, *, lr: float,
                 retain_loss: Callable = answer_ce) -> None:
        if combiner.needs_positive_forget_loss and not objective.positive_loss:
            name = getattr(combiner, "registered_name", type(combiner).__name__)
            obj = getattr(objective, "registered_name", type(objective).__name__)
            raise ValueError(
                f"combiner {name!r} weights tasks by log-loss and needs the forget task as a "
                f"positive loss to minimise; forget objective {obj!r} gives −L_F < 0. "
                "Use forget objective 'npo' or 'simnpo'."
            )
        self.model, self.combiner, self.objective, self.lr_rule = model, combiner, objective, lr_rule
        self.optimizer, self.lr, self.retain_loss = optimizer, float(lr), retain_loss
        self.params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
        n = sum(p.numel() for p in self.params)
        ref = self.params[0]
        self._flat_r = torch.zeros(n, dtype=ref.dtype, device=ref.device)  # g_R (and θ while probing)
        self._flat_g = torch.zeros(n, dtype=ref.dtype, device=ref.device)  # g_F, then d
        self._views_r = self._views(self._flat_r)
        self._views_g = self._views(self._flat_g)
        self.step_index = 0

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        views, offset = [], 0
        for p in self.params:
            views.append(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return views

    def _grads_into(self, views: list[torch.Tensor]) -> None:
        for p, v in zip(self.params, views):
            p.grad = v

    def gradient_buffer_bytes(self) -> int:
        return self._flat_r.numel() * self._flat_r.element_size()

    def step(self, retain_batch: dict, forget_batch: dict, measure_after: bool = True) -> dict:
        t0 = time.perf_counter()
        step = self.step_index
        self.model.train()
        # 1. L_R and g_R into the retained buffer.
        self._flat_r.zero_()
        self._grads_into(self._views_r)
        loss_r = self.retain_loss(self.model, retain_batch)
        loss_r.backward()
        # 2. L_F (the forget objective, maximised) and g_F into the gradient buffer.
        self._flat_g.zero_()
        self._grads_into(self._views_g)
        loss_f = self.objective.value(self.model, forget_batch)
        loss_f.backward()
        losses = Losses(loss_r.item(), loss_f.item())
        # 3. The Gram matrix: three dot products (fp32 sums, half precision in fp32 chunks), as float64.
        r, g = self._flat_r, self._flat_g
        gram = Gram(*gram_entries(r, g))
        rr, rf, ff = gram.rr, gram.rf, gram.ff
        for name, value in (("loss_r", losses.r), ("loss_f", losses.f), ("gradient Gram matrix", rr + rf + ff)):
            if not math.isfinite(value):
                raise Divergence(step, name)
        # 4. The combiner's weights; d = w_R·g_R − w_F·g_F (paper Eq. 3), formed in place.
        w_r, w_f = self.combiner.weights(gram, losses)
        g.mul_(-w_f).add_(r, alpha=w_r)
        dot_r, dot_f = gram.dots(w_r, w_f)  # g_R·d ≥ 0 ≥ g_F·d is paper Eq. 5
        # 5. The lr rule (AutoLR probes along the optimizer's real step), then the step.
        self.lr, fit = self.lr_rule.next_lr(step, self.lr, _Probe(self, retain_batch, losses.r))
        set_lr(self.optimizer, self.lr)
        self.optimizer.step()
        row = {
            "step": step, "loss_r": losses.r, "loss_f": losses.f,
            "gram_rr": rr, "gram_rf": rf, "gram_ff": ff, "w_r": w_r, "w_f": w_f,
            "c_t": w_r / (w_r + w_f) if (w_r + w_f) != 0 else 0.5,
            "lr": self.lr, "dot_r_upd": dot_r, "dot_f_upd": dot_f,
            "loss_r_after": math.nan, "loss_f_after": math.nan,
            "autolr_gd": fit.gd if fit else math.nan, "autolr_dhd": fit.dhd if fit else math.nan,
            "autolr_eta": fit.eta if fit else math.nan, "autolr_accepted": fit.accepted if fit else None,
        }
        if measure_after:  # Theorem 5: both losses on the same batches after the update
            with torch.no_grad():
                row["loss_r_after"] = self.retain_loss(self.model, retain_batch).item()
                row["loss_f_after"] = self.objective.value(self.model, forget_batch).item()
        row["step_time_s"] = time.perf_counter() - t0
        self.step_index += 1
        return row
