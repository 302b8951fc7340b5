"""The data each figure is drawn from, as long tables (analysis.plots only draws these).

fig1_data     the paper's Fig. 1: every ok trial on each plane; static-c GDiff trials carry a
              ``line`` key (one dashed line per lr setting, points in c order).
fig5_data     Fig. 5: ‖g_R‖ = √gram_rr, ‖g_F‖ = √gram_ff, c_t and η per step.
curves_data   Figs. 6–7: metrics over steps from evals.parquet (each curve starts at the
              No-unlearn evaluation, the target before step 0) and the batch losses L_R, L_F
              over steps from steps.parquet.
agreement_data  cos(d, NGDiff direction) per step (analysis.agreement).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.agreement import ngdiff_cosine
from analysis.results import display_names, method_names, setting_names

__all__ = ["fig1_data", "fig5_data", "curves_data", "agreement_data", "BASELINE"]

BASELINE = "no-unlearn"
_INFO = ["trial_id", "method", "display", "setting", "combiner", "lr_rule", "lr", "seed"]


def _info(trials: pd.DataFrame) -> pd.DataFrame:
    t = trials.copy()
    if "method" not in t:
        t["method"] = method_names(t)
    t["display"] = display_names(t["method"])
    t["setting"] = setting_names(t)
    for col in _INFO:
        if col not in t:
            t[col] = np.nan
    return t


def _static_c(method: str) -> float:
    m = re.fullmatch(r"gdiff\(c=([0-9.eE+-]+)\)", str(method))
    return float(m.group(1)) if m else np.nan


def fig1_data(trials: pd.DataFrame, planes) -> pd.DataFrame:
    """One row per (plane, ok trial with both values finite): x, y, c, line (or None).

    A plane of 3 metrics (MUSE: verbmem_f, knowmem_f, knowmem_r) is drawn as its first (a forget
    metric) against its last (the retain metric).
    """
    t = _info(trials)
    t = t[t["status"] == "ok"] if "status" in t else t
    rows = []
    for plane in planes:
        x, y = plane[0], plane[-1]
        if x not in t or y not in t:
            continue
        xs = pd.to_numeric(t[x], errors="coerce")
        ys = pd.to_numeric(t[y], errors="coerce")
        keep = np.isfinite(xs) & np.isfinite(ys)
        for (_, rec), xv, yv in zip(t[keep].iterrows(), xs[keep], ys[keep]):
            c = _static_c(rec["method"])
            line = None
            if np.isfinite(c):
                rule = "AutoLR" if rec["lr_rule"] == "autolr" else f"η={float(rec['lr']):.0e}"
                line = f"GDiff, c sweep ({rule})"
            rows.append({"plane": f"{x} vs {y}", "x_name": x, "y_name": y,
                         **{k: rec[k] for k in _INFO}, "display": rec["display"],
                         "c": c, "line": line, "x": float(xv), "y": float(yv)})
    df = pd.DataFrame(rows, columns=["plane", "x_name", "y_name", *_INFO, "c", "line", "x", "y"])
    return df.sort_values(["plane", "line", "c", "trial_id"], na_position="last", kind="stable"
                          ).reset_index(drop=True)


def fig5_data(steps: pd.DataFrame, trials: pd.DataFrame, combiners=("ngdiff",)) -> pd.DataFrame:
    """Per step of the trials of ``combiners`` (all trials when none match): norms, c_t, η."""
    t = _info(trials)
    ids = t.loc[t["combiner"].isin(combiners), "trial_id"]
    if ids.empty:
        ids = t.loc[t["combiner"] != BASELINE, "trial_id"]
    s = steps[steps["trial_id"].isin(ids)]
    out = pd.DataFrame({
        "trial_id": s["trial_id"].to_numpy(), "step": s["step"].to_numpy(),
        "norm_r": np.sqrt(np.maximum(s["gram_rr"].to_numpy(float), 0.0)),
        "norm_f": np.sqrt(np.maximum(s["gram_ff"].to_numpy(float), 0.0)),
        "c_t": s["c_t"].to_numpy(float), "lr": s["lr"].to_numpy(float)})
    out = out.merge(t[["trial_id", "setting", "method", "lr_rule"]], on="trial_id", how="left")
    return out.sort_values(["setting", "trial_id", "step"], kind="stable").reset_index(drop=True)


def curves_data(evals: pd.DataFrame, steps: pd.DataFrame, trials: pd.DataFrame, metrics,
                combiners=None) -> pd.DataFrame:
    """Long table: trial_id, setting, …, source ("eval" | "step"), quantity, step, value.

    ``metrics``: evals.parquet columns to draw (those without values are dropped). Step losses
    are ``loss_r`` and ``loss_f``. ``combiners``: only these methods' trials (default: all but
    the baseline). Each eval curve starts with the baseline's evaluation at step 0 when the
    trial has none of its own.
    """
    t = _info(trials)
    t = t[t["status"] == "ok"] if "status" in t else t
    base = t.loc[t["combiner"] == BASELINE, "trial_id"]
    chosen = t[t["combiner"] != BASELINE]
    if combiners is not None:
        chosen = chosen[chosen["combiner"].isin(combiners)]
    keep = ["trial_id", "setting", "method", "display", "lr_rule", "lr"]
    frames = []
    metrics = [m for m in metrics if m in evals and evals[m].notna().any()] if len(evals) else []
    if metrics:
        e = evals[evals["trial_id"].isin(chosen["trial_id"])][["trial_id", "eval_step", *metrics]]
        start = evals[evals["trial_id"].isin(base)].sort_values("eval_step").head(1)
        if len(start):
            firsts = e.groupby("trial_id")["eval_step"].min()
            add = [start.assign(trial_id=tid, eval_step=0)[["trial_id", "eval_step", *metrics]]
                   for tid in chosen["trial_id"] if firsts.get(tid, 1) != 0]
            e = pd.concat([e, *add], ignore_index=True) if add else e
        e = e.melt(id_vars=["trial_id", "eval_step"], value_vars=metrics, var_name="quantity")
        frames.append(e.rename(columns={"eval_step": "step"}).assign(source="eval"))
    if len(steps):
        s = steps[steps["trial_id"].isin(chosen["trial_id"])][["trial_id", "step", "loss_r", "loss_f"]]
        s = s.melt(id_vars=["trial_id", "step"], value_vars=["loss_f", "loss_r"], var_name="quantity")
        frames.append(s.assign(source="step"))
    cols = [*keep, "source", "quantity", "step", "value"]
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True).merge(chosen[keep], on="trial_id", how="left")
    out = out.dropna(subset=["value"])
    order = {q: i for i, q in enumerate([*metrics, "loss_f", "loss_r"])}  # metrics as given, then losses
    out = out.assign(_q=out["quantity"].map(order))
    return out.sort_values(["_q", "setting", "trial_id", "step"], kind="stable")[cols].reset_index(drop=True)


def agreement_data(steps: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """trial_id, setting, method, step, cos (the update's cosine to NGDiff's direction)."""
    t = _info(trials)
    out = pd.DataFrame({"trial_id": steps["trial_id"].to_numpy(), "step": steps["step"].to_numpy(),
                        "cos": ngdiff_cosine(steps).to_numpy()})
    out = out.merge(t[["trial_id", "setting", "method", "display", "lr_rule"]], on="trial_id", how="left")
    return out.sort_values(["setting", "trial_id", "step"], kind="stable").reset_index(drop=True)
