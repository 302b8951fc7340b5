"""The unlearning trial, top to bottom: model → data → components → step loop → evaluation.

`run_trial` is a plain function that calls `report(row)` once per step and once at the end; it
knows nothing of Ray, so `pareto run`-style loops and tests call it directly. `trainable` is the
Ray Tune function trainable around it (`tune.report`).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pareto.core.combiners import build_combiner
from pareto.core.engine import Divergence, UnlearnEngine
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.data.qa import Batches, encode_qa, to_device
from pareto.metrics import EvalContext, EvalSettings, evaluate
from pareto.models.embedded import load_target


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_trial(setup: dict, point: dict, report: Callable[[dict], None]) -> dict:
    """Run one trial of a sweep. `setup`: the sweep-wide settings; `point`: this trial's grid point."""
    t0 = time.perf_counter()
    unlearn, ev = setup["spec"]["unlearn"], setup["spec"]["eval"]
    seed = int(point["seed"])

    # 1. Determinism: threads and seeds.
    torch.set_num_threads(int(unlearn["threads"]))
    torch.manual_seed(seed), random.seed(seed), np.random.seed(seed)

    # 2. The target model (shared, read-only, cached by content hash) and its data.
    device = unlearn["device"] if unlearn["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer, _ = load_target(setup["target_dir"])
    model.to(device=device, dtype=getattr(torch, unlearn["dtype"]))
    forget_rows = read_jsonl(Path(setup["target_dir"]) / "forget.jsonl")
    retain_rows = read_jsonl(Path(setup["target_dir"]) / "retain.jsonl")
    eval_retain = retain_rows[:: max(1, len(retain_rows) // ev["retain_items"])][: ev["retain_items"]]

    final = {"kind": "final", "status": "ok", "steps_done": 0, "device": device, "dtype": unlearn["dtype"]}
    if not point.get("baseline"):
        # 3. Batches: forget and retain streams, each seeded.
        encode = lambda rows: [encode_qa(tokenizer, r["question"], r["answer"]) for r in rows]  # noqa: E731
        forget = Batches(encode(forget_rows), unlearn["batch_size"], tokenizer.pad_token_id, seed)
        retain = Batches(encode(retain_rows), unlearn["retain_batch_size"] or unlearn["batch_size"],
                         tokenizer.pad_token_id, seed + 1)

        # 4. The components, by registered name.
        combiner = build_combiner(point["combiner"]["name"], seed=seed, **point["combiner"]["params"])
        objective = OBJECTIVES.build(point["objective"]["name"], **point["objective"]["params"])
        lr_rule = LR_RULES.build(point["lr_rule"]["name"], **point["lr_rule"]["params"])
        optimizer = build_optimizer(unlearn["optimizer"], [p for p in model.parameters() if p.requires_grad],
                                    lr=point["lr"], **unlearn["optimizer_args"])
        objective.prepare(model, [to_device(b, device) for b in forget.all()])  # NPO: reference log-probs, once, before unlearning
        engine = UnlearnEngine(model, combiner, objective, lr_rule, optimizer, lr=point["lr"])
        final["grad_buffer_bytes"] = engine.gradient_buffer_bytes()

        # 5. The step loop: one telemetry row per step.
        every = unlearn["measure_after_every"]
        try:
            for step in range(unlearn["steps"]):
                row = engine.step(to_device(retain.next(), device), to_device(forget.next(), device),
                                  measure_after=bool(every) and step % every == 0)
                report({"kind": "step", **row})
                final["steps_done"] = step + 1
        except Divergence as exc:
            final.update(status="diverged", diverged_step=exc.step, error=str(exc))
        final["final_lr"] = engine.lr

    # 6. Evaluation of the unlearned model (a diverged trial has none: analysis lists it as excluded).
    if final["status"] == "ok":
        splits = {"forget": forget_rows, "retain": eval_retain, **setup.get("eval_splits", {})}
        ctx = EvalContext(model, tokenizer, splits, EvalSettings(max_new_tokens=ev["max_new_tokens"],
                                                                 batch_size=ev["batch_size"]),
                          reference=setup.get("reference", {}))
        values = evaluate(ctx, ev["metrics"])
        final.update({name: v.value for name, v in values.items()})
        final["metric_settings"] = json.dumps({name: v.settings for name, v in values.items()}, sort_keys=True)
        final["items"] = [{"metric": name, "eval_step": final["steps_done"], **asdict(item)}
                          for name, v in values.items() for item in v.items]
    final["wall_s"] = time.perf_counter() - t0
    report(final)
    return final


def trainable(config: dict, setup: dict) -> None:
    """Ray Tune function trainable: `tune.with_parameters(trainable, setup=...)`."""
    from ray import tune

    run_trial(setup, config["point"], tune.report)
