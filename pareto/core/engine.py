"""One unlearning step for any model and any pair of losses (paper Eq. 3).

    1. forward + backward on a retain batch  → L_R, g_R   (kept in one flat buffer)
    2. forward + backward on a forget batch  → L_F, g_F   (the parameters' .grad)
    3. the Gram matrix of (g_R, g_F): ‖g_R‖², g_R·g_F, ‖g_F‖²   (three dot products)
    4. the combiner maps (Gram, losses, its state) → (w_R, w_F);  d = w_R·g_R − w_F·g_F
    5. the lr rule picks η (AutoLR probes along the optimizer's real step), the optimizer steps.

Memory: the parameters' gradients live in one flat buffer and g_R in a second one of the same
size — exactly one gradient buffer more than plain training, and never a model copy. The two
buffers are swapped in and out of `.grad` as views, so autograd accumulates into them in place.

Precision and size (for real models on GPUs):
- `autocast=torch.bfloat16` runs the forward passes under `torch.autocast` (fp32 master weights,
  bf16 matmuls); pure bf16 is a model whose parameters are bf16 (`unlearn.dtype`).
- `grad_dtype=torch.float32` with bf16 parameters keeps g_R and g_F (then d) in fp32 buffers:
  autograd writes into a third, parameter-dtype scratch buffer that is added into them after
  each backward, so accumulation, the Gram matrix and d are formed in fp32. Memory: 2 × 4 bytes
  + 1 × 2 bytes per parameter instead of 2 × 2.
- A batch given as a list of micro-batches is accumulated: each micro-batch's mean loss is
  weighted by its share of the loss's normaliser (`normaliser(batch)`: the scored tokens for a
  token-mean loss such as answer CE, the examples for a per-example mean such as NPO), so the
  accumulated gradient and loss equal the full batch's, whatever the split.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

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


def examples(batch: dict) -> int:
    """The default normaliser: the batch's number of examples."""
    return int(next(iter(v for v in batch.values() if isinstance(v, torch.Tensor))).shape[0])


def normaliser_of(fn) -> Callable[[dict], float]:
    """What `fn`'s mean loss divides by, for exact accumulation: `fn.normaliser`, that of the
    object a bound method belongs to (a forget objective), else the number of examples."""
    return (getattr(fn, "normaliser", None) or getattr(getattr(fn, "__self__", None), "normaliser", None)
            or examples)


def _shares(fn, batches: list[dict]) -> tuple[list[float], float]:
    """Each micro-batch's normaliser and their sum (a single batch: weight 1, nothing counted)."""
    if len(batches) == 1:
        return [1.0], 1.0
    norm = normaliser_of(fn)
    sizes = [float(norm(b)) for b in batches]
    return sizes, (sum(sizes) or 1.0)


def as_micro_batches(batch: dict | Sequence[dict]) -> list[dict]:
    return [batch] if isinstance(batch, dict) else list(batch)


def split_batch(batch: dict, micro: int) -> list[dict]:
    """`batch` cut into `micro` micro-batches along the first dimension (as even as possible)."""
    n = examples(batch)
    micro = max(1, min(int(micro), n))
    bounds = [round(i * n / micro) for i in range(micro + 1)]
    return [{k: (v[a:b] if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == n else v)
             for k, v in batch.items()} for a, b in zip(bounds, bounds[1:])]


class Divergence(RuntimeError):
    """A loss or gradient became NaN or infinite; the trial stops at this step."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"step {step}: {what} is not finite")
        self.step, self.what = step, what


@dataclass
class _Probe:
    """LineProbe over this step's retain batch; restores θ exactly from a saved copy."""

    engine: "UnlearnEngine"
    batch: list[dict]
    loss0: float

    @torch.no_grad()
    def __call__(self, eta: float) -> tuple[float, float]:
        e = self.engine
        # g_R is no longer needed once d is formed: its buffer holds θ while probing.
        for p, s in zip(e.params, e._views_r):
            s.copy_(p)
        for p in e.params:  # θ − η·u (u computed once, from the optimizer's untouched state)
            p.add_(step_direction(e.optimizer, p), alpha=-eta)
        minus = e.loss_value(e.retain_loss, self.batch)
        for p, s in zip(e.params, e._views_r):  # θ + η·u = 2θ − (θ − η·u), up to one rounding
            p.neg_().add_(s, alpha=2.0)
        plus = e.loss_value(e.retain_loss, self.batch)
        for p, s in zip(e.params, e._views_r):  # θ restored exactly from the saved copy
            p.copy_(s)
        return minus, plus


