"""The results schema, declared once: what each Parquet file holds and each metric's direction.

    trials.parquet — one row per trial: what produced it (spec, data, target, versions, seed),
                     its configuration, its status and its final metrics (one column per
                     registered metric, null where a sweep did not ask for it).
    steps.parquet  — one row per unlearning step of every trial: the telemetry of
                     pareto.core.engine.STEP_COLUMNS plus `trial_id`.
    evals.parquet  — one row per trial per evaluation point (eval.every, and the end): the
                     metrics at that step, so a curve over steps needs no re-run.
    items.parquet  — one row per evaluated item and metric: what the model was asked, what it
                     answered, the reference and the item's score, so any number can be recomputed.

`analysis/` reads these files only (never the core), so it repeats nothing from here but the
column names.
"""

from __future__ import annotations

import pyarrow as pa

from pareto.core.engine import STEP_COLUMNS
from pareto.metrics import METRICS as _REGISTRY
from pareto.metrics.robustness import ROBUSTNESS_METRICS

#: Every registered metric and whether higher ("max") or lower ("min") is better.
#: Then eval.robustness's columns (pareto.metrics.robustness: the forget metrics after an attack), each with
#: the direction of the metric it repeats.
METRICS: dict[str, str] = {**{name: _REGISTRY.get(name).direction for name in _REGISTRY.names()},
                           **ROBUSTNESS_METRICS}

ITEM_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("eval_step", pa.int64()), ("metric", pa.string()), ("item_id", pa.string()),
    ("prompt", pa.string()), ("generation", pa.string()), ("reference", pa.string()), ("score", pa.float64()),
])

STEP_SCHEMA = pa.schema(
    [("trial_id", pa.string())]
    + [(c, pa.int64()) if c == "step" else (c, pa.bool_()) if c == "autolr_accepted" else (c, pa.float64())
       for c in STEP_COLUMNS]
)

EVAL_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("eval_step", pa.int64()), ("wall_s", pa.float64()),
    *[(m, pa.float64()) for m in METRICS],
])

TRIAL_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("label", pa.string()), ("sweep", pa.string()), ("run_id", pa.string()),
    ("status", pa.string()),  # ok | diverged | stopped (early, by the scheduler) | failed
    ("error", pa.string()), ("diverged_step", pa.int64()),
    ("combiner", pa.string()), ("combiner_params", pa.string()),
    ("objective", pa.string()), ("objective_params", pa.string()),
    ("lr_rule", pa.string()), ("lr_rule_params", pa.string()),
    ("lr", pa.float64()), ("final_lr", pa.float64()), ("seed", pa.int64()), ("steps", pa.int64()),
    ("optimizer", pa.string()), ("batch_size", pa.int64()), ("search", pa.string()),
    *[(m, pa.float64()) for m in METRICS], ("metric_settings", pa.string()),
    ("wall_s", pa.float64()), ("cpu_s", pa.float64()), ("gpu_s", pa.float64()), ("attempts", pa.int64()),
    ("resumed_from_step", pa.int64()),  # a retried trial that continued from its checkpoint: the step it resumed at
    ("grad_buffer_bytes", pa.int64()),  # the memory the engine adds to plain training (its g_R buffer, …)
    ("gpu_peak_bytes", pa.int64()),  # torch.cuda.max_memory_allocated over the trial (null on CPU; rank 0's)
    ("first_step_changed_frac", pa.float64()),  # of the entries the first step's d moves, the fraction that changed
    ("workers", pa.int64()), ("parallel", pa.string()),  # torch.distributed workers of the trial, ddp | fsdp | null
    ("spec_hash", pa.string()), ("spec", pa.string()), ("data_hash", pa.string()), ("target_hash", pa.string()),
    ("reference_metrics", pa.string()),  # JSON: the Retrain model's values of eval.metrics (target.retain_model)
    ("add_bos", pa.bool_()), ("prompt_template", pa.string()),
    ("pareto_version", pa.string()), ("torch_version", pa.string()), ("transformers_version", pa.string()),
    ("ray_version", pa.string()), ("device", pa.string()), ("dtype", pa.string()), ("node_id", pa.string()),
])
