"""The data each figure is drawn from, as long tables (analysis.plots only draws these).

fig1_data     the paper's Fig. 1: every ok trial on each plane; static-c GDiff trials carry a
              ``line`` key (one dashed line per lr setting, points in c order).
fig5_data     Fig. 5: ‖g_R‖ = √gram_rr, ‖g_F‖ = √gram_ff, c_t and η per step.
curves_data   Figs. 6–7: metrics over steps from evals.parquet (each curve starts at the
              No-unlearn evaluation, the target before step 0) and the batch losses L_R, L_F
              over steps from steps.parquet.
agreement_data  cos(d, NGDiff direction) per step (analysis.agreement).
fig4_data     Fig. 4: L_R and L_F along one step's update, from a probe table (`pareto probe`,
              pareto/probe.py): the measured points and the quadratic models through them.
fig4_summary  one row per probe: η used, the parabola's η*, and the checks of the rebuilt step
              against what the trial recorded.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.agreement import ngdiff_cosine
from analysis.results import display_names, method_names, setting_names

__all__ = ["fig1_data", "fig5_data", "curves_data", "agreement_data", "fig4_data", "fig4_summary", "BASELINE"]

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
            need = [tid for tid in chosen["trial_id"] if firsts.get(tid, 1) != 0]
            if need:  # one frame of the baseline's row, once per trial that lacks a step 0
                add = start[metrics].iloc[np.zeros(len(need), dtype=int)].reset_index(drop=True)
                add.insert(0, "eval_step", 0)
                add.insert(0, "trial_id", need)
                e = pd.concat([e, add[["trial_id", "eval_step", *metrics]]], ignore_index=True)
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
    order = [*metrics, "loss_f", "loss_r"]  # metrics as given, then losses (codes: not a Python map per row)
    out = out.assign(_q=pd.Categorical(out["quantity"], categories=order).codes)
    return out.sort_values(["_q", "setting", "trial_id", "step"], kind="stable")[cols].reset_index(drop=True)


def agreement_data(steps: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """trial_id, setting, method, step, cos (the update's cosine to NGDiff's direction)."""
    t = _info(trials)
    out = pd.DataFrame({"trial_id": steps["trial_id"].to_numpy(), "step": steps["step"].to_numpy(),
                        "cos": ngdiff_cosine(steps).to_numpy()})
    out = out.merge(t[["trial_id", "setting", "method", "display", "lr_rule"]], on="trial_id", how="left")
    return out.sort_values(["setting", "trial_id", "step"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------- Fig. 4
def _probes(probe: pd.DataFrame):
    return probe.groupby(["trial_id", "step"], sort=True)


def _at(part: pd.DataFrame, eta: float, col: str) -> float:
    """The measured value at η (NaN when the grid lacks it)."""
    hit = part.loc[np.isclose(part["eta"], eta, rtol=1e-12, atol=0.0), col]
    return float(hit.iloc[0]) if len(hit) else np.nan


def fig4_data(probe: pd.DataFrame, n: int = 201) -> pd.DataFrame:
    """Long table: trial_id, step, title, quantity ("loss_r" | "loss_f"), data ("batch" | "full"),
    kind, eta, value.

    kind "measured": the probe's rows. kind "recorded": what the trial's steps.parquet holds for
    this step — loss_r, loss_f at η = 0 and loss_r_after, loss_f_after at the η it used (when
    measured); the measured curve passes through them when the rebuild is exact. kind "parabola"
    (batch data only): for L_R the quadratic L₀ − η·fit_gd + ½η²·fit_dhd (AutoLR's fit when it
    probed at this step, else the same three-point formula at ±η_in); for L_F the three-point
    quadratic through the measured L_F(θ ∓ η_in·u) and L_F(θ). ``n`` points over the measured η
    range.
    """
    cols = ["trial_id", "step", "title", "quantity", "data", "kind", "eta", "value"]
    if probe is None or probe.empty:
        return pd.DataFrame(columns=cols)
    frames = []
    for (tid, step), part in _probes(probe):
        first = part.iloc[0]
        opt = f" ({first['optimizer']})" if isinstance(first.get("optimizer"), str) else ""
        title = f"{tid} {first.get('label', '')}{opt}, step {int(step)}"
        for q in ("loss_r", "loss_f"):
            rec = [(0.0, float(first[f"rec_{q}"])), (float(first["eta_used"]), float(first[f"rec_{q}_after"]))]
            rec = [(e, v) for e, v in rec if np.isfinite(v)]
            frames.append(pd.DataFrame({"trial_id": tid, "step": int(step), "title": title, "quantity": q,
                                        "data": "batch", "kind": "recorded", "eta": [e for e, _ in rec],
                                        "value": [v for _, v in rec]}))
        for data, d in part.groupby("data", sort=True):
            d = d.sort_values("eta")
            for q in ("loss_r", "loss_f"):
                frames.append(pd.DataFrame({"trial_id": tid, "step": int(step), "title": title, "quantity": q,
                                            "data": data, "kind": "measured", "eta": d["eta"].to_numpy(float),
                                            "value": d[q].to_numpy(float)}))
            if data != "batch":
                continue
            eta = np.linspace(d["eta"].min(), d["eta"].max(), n)
            h = float(first["eta_in"])
            l0 = _at(d, 0.0, "loss_r")
            gd, dhd = float(first["fit_gd"]), float(first["fit_dhd"])
            curves = {"loss_r": l0 - eta * gd + 0.5 * eta ** 2 * dhd}
            f0, fm, fp = _at(d, 0.0, "loss_f"), _at(d, h, "loss_f"), _at(d, -h, "loss_f")
            if h > 0 and np.isfinite([f0, fm, fp]).all():
                curves["loss_f"] = f0 - eta * (fp - fm) / (2 * h) + 0.5 * eta ** 2 * (fp + fm - 2 * f0) / h ** 2
            for q, v in curves.items():
                if np.isfinite(v).all():
                    frames.append(pd.DataFrame({"trial_id": tid, "step": int(step), "title": title, "quantity": q,
                                                "data": "batch", "kind": "parabola", "eta": eta, "value": v}))
    return pd.concat(frames, ignore_index=True)[cols]


def fig4_summary(probe: pd.DataFrame) -> pd.DataFrame:
    """One row per probe (trial, step): η used, η* of the parabola, and the reconstruction checks:
    the probe at η = 0 minus the recorded loss_r / loss_f, at η = η used minus the recorded
    loss_r_after / loss_f_after (NaN where the step did not measure them), the finite-difference
    slope dL_R/dη at 0 against −g_R·u, and the rebuilt step's largest relative difference from
    its recorded row."""
    rows = []
    if probe is None or probe.empty:
        return pd.DataFrame()
    for (tid, step), part in _probes(probe):
        b = part[part["data"] == "batch"].sort_values("eta")
        first = b.iloc[0]
        used = float(first["eta_used"])
        pos = b.loc[b["eta"] > 0, "eta"]
        h = float(pos.iloc[0]) if len(pos) else np.nan
        fd = (_at(b, h, "loss_r") - _at(b, -h, "loss_r")) / (2 * h) if np.isfinite(h) else np.nan
        rows.append({
            "trial_id": tid, "step": int(step), "label": first.get("label"), "optimizer": first.get("optimizer"),
            "η used": used, "η* (parabola)": float(first["fit_eta"]), "parabola": first["fit_source"],
            "L_R(0) − rec.": _at(b, 0.0, "loss_r") - float(first["rec_loss_r"]),
            "L_F(0) − rec.": _at(b, 0.0, "loss_f") - float(first["rec_loss_f"]),
            "L_R(η) − rec. after": _at(b, used, "loss_r") - float(first["rec_loss_r_after"]),
            "L_F(η) − rec. after": _at(b, used, "loss_f") - float(first["rec_loss_f_after"]),
            "dL_R/dη (fin. diff.)": fd, "−g_R·u": -float(first["gr_u"]), "−g_F·u": -float(first["gf_u"]),
            "rebuild rel. err.": float(first["repro_rel_err"]),
        })
    return pd.DataFrame(rows)
