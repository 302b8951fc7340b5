"""A small synthetic sweep folder, written as `pareto sweep` writes one (no Ray, no model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DIRECTIONS = {"rouge_f": "min", "utility_r": "max", "loss_f_eval": "max", "loss_r_eval": "min",
              "verbmem_f": "min", "knowmem_f": "min", "knowmem_r": "max", "privleak": "zero",
              "truth_ratio_r": "max"}

# trial_id, combiner, params, lr_rule, lr, status, rouge_f, utility_r, loss_f_eval, loss_r_eval
TRIALS = [
    ("t000", "no-unlearn", "{}", "none", None, "ok", 0.95, 0.95, 0.10, 0.10),
    ("t001", "gdiff", '{"c": 0.2}', "fixed", 1e-4, "ok", 0.10, 0.40, 2.00, 0.90),
    ("t002", "gdiff", '{"c": 0.2}', "autolr", 1e-4, "ok", 0.05, 0.30, 2.50, 1.20),
    ("t003", "gdiff", '{"c": 0.8}', "fixed", 1e-4, "ok", 0.80, 0.97, 0.20, 0.08),
    ("t004", "gdiff", '{"c": 0.8}', "autolr", 1e-4, "ok", 0.60, 0.90, 0.60, 0.20),
    ("t005", "ngdiff", "{}", "fixed", 1e-4, "ok", 0.50, 0.96, 0.70, 0.09),
    ("t006", "ngdiff", "{}", "autolr", 1e-4, "ok", 0.20, 0.93, 1.50, 0.15),
    ("t007", "lossnorm", "{}", "fixed", 1e-4, "failed", None, None, None, None),
    ("t008", "gdiff", '{"c": 0.5}', "fixed", 1e-4, "diverged", np.nan, np.nan, np.nan, np.nan),
]
STEPS = 4


def write_sweep(folder: Path, source: str = "embedded", name: str = "synthetic", blank=()) -> Path:
    """trials, evals, steps .parquet in ``folder``; ``blank``: metric columns left empty."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = json.dumps({"name": name, "data": {"source": source}})
    rows = []
    for tid, comb, params, rule, lr, status, rf, ur, lf, lre in TRIALS:
        label = "no-unlearn" if comb == "no-unlearn" else f"{comb}/ga/{rule}/lr={lr}/seed=0"
        rows.append({"trial_id": tid, "label": label, "sweep": name, "status": status, "combiner": comb,
                     "combiner_params": params, "objective": None if comb == "no-unlearn" else "ga",
                     "lr_rule": rule, "lr": lr, "seed": 0, "steps": 0 if comb == "no-unlearn" else STEPS,
                     "optimizer": "sgd", "rouge_f": rf, "utility_r": ur, "loss_f_eval": lf,
                     "loss_r_eval": lre, "verbmem_f": None, "spec": spec, "pareto_version": "0.1.0"})
        if source == "muse_news":  # MUSE's metrics instead of TOFU's
            rows[-1].update(verbmem_f=rf, knowmem_f=None if rf is None else rf * 0.9, knowmem_r=ur,
                            rouge_f=None, utility_r=None)
        rows[-1].update({m: None for m in blank})
    trials = pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)
    trials = trials.replace_schema_metadata({b"pareto.metric_directions": json.dumps(DIRECTIONS).encode()})
    pq.write_table(trials, folder / "trials.parquet")

    evals, steps = [], []
    rng = np.random.default_rng(0)
    evals.append({"trial_id": "t000", "eval_step": 0, "rouge_f": 0.95, "utility_r": 0.95,
                  "loss_f_eval": 0.10, "loss_r_eval": 0.10})
    for tid, comb, params, rule, lr, status, rf, ur, lf, lre in TRIALS:
        if comb == "no-unlearn" or status != "ok":
            continue
        for s in (2, 4):
            frac = s / STEPS
            evals.append({"trial_id": tid, "eval_step": s, "rouge_f": 0.95 + frac * (rf - 0.95),
                          "utility_r": 0.95 + frac * (ur - 0.95), "loss_f_eval": 0.1 + frac * (lf - 0.1),
                          "loss_r_eval": 0.1 + frac * (lre - 0.1)})
        for s in range(STEPS):
            rr, ff = rng.uniform(0.5, 2.0), rng.uniform(0.5, 4.0)
            rf_ = rng.uniform(-0.5, 0.9) * np.sqrt(rr * ff)
            if comb == "ngdiff":
                w_r, w_f = 1 / np.sqrt(rr), 1 / np.sqrt(ff)
            else:
                c = json.loads(params)["c"]
                w_r, w_f = c, 1 - c
            probed = rule == "autolr" and s % 2 == 0
            lr_s = lr * (3 if rule == "autolr" else 1)
            steps.append({"trial_id": tid, "step": s, "loss_r": 0.1, "loss_f": 0.1 + 0.1 * s,
                          "gram_rr": rr, "gram_rf": rf_, "gram_ff": ff, "w_r": w_r, "w_f": w_f,
                          "c_t": w_r / (w_r + w_f), "lr": lr_s,
                          "dot_r_upd": w_r * rr - w_f * rf_, "dot_f_upd": w_r * rf_ - w_f * ff,
                          "loss_r_after": 0.1 - 0.01 if s != 3 else 0.12, "loss_f_after": 0.1 + 0.1 * s + 0.05,
                          "autolr_gd": 1.0 if probed else np.nan, "autolr_dhd": 1.0 / lr_s if probed else np.nan,
                          "autolr_eta": lr_s if probed else np.nan, "autolr_accepted": True if probed else None,
                          "step_time_s": 0.01})
    pq.write_table(pa.Table.from_pandas(pd.DataFrame(evals), preserve_index=False), folder / "evals.parquet")
    pq.write_table(pa.Table.from_pandas(pd.DataFrame(steps), preserve_index=False), folder / "steps.parquet")
    return folder

