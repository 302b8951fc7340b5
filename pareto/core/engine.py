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
  accumulated gradient and loss equal the full batch's, whatever the split. A loss without a
  normaliser is refused for micro-batches and workers (weighting by examples would not be exact).
- Several workers (`parallel`, pareto/core/parallel.py: DDP or FSDP2): each rank runs its slice
  of the global batch; the normaliser is summed over all ranks, so the ranks' weighted gradients
  sum to the single-process one; under FSDP the buffers hold each rank's local shard only and
  the Gram matrix's three dots are summed over ranks in float64.

Modes: the training forwards and backwards run in the model's train mode (as fine-tuning does);
AutoLR's probe losses and the after-step losses are measurements, taken in eval mode. When
the model has active dropout, AutoLR's L₀ is measured again in eval mode, so its parabola is
fitted to one deterministic function (models without dropout skip that forward: the training
forward's loss is the same number).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from pareto.core.combiners import Combiner, compatibility_problem
from pareto.core.gram import Gram, Losses
from pareto.core.lr import LRRule
from pareto.core.objectives import ForgetObjective
from pareto.core.optim import set_lr, step_direction
from pareto.core.parallel import SINGLE

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


def normaliser_of(fn) -> Callable[[dict], float] | None:
    """What `fn`'s mean loss divides by, for exact accumulation: `fn.normaliser`, or that of the
    object a bound method belongs to (a task's loss, a forget objective); None if it declares none."""
    return getattr(fn, "normaliser", None) or getattr(getattr(fn, "__self__", None), "normaliser", None)


def _shares(fn, batches: list[dict], par=SINGLE) -> list[float]:
    """Each micro-batch's weight: its normaliser over the global batch's (summed over every
    micro-batch of every rank). One batch in one process: weight 1, nothing counted."""
    if len(batches) == 1 and par.world == 1:
        return [1.0]
    norm = normaliser_of(fn)
    if norm is None:
        name = getattr(fn, "__qualname__", type(fn).__name__)
        raise ValueError(f"loss {name} declares no normaliser (what its mean divides by: scored tokens, "
                         "examples), so micro-batches or workers cannot be weighted exactly; give it a "
                         "`normaliser(batch)` attribute or use unlearn.grad_accum 1 and one worker")
    sizes = [float(norm(b)) for b in batches]
    total = par.all_sum([sum(sizes)])[0] or 1.0
    return [s / total for s in sizes]


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
    """LineProbe over this step's retain batch, in eval mode; restores θ exactly from a saved copy."""

    engine: "UnlearnEngine"
    batch: list[dict]
    loss0: float

    @torch.no_grad()
    def __call__(self, eta: float) -> tuple[float, float]:
        e = self.engine
        if e.has_dropout:  # L₀ of the same deterministic (eval-mode) function as L₋ and L₊
            self.loss0 = e.loss_value(e.retain_loss, self.batch)
        params = e.local_params()
        # g_R is no longer needed once d is formed: its buffer holds θ while probing.
        for p, s in zip(params, e._views_r):
            s.copy_(p)
        for p, local in zip(e.params, params):  # θ − η·u (u from the optimizer's untouched state)
            local.add_(step_direction(e.optimizer, p, local=e.parallel.local), alpha=-eta)
        minus = e.loss_value(e.retain_loss, self.batch)
        for p, s in zip(params, e._views_r):  # θ + η·u = 2θ − (θ − η·u), up to one rounding
            p.neg_().add_(s, alpha=2.0)
        plus = e.loss_value(e.retain_loss, self.batch)
        for p, s in zip(params, e._views_r):  # θ restored exactly from the saved copy
            p.copy_(s)
        return minus, plus


class UnlearnEngine:
    """Steps a model along the combiner's d. `retain_loss(model, batch)` is L_R, the mean loss of a
    retain batch; there is no default (the core knows no task): the caller passes its task's loss,
    e.g. `pareto.lm.LM_TASK.loss` or `pareto.vision.task.CLASSIFIER_TASK.loss` (the task's bound
    `loss` carries its normaliser, so micro-batches accumulate exactly), and sets
    `objective.task` to the same task."""

    def __init__(self, model, combiner: Combiner, objective: ForgetObjective, lr_rule: LRRule,
                 optimizer: torch.optim.Optimizer, *, lr: float,
                 retain_loss: Callable, autocast: torch.dtype | None = None,
                 grad_dtype: torch.dtype | None = None, parallel=SINGLE) -> None:
        problem = compatibility_problem(combiner, objective)
        if problem:
            raise ValueError(problem)
        self.model, self.combiner, self.objective, self.lr_rule = model, combiner, objective, lr_rule
        self.optimizer, self.lr, self.retain_loss = optimizer, float(lr), retain_loss
        self.parallel = parallel
        self.params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
        local = self.local_params()
        _check_uniform(local)
        n = sum(p.numel() for p in local)
        ref = local[0]
        self.autocast = autocast
        self.has_dropout = has_dropout(model)
        dtype = grad_dtype or ref.dtype
        self._flat_r = torch.zeros(n, dtype=dtype, device=ref.device)  # g_R (and θ while probing)
        self._flat_g = torch.zeros(n, dtype=dtype, device=ref.device)  # g_F, then d
        self._views_r = self._views(self._flat_r)
        self._views_g = self._views(self._flat_g)
        # autograd writes .grad in the parameters' dtype: with wider buffers, into this scratch one
        self._flat_s = torch.zeros(n, dtype=ref.dtype, device=ref.device) if dtype != ref.dtype else None
        self._views_s = self._views(self._flat_s) if self._flat_s is not None else None
        self.step_index = 0
        #: of the parameter entries the first step's d moves (d ≠ 0), the fraction whose value changed
        self.first_step_changed_frac = math.nan

    @torch.no_grad()
    def local_params(self) -> list[torch.Tensor]:
        """The parameters as this rank holds them (its shard under FSDP), aliasing their storage."""
        return [self.parallel.local(p) for p in self.params]

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        views, offset = [], 0
        for p in self.local_params():
            views.append(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return views

    def _grads_into(self, views: list[torch.Tensor]) -> None:
        for p, v in zip(self.params, views):
            p.grad = self.parallel.grad_for(p, v)

    def gradient_buffer_bytes(self) -> int:
        """The memory the engine adds to plain training: the g_R buffer (and, with wider
        gradient buffers than the parameters, the difference of the other two). Per rank."""
        extra = self._flat_r.numel() * self._flat_r.element_size()
        if self._flat_s is not None:
            extra += self._flat_g.numel() * (self._flat_g.element_size() - self._flat_s.element_size())
            extra += self._flat_s.numel() * self._flat_s.element_size()
        return extra

    def line_probe(self, retain_batch: dict | Sequence[dict], loss0: float) -> _Probe:
        """The AutoLR line probe of this step: called with η, it returns (L_R(θ − η·u), L_R(θ + η·u))
        on `retain_batch` in eval mode, u the optimizer's next step direction, and restores θ exactly.
        It keeps θ in the g_R buffer while probing: use it once d is formed, or between steps."""
        return _Probe(self, as_micro_batches(retain_batch), float(loss0))

    def amp(self):
        """The trial's autocast (or nothing): every forward of the engine, the probe and NPO's
        reference runs under it, so they compute the same function."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self._flat_r.device.type, dtype=self.autocast)

    def _backward(self, fn: Callable, batches: list[dict], flat: torch.Tensor, views: list[torch.Tensor]) -> float:
        """∇ of fn's global-batch mean into `flat` (micro-batches and ranks weighted by their share
        of the normaliser, then summed over ranks); the value."""
        flat.zero_()
        weights = _shares(fn, batches, self.parallel)
        self._grads_into(views if self._flat_s is None else self._views_s)
        value = 0.0
        for b, w in zip(batches, weights):
            with self.amp():
                loss = fn(self.model, b)
            (loss * w).backward()  # one batch in one process: w is exactly 1
            value += loss.item() * w
            if self._flat_s is not None:  # accumulate in the wider buffer
                flat.add_(self._flat_s)
                self._flat_s.zero_()
        self.parallel.reduce(flat)  # DDP: the sum over ranks (FSDP reduce-scattered in backward)
        return self.parallel.all_sum([value])[0]

    @torch.no_grad()
    def loss_value(self, fn: Callable, batch: dict | Sequence[dict]) -> float:
        """fn's global-batch mean (micro-batches and ranks weighted by their normaliser), without
        gradients, in eval mode."""
        batches = as_micro_batches(batch)
        weights = _shares(fn, batches, self.parallel)
        was_training = self.model.training
        self.model.eval()
        try:
            value = 0.0
            for b, w in zip(batches, weights):
                with self.amp():
                    value += fn(self.model, b).item() * w
        finally:
            self.model.train(was_training)
        return self.parallel.all_sum([value])[0]

    def step(self, retain_batch: dict | Sequence[dict], forget_batch: dict | Sequence[dict],
             measure_after: bool = True) -> dict:
        """One update; each batch is a dict or a list of micro-batches (accumulated exactly); with
        several workers, this rank's slice of the global batch."""
        t0 = time.perf_counter()
        step = self.step_index
        self.model.train()
        retain_batch, forget_batch = as_micro_batches(retain_batch), as_micro_batches(forget_batch)
        # 1. L_R and g_R into the retained buffer.
        loss_r = self._backward(self.retain_loss, retain_batch, self._flat_r, self._views_r)
        # 2. L_F (the forget objective, maximised) and g_F into the gradient buffer.
        loss_f = self._backward(self.objective.value, forget_batch, self._flat_g, self._views_g)
        losses = Losses(loss_r, loss_f)
        # 3. The Gram matrix: three dot products (fp32 sums, half precision in fp32 chunks), as
        #    float64; under FSDP each rank's shard's, summed over ranks (one all-reduce of 3 numbers).
        r, g = self._flat_r, self._flat_g
        entries = gram_entries(r, g)
        gram = Gram(*(self.parallel.all_sum(entries) if self.parallel.sharded else entries))
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
        self.lr, fit = self.lr_rule.next_lr(step, self.lr, self.line_probe(retain_batch, losses.r))
        set_lr(self.optimizer, self.lr)
        if step == 0:
            self._step_counting_changes()
        else:
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

    @torch.no_grad()
    def _step_counting_changes(self) -> None:
        """The optimizer's step, recording which parameters it actually changed: of the entries
        whose d is non-zero, the fraction whose stored value differs afterwards. In pure bf16 a
        small update is rounded away (docs/core.md, Precision). θ is kept in the g_R buffer,
        free once d is formed, so this costs no memory; it runs at step 0 only."""
        params = self.local_params()
        for p, s in zip(params, self._views_r):
            s.copy_(p)
        self.optimizer.step()
        params = self.local_params()
        changed = moved = 0
        for p, s, d in zip(params, self._views_r, self._views_g):
            nz = d != 0
            moved += int(nz.sum())
            changed += int((nz & (p != s.to(p.dtype))).sum())
        changed, moved = self.parallel.all_sum([changed, moved])
        self.first_step_changed_frac = changed / moved if moved else math.nan


def has_dropout(model) -> bool:
    """Whether train mode makes the model's forward random: a dropout module with p > 0, or a
    transformers config with a dropout rate > 0 (attention dropout is applied functionally)."""
    if any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        return True
    for m in model.modules():
        config = getattr(m, "config", None)
        for key, value in (vars(config).items() if config is not None and hasattr(config, "__dict__") else ()):
            if ("dropout" in key or "pdrop" in key) and isinstance(value, (int, float)) and value > 0:
                return True
    return False


def _check_uniform(params: list[torch.Tensor]) -> None:
    """One flat buffer holds every trained parameter's gradient: they must share dtype and device."""
    kinds = {(p.dtype, p.device) for p in params}
    if len(kinds) > 1:
        shown = ", ".join(sorted(f"{str(d).replace('torch.', '')} on {dev}" for d, dev in kinds))
        raise ValueError(f"the trained parameters mix dtypes or devices ({shown}); the engine keeps their "
                         "gradients in one flat buffer. Move the model to one device and dtype first "
                         "(model.to(device, dtype)), or freeze the parameters that differ (requires_grad=False)")
