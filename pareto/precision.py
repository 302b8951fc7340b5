"""Precision warnings from the spec alone: pure-bf16 parameters with learning rates whose updates
mostly round away (`pareto validate` and `pareto sweep` print them; every trial also measures the
share it kept, `first_step_changed_frac`)."""

from __future__ import annotations

import math
from typing import Sequence

#: Typical size of a transformer weight (initialised N(0, 0.02) and not far from it after finetuning).
TYPICAL_WEIGHT = 0.02
#: Below this learning rate, pure-bf16 training loses a sizeable share of its updates to rounding.
BF16_MIN_LR = TYPICAL_WEIGHT * 2 ** -8  # ≈ 7.8e-5


def precision_warnings(spec, points: Sequence[dict]) -> list[str]:
    """Warnings for a spec whose updates mostly round away: unlearn.dtype bfloat16 (pure bf16
    parameters, no fp32 master weights) with a small learning rate.

    bf16 has an 8-bit significand (7 bits stored): at a weight w with 2^e ≤ |w| < 2^(e+1) its unit
    in the last place is 2^(e-7), and an update smaller than half of it, 2^(e-8) — between |w|·2^-9
    and |w|·2^-8 — is rounded away: w + Δ == w. Adam's first steps move every weight by ≈ lr
    (m̂/√v̂ ≈ ±1), so a weight moves only if |w| < 2^ceil(log2(lr) + 8), about lr·2^8 to lr·2^9.
    With weights of typical size 0.02 (N(0, 0.02)) that is fewer than half of them below
    lr ≈ 2^-15 ≈ 3e-5, and ≈ 16 % at lr 1e-5 (only |w| < 2^-8 ≈ 0.004 move; issue 16 measured
    ~16 %, tests/test_precision.py measures it on a Linear stack). The warning fires below
    lr = 0.02·2^-8 ≈ 7.8e-5 (BF16_MIN_LR), where a sizeable share is lost (≈ 44 % at 5e-5). With
    SGD the step is lr·|d_i|, usually far smaller than lr, so it warns with the same threshold,
    which is lenient there: an SGD run can lose most of its updates at larger rates too.

    This is a rule of thumb on the spec alone (typical weights, Adam-sized steps). Every trial
    records the measured fraction in the results column `first_step_changed_frac`: of the
    parameter entries the first optimizer step meant to change (non-zero update), the share it
    did change. The fix keeps fp32 master weights and runs the matmuls in bf16:
    `unlearn.dtype: float32` with `unlearn.autocast: bfloat16`.

    `points` are the spec's known points (parse_spec's second value); an optuna search's
    learning rates come from its search space (the low end of a distribution). `pareto validate`
    prints these as `warning:` lines, as `pareto sweep` does before it runs.
    """
    u = spec.unlearn
    if u.dtype != "bfloat16":
        return []
    lrs = [p["lr"] for p in points if "lr" in p]
    space_lr = (spec.search.space or {}).get("lr")  # optuna draws as it goes: its space says how low it may go
    if isinstance(space_lr, dict) and len(space_lr) == 1:
        kind, args = next(iter(space_lr.items()))
        lrs += list(args)[:1] if kind in ("uniform", "loguniform") else list(args)
    lrs = [float(lr) for lr in lrs if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0]
    if not lrs or min(lrs) >= BF16_MIN_LR:
        return []
    lr = min(lrs)
    # A weight keeps an update of lr when half its ulp, 2^(floor(log2|w|) - 8), is below lr: when
    # |w| < 2^ceil(log2(lr) + 8). For w ~ N(0, 0.02) that is P(|z| < 2^ceil(log2(lr) + 8) / 0.02).
    below = 2.0 ** math.ceil(math.log2(lr) + 8)
    kept = math.erf(below / TYPICAL_WEIGHT / math.sqrt(2))
    step = "an Adam step moves each weight by ≈ lr" if u.optimizer in ("adam", "adamw") else \
        f"a {u.optimizer} step moves each weight by lr·|d|, less than lr"
    extra = " (grad_dtype float32 does not help: the parameters stay bf16)" if u.grad_dtype == "float32" else ""
    return [f"unlearn.dtype bfloat16 keeps the parameters in bf16 with no fp32 master weights{extra}, and the "
            f"smallest learning rate here is {lr:.3g}: {step}, and an update below half a bf16 unit in the last "
            f"place (|w|·2^-9 … |w|·2^-8) rounds away, so with weights of typical size 0.02 only about "
            f"{kept:.0%} of the entries change on the first step (a rule of thumb for lr < {BF16_MIN_LR:.2g}; each "
            f"trial records the measured share as first_step_changed_frac). Keep fp32 master weights and bf16 "
            f"matmuls instead: --set unlearn.dtype=float32 --set unlearn.autocast=bfloat16"]
