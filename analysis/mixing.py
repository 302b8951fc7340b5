"""Mixing curves: the points `pareto mix` added to a sweep, one curve per mixed (trial, step).

`pareto mix` evaluates θ_α = (1 − α)·θ_target + α·θ_unlearned for a grid of α and writes each as a
trial row with combiner "mix" and combiner_params {alpha, of, step} (pareto/mix.py). A curve runs
from the target (α = 0) to the unlearned model at its kept step (α = 1); where it leaves the
sweep's front, mixing buys a trade-off no trial reached (docs/export_mix.md).

>>> t = pd.DataFrame({"trial_id": ["t0", "t5", "t6"], "status": "ok", "combiner": ["gdiff", "mix", "mix"],
...                   "combiner_params": ['{"c": 0.5}', '{"alpha": 1.0, "of": "t0", "step": 4}',
...                                       '{"alpha": 0.5, "of": "t0", "step": 4}'], "rouge_f": [0.1, 0.1, 0.4]})
>>> mixing_curves(t, ["rouge_f"])[["curve", "alpha", "trial_id", "rouge_f"]].values.tolist()
[['t0@4', 0.5, 't6', 0.4], ['t0@4', 1.0, 't5', 0.1]]
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

__all__ = ["MIX", "is_mix", "mixing_curves"]

#: The combiner of a mixed point's trial row.
MIX = "mix"


def is_mix(trials: pd.DataFrame) -> pd.Series:
    """True for the rows `pareto mix` wrote."""
    if "combiner" not in trials:
        return pd.Series(False, index=trials.index)
    return trials["combiner"].eq(MIX)


def mixing_curves(trials: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per mixed point with a status of ok: ``curve`` ("t004@20": the trial and step mixed),
    ``of``, ``step``, ``alpha``, ``trial_id`` and ``metrics``; curves in order of their trial and
    step, each by α ascending. Empty (with those columns) when the sweep has no mixed point."""
    names = [m for m in metrics if m in trials]
    cols = ["curve", "of", "step", "alpha", "trial_id", *names]
    mixed = trials[is_mix(trials)]
    if "status" in mixed:
        mixed = mixed[mixed["status"] == "ok"]
    if mixed.empty:
        return pd.DataFrame(columns=cols)
    params = [json.loads(p) for p in mixed["combiner_params"]]
    out = pd.DataFrame({"of": [p["of"] for p in params], "step": [int(p["step"]) for p in params],
                        "alpha": [float(p["alpha"]) for p in params], "trial_id": mixed["trial_id"].to_numpy()})
    for m in names:
        out[m] = pd.to_numeric(mixed[m], errors="coerce").to_numpy()
    out.insert(0, "curve", [f"{o}@{s}" for o, s in zip(out["of"], out["step"])])
    return out.sort_values(["of", "step", "alpha"], kind="stable").reset_index(drop=True)[cols]
