"""`pareto mix`'s part of the results: the α grid, the rows of a mixed point and how they join the
sweep's results (pareto.export loads the kept weights and evaluates θ_α; its docstring has the
definition).

A mixed point is a trial row with combiner "mix" and combiner_params {alpha, of, step}, its
evaluation at the kept step and its items, written as a part of its own; the sweep's four tables
are then consolidated again from every part, as `pareto sweep` writes them.
"""

from __future__ import annotations

import json
import math

from pareto.export import Kept, KeptError, results_store


def parse_alphas(text: str) -> list[float]:
    """"0:1:0.1" (start:stop:step, both ends included) or "0,0.5,1" → the α values, each in [0, 1].

    >>> parse_alphas("0:1:0.25")
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> parse_alphas("1, 0.3")
    [0.3, 1.0]
    """
    why = (f"--alphas {text!r}: give START:STOP:STEP (e.g. 0:1:0.1, both ends included) or a comma list "
           "(e.g. 0,0.5,1) of numbers in [0, 1]")
    try:
        if ":" in text:
            parts = [float(x) for x in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            a, b, s = parts
            if not (s > 0 and b >= a and all(math.isfinite(x) for x in parts)):
                raise KeptError(why + "; STEP must be > 0 and STOP ≥ START")
            n = round((b - a) / s)
            if abs(a + n * s - b) > 1e-9 * max(1.0, abs(b)):
                raise KeptError(why + f"; STOP − START is not a multiple of STEP ({b} − {a} vs {s})")
            values = [round(a + i * s, 12) for i in range(n + 1)]
        else:
            values = [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise KeptError(why) from None
    if not values or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise KeptError(why)
    return sorted(set(values))


def mix_rows(kept: Kept, alpha: float, trial_id: str, values: dict, items: list[dict], settings: str,
             wall_s: float) -> dict[str, list[dict]]:
    """The tables of one mixed point: a trials row (combiner "mix", combiner_params {alpha, of,
    step}; the rest of the recorded row kept: spec, hashes, objective, lr, dtype), its evaluation
    at the kept step, and its items."""
    from pareto.results.collect import with_departures
    from pareto.results.schema import METRICS

    src = kept.trial
    row = {**src, "trial_id": trial_id, "label": f"mix α={alpha:g} of {kept.trial_id}@{kept.step}",
           "status": "ok", "error": None, "diverged_step": None, "combiner": "mix",
           "combiner_params": json.dumps({"alpha": alpha, "of": kept.trial_id, "step": kept.step}, sort_keys=True),
           "steps": kept.step, "final_lr": None, "resumed_from_step": None, "attempts": 1, "grad_buffer_bytes": None,
           "gpu_peak_bytes": None, "first_step_changed_frac": None, "wall_s": wall_s, "cpu_s": None, "gpu_s": None,
           "metric_settings": with_departures(settings, kept.spec["data"]), **{m: None for m in METRICS}}
    metrics = {k: v for k, v in values.items() if k in METRICS}
    row.update(metrics)
    return {"trials": [row],
            "evals": [{"trial_id": trial_id, "eval_step": kept.step, "wall_s": wall_s, **metrics}],
            "items": [{**it, "trial_id": trial_id, "eval_step": kept.step} for it in items],
            "steps": []}


def write_mix(kept: Kept, points: list[tuple[float, dict]]) -> list[str]:
    """Add mixed points (α, tables) to the results: each as its own part, parts/<id>/ (an earlier
    mix of the same trial, step and α keeps its id and is replaced), then the four tables at the
    top re-consolidated from every part, as `pareto sweep` writes them (trials.parquet last).
    Returns the ids."""
    from pareto.results.state import Sweep
    from pareto.results.writer import consolidate, write_tables

    store, folder = results_store(kept.results)
    sweep = Sweep(store, folder)
    finished = sweep.finished_parts()
    existing: dict[tuple, str] = {}
    for tid in finished:
        r = store.read_table(f"{sweep.part(tid)}/trials.parquet").to_pylist()[0]
        if r["combiner"] == "mix":
            p = json.loads(r["combiner_params"])
            existing[(p["of"], int(p["step"]), float(p["alpha"]))] = tid
    top = [r["trial_id"] for r in store.read_table(f"{folder}/trials.parquet").select(["trial_id"]).to_pylist()]
    nxt = max(int(t[1:]) for t in [*finished, *top]) + 1
    ids = []
    for alpha, tables in points:
        tid = existing.get((kept.trial_id, kept.step, float(alpha)))
        if tid is None:
            tid, nxt = f"t{nxt:03d}", nxt + 1
        for name in tables:
            for r in tables[name]:
                r["trial_id"] = tid
        write_tables(store, sweep.part(tid), tables)
        ids.append(tid)
    consolidate(store, folder, {t: sweep.part(t) for t in sweep.finished_parts()})
    return ids
