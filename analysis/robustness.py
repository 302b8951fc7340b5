"""Robustness tables (eval.robustness; docs/robustness.md): per setting, a forget metric before and
after each attack, and how much of the forgetting each attack undoes.

For a forget metric m with sign s (+1 when lower is better, as rouge_f; −1 when higher is, as
loss_f_eval), a trial's forgetting on the evaluated half is its gap to the No-unlearn trial,

    gap   = s · (base_half − half_m)            base_*: the No-unlearn trial's value
    gap_a = s · (base_a − a_m)                  the same under attack a (relearn, quant, para)
    undone_a = 1 − gap_a / gap                  the share of the forgetting attack a undoes

(each attack compared with the No-unlearn model under the same attack, so that an attack that
moves every model alike — paraphrased questions the target never saw — undoes nothing).
undone ≈ 0: the forgetting holds (deep); ≈ 1: the attack brings the answers back (shallow).
The verdict reads the attacks on the weights (VERDICT_ATTACKS: relearn, quant): a setting is *deep*
when the largest of their undone is below DEEP, *shallow* above SHALLOW, else *partial*; one whose
gap is below MIN_GAP·|base_half| forgot too little to say. The paraphrase's undone is shown beside
it (how far the forgetting carries over to other wordings) but not read into the verdict: on a
target that never learnt the paraphrased questions (the embedded default) it is at a floor for
every model. Forgetting no attack undoes is also what a wrecked model shows, so the table carries
the retain metric (utility_r, else model_utility) as the share of No-unlearn's it keeps, and a
verdict whose model keeps less than RETAIN_LOST of it says so ("deep, retain lost"). Seed means
throughout.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from analysis.results import setting_names

ATTACKS = {"relearn": "relearn", "quant": "quantised", "para": "paraphrased"}
VERDICT_ATTACKS = ("relearn", "quant")
DEEP, SHALLOW, MIN_GAP = 0.25, 0.5, 0.05
#: Retain metrics (higher is better) the table shows beside the verdict, in order of preference.
RETAIN = ("utility_r", "model_utility")
RETAIN_LOST = 0.5


def has_robustness(trials: pd.DataFrame) -> bool:
    """Whether any trial has a robustness column with a value."""
    return any(c in trials and trials[c].notna().any() for c in (f"half_{m}" for m in ("rouge_f", "loss_f_eval",
                                                                                    "prob_f", "truth_ratio_f")))


def robustness_metric(trials: pd.DataFrame) -> str | None:
    """The forget metric the table shows: rouge_f where measured, else the first that is."""
    return next((m for m in ("rouge_f", "loss_f_eval", "prob_f", "truth_ratio_f")
                 if f"half_{m}" in trials and trials[f"half_{m}"].notna().any()), None)


def robustness_table(trials: pd.DataFrame, metric: str, direction: str) -> pd.DataFrame:
    """One row per setting (No-unlearn first): `metric` on the whole forget set, on the evaluated half
    (before), after each attack that was run with its change, the share of the forgetting each undoes
    (`undone <attack>`, against No-unlearn; `± <attack>`: the standard deviation over seeds of each
    seed's own share, for the attacks the verdict reads), the share of No-unlearn's retain metric it keeps
    (`<retain> kept`, where one of RETAIN is measured) and a verdict."""
    ok = trials[(trials.get("status") == "ok") & trials[f"half_{metric}"].notna()].copy()
    if ok.empty:
        return pd.DataFrame()
    attacks = [a for a in ATTACKS if f"{a}_{metric}" in ok and ok[f"{a}_{metric}"].notna().any()]
    ok["setting"] = setting_names(ok)
    retain = next((m for m in RETAIN if m in ok and ok[m].notna().any()), None)
    cols = [metric, f"half_{metric}", *[f"{a}_{metric}" for a in attacks], *([retain] if retain else [])]
    means = ok.groupby("setting", sort=False)[cols].mean()
    base_rows = ok.loc[ok["combiner"] == "no-unlearn", cols]
    base = base_rows.mean() if not base_rows.empty else None
    s = 1.0 if direction == "min" else -1.0
    out = pd.DataFrame({"setting": means.index, "seeds": ok.groupby("setting", sort=False).size().values,
                        metric: means[metric].values, "before (half)": means[f"half_{metric}"].values})
    for a in attacks:
        out[ATTACKS[a]] = means[f"{a}_{metric}"].values
        out[f"Δ {ATTACKS[a]}"] = out[ATTACKS[a]] - out["before (half)"]
    if base is not None:
        gap = s * (base[f"half_{metric}"] - out["before (half)"])
        small = gap <= MIN_GAP * abs(base[f"half_{metric}"])
        undone = []
        for a in attacks:
            u = 1.0 - s * (base[f"{a}_{metric}"] - out[ATTACKS[a]]) / gap.where(~small)
            out[f"undone {ATTACKS[a]}"] = u
            if a in VERDICT_ATTACKS:
                undone.append(u)
        for a in (a for a in attacks if a in VERDICT_ATTACKS):  # the spread over seeds, of each seed's own share
            per_seed = 1.0 - s * (base[f"{a}_{metric}"] - ok[f"{a}_{metric}"]) / (s * (base[f"half_{metric}"]
                                                                                         - ok[f"half_{metric}"]))
            spread = per_seed.replace([np.inf, -np.inf], np.nan).groupby(ok["setting"], sort=False).std()
            out[f"± {ATTACKS[a]}"] = np.where(small, np.nan, spread.reindex(out["setting"]).values)
        worst = pd.concat(undone, axis=1).max(axis=1) if undone else pd.Series(np.nan, index=out.index)
        out["forgetting"] = np.select([small, worst < DEEP, worst > SHALLOW], ["too little to say", "deep", "shallow"],
                                      "partial")
        out.loc[worst.isna() & ~small, "forgetting"] = "–"
        if retain and base[retain] > 0:
            out[f"{retain} kept"] = means[retain].values / base[retain]
            lost = (out[f"{retain} kept"] < RETAIN_LOST) & ~small
            out.loc[lost, "forgetting"] = out.loc[lost, "forgetting"] + ", retain lost"
        is_base = out["setting"].isin(ok.loc[ok["combiner"] == "no-unlearn", "setting"])
        out.loc[is_base, [c for c in out if c.startswith("undone ")] + ["forgetting"]] = np.nan
        out = pd.concat([out[is_base], out[~is_base]], ignore_index=True)
    return out


def relearning_curve(trials: pd.DataFrame, metric: str, direction: str) -> pd.DataFrame:
    """The relearning curve (eval.robustness.relearn_steps as a list): one row per (setting, K) with
    `metric` on the evaluated half after K relearning steps (seed mean) and, against No-unlearn
    relearnt the same K steps, the share of the forgetting undone,
    1 − s·(base_K − m_K) / (s·(base_0 − m_0)), K = 0 being the half as it is. Empty without a curve."""
    column = f"relearn_{metric}"
    if column not in trials or "metric_settings" not in trials:
        return pd.DataFrame()
    ok = trials[(trials.get("status") == "ok") & trials[column].notna()].copy()
    curves = ok["metric_settings"].map(lambda text: json.loads(text).get(column, {}).get("curve")
                                       if isinstance(text, str) else None)
    ok = ok[curves.notna()]
    if ok.empty:
        return pd.DataFrame()
    ok["setting"] = setting_names(ok)
    rows = [{"setting": setting, "trial_id": tid, "K": int(k), "value": v}
            for setting, tid, curve in zip(ok["setting"], ok["trial_id"], curves[ok.index]) for k, v in curve.items()]
    long = pd.DataFrame(rows)
    out = (long.groupby(["setting", "K"], sort=False)
           .agg(seeds=("trial_id", "nunique"), value=("value", "mean")).reset_index())
    base_settings = set(ok.loc[ok["combiner"] == "no-unlearn", "setting"])
    base = out[out["setting"].isin(base_settings)].groupby("K")["value"].mean()
    if not base.empty and 0 in base.index:
        s = 1.0 if direction == "min" else -1.0
        start = out[out["K"] == 0].set_index("setting")["value"]
        gap = s * (base[0] - out["setting"].map(start))
        small = gap <= MIN_GAP * abs(base[0])
        out["undone"] = (1.0 - s * (out["K"].map(base) - out["value"]) / gap).where(~small)
        out.loc[out["setting"].isin(base_settings), "undone"] = np.nan
    return out