class UnlearnEngine:
    def __init__(self, model, combiner: Combiner, objective: ForgetObjective, lr_rule: LRRule,
                 optimizer: torch.optim.Optimizer, *, lr: float,
                 retain_loss: Callable = answer_ce, autocast: torch.dtype | None = None,
                 grad_dtype: torch.dtype | None = None) -> None:
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
        self.autocast = autocast
        dtype = grad_dtype or ref.dtype
        self._flat_r = torch.zeros(n, dtype=dtype, device=ref.device)  # g_R (and θ while probing)
        self._flat_g = torch.zeros(n, dtype=dtype, device=ref.device)  # g_F, then d
        self._views_r = self._views(self._flat_r)
        self._views_g = self._views(self._flat_g)
        # autograd writes .grad in the parameters' dtype: with wider buffers, into this scratch one
        self._flat_s = torch.zeros(n, dtype=ref.dtype, device=ref.device) if dtype != ref.dtype else None
        self._views_s = self._views(self._flat_s) if self._flat_s is not None else None
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
        """The memory the engine adds to plain training: the g_R buffer (and, with wider
        gradient buffers than the parameters, the difference of the other two)."""
        extra = self._flat_r.numel() * self._flat_r.element_size()
        if self._flat_s is not None:
            extra += self._flat_g.numel() * (self._flat_g.element_size() - self._flat_s.element_size())
            extra += self._flat_s.numel() * self._flat_s.element_size()
        return extra

    def _amp(self):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.params[0].device.type, dtype=self.autocast)

    def _backward(self, fn: Callable, batches: list[dict], flat: torch.Tensor, views: list[torch.Tensor]) -> float:
        """∇ of fn's full-batch mean into `flat` (micro-batches weighted by their normaliser); the value."""
        flat.zero_()
        sizes, total = _shares(fn, batches)
        self._grads_into(views if self._flat_s is None else self._views_s)
        value = 0.0
        for b, size in zip(batches, sizes):
            with self._amp():
                loss = fn(self.model, b)
            (loss * (size / total)).backward()  # one batch: size / total is exactly 1
            value += loss.item() * size / total
            if self._flat_s is not None:  # accumulate in the wider buffer
                flat.add_(self._flat_s)
                self._flat_s.zero_()
        return value

    @torch.no_grad()
    def loss_value(self, fn: Callable, batch: dict | Sequence[dict]) -> float:
        """fn's full-batch mean (micro-batches weighted by their normaliser), without gradients."""
        batches = as_micro_batches(batch)
        sizes, total = _shares(fn, batches)
        value = 0.0
        for b, size in zip(batches, sizes):
            with self._amp():
                value += fn(self.model, b).item() * size / total
        return value

    def step(self, retain_batch: dict | Sequence[dict], forget_batch: dict | Sequence[dict],
             measure_after: bool = True) -> dict:
        """One update; each batch is a dict or a list of micro-batches (accumulated exactly)."""
        t0 = time.perf_counter()
        step = self.step_index
        self.model.train()
        retain_batch, forget_batch = as_micro_batches(retain_batch), as_micro_batches(forget_batch)
        # 1. L_R and g_R into the retained buffer.
        loss_r = self._backward(self.retain_loss, retain_batch, self._flat_r, self._views_r)
        # 2. L_F (the forget objective, maximised) and g_F into the gradient buffer.
        loss_f = self._backward(self.objective.value, forget_batch, self._flat_g, self._views_g)
        losses = Losses(loss_r, loss_f)
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
        if self._flat_s is not None:  # the optimizer reads d from .grad, in the parameters' dtype
            self._flat_s.copy_(g)
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
            row["loss_r_after"] = self.loss_value(self.retain_loss, retain_batch)
            row["loss_f_after"] = self.loss_value(self.objective.value, forget_batch)
        row["step_time_s"] = time.perf_counter() - t0
        self.step_index += 1
        return row
