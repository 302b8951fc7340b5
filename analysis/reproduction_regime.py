"""Round 2 of the reproduction (issue 19): claims 2 and 3 in the paper's regime.

    python benchmarks/reproduction.py --round 2 --data /path/to/TOFU   # the sweeps (about 1.5 h on 2 cores)
    python -m analysis.reproduction --results docs/results --out docs/reproduction.md

Round 1 (analysis/reproduction.py) ran on a target memorised to retain loss ≈ 0.01 that knows
nothing but its 40 authors: at fixed rates NGDiff stopped at Verbmem 0.63–0.82, where there is no
room to differ, and Model Utility and Forget Quality were ≈ 0 everywhere. Round 2 runs on the
target of sweeps/_repro2_base.yaml (a stand-in for pretraining knowledge, stopped at 0.9 answer
accuracy) for 100 steps with 10 evaluations along every path (sweeps/repro2_fixed.yaml,
repro2_autolr.yaml), and decides:

2. **NGDiff keeps more Utility than GDiff at matched forgetting.** Along the paths (every trial
   starts at the target, the No-unlearn evaluation at step 0), each group's Utility (utility_r)
   where its Verbmem (rouge_f) first crosses each level X of LEVELS, linearly interpolated between
   evaluations — per seed the best over the group's trials (`pareto pick --rule at-forget=X`,
   analysis.pick.seed_bests). NGDiff against the GDiff family (every c at every rate of the
   setting: GDiff gets the more chances), paired by seed: the mean difference and its 95 % t
   interval. Done separately for the fixed rates and for AutoLR. A (setting, level) is compared
   when both reach it in ≥ 2 common seeds. **Holds** when the interval is above 0 in ≥ 2
   comparisons and below 0 in none; **does not hold** when it is above 0 in none; **inconclusive**
   otherwise. A difference below PRECISION counts as none. The same with Model Utility is shown
   and decides nothing.
3. **AutoLR raises TruthRatio and lowers Verbmem, against tuned fixed rates.** Each method's
   best fixed rate (`best_fixed_rates`: among its fixed rates, those whose seed-mean final Verbmem
   is ≤ REGIME, the one with the highest seed-mean final Utility; when none is, the one with the
   lowest seed-mean final Verbmem) against its AutoLR trials, final values paired by seed:
   TruthRatio (truth_ratio_r) up and Verbmem down. Counted as round 1's claim 3: holds when both
   move the paper's way significantly for ≥ ¾ of the methods; does not hold when at least one
   moves against it significantly for more than half. Round 1's comparison with the rate AutoLR
   starts from is shown beside it.

Every rule here was fixed on 2026-12-06 before any round-2 result was read (RULES_FIXED says
what had been seen).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.pick import seed_bests
from analysis.reproduction import (PRECISION, TRUTH, UTILITY, VERBMEM, Verdict, _sign, autolr_rates, claim_autolr,
                                   cost_table, ct_table, fmt_ci, load, mean_ci, ok_trials, seed_means)
from analysis.results import display_names, load_results
from analysis.tables import render

__all__ = ["SWEEPS", "LEVELS", "REGIME", "load_paths", "matched", "claim_matched", "mean_paths", "best_fixed_rates",
           "claim_autolr_tuned", "weak_metrics_range", "section"]

SWEEPS = ("repro2_fixed", "repro2_autolr")
LEVELS = (0.3, 0.2, 0.1, 0.05)  # claim 2's matched Verbmem levels
REGIME = 0.05                   # the paper's regime: Verbmem at or below this
MIN_SEEDS = 2                   # claim 2: a (setting, level) is compared with this many common seeds
CLAIM_2 = "2 (round 2). NGDiff keeps more Utility than GDiff at matched Verbmem, along the paths"
CLAIM_3 = "3 (round 2). AutoLR raises TruthRatio and lowers Verbmem, against each method's best fixed rate"
CLAIM_3_START = "3 (round 2, as round 1). AutoLR against the fixed rate it starts from"
RULES_FIXED = (
    "Fixed on 2026-12-06 before any round-2 result was read: the sweeps (sweeps/_repro2_base.yaml, "
    "repro2_fixed.yaml, repro2_autolr.yaml: methods, the rates 2e-4 and 5e-4, AutoLR's start at 2e-4, 100 steps, "
    "an evaluation every 10, 5 seeds, 160 retain items) and every rule of `analysis/reproduction_regime.py`'s "
    "docstring: the levels, the groups, the paired intervals, the verdict counts and the best-fixed-rate rule. "
    "Seen before: all of round 1's results; the 10-author quick trials of docs/tofu_cpu.md; and a one-seed probe on "
    "this target (NGDiff and GDiff-0.5 at lr 1e-4 for 100 steps; not in the data), run to choose the step count and "
    "the rates — in it NGDiff kept more Utility than GDiff-0.5 at the Verbmem both reached. No rule was added after.")


# ------------------------------------------------------------------------------------ loading
def load_paths(root: Path, names=SWEEPS) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The round's pooled trials and steps (as analysis.reproduction.load) and their evaluations,
    each evaluation with its trial's method, display name, rate, lr rule, combiner and seed."""
    trials, steps, directions = load(root, names)
    evals = []
    for name in names:
        e = load_results(Path(root) / name).evals
        evals.append(e.assign(trial_id=name + "/" + e["trial_id"].astype(str)))
    cols = ["trial_id", "sweep", "method", "display", "rate", "lr_rule", "combiner", "seed", "status"]
    evals = pd.concat(evals, ignore_index=True).merge(trials[cols], on="trial_id")
    return trials, steps, evals[evals["status"] == "ok"], directions


def _start(trials: pd.DataFrame) -> pd.DataFrame:
    """The target's evaluation (the No-unlearn trial): where every path starts."""
    return ok_trials(trials)[lambda t: t["combiner"] == "no-unlearn"].head(1)


# ------------------------------------------------------------------------------------ claim 2
def _groups(evals: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """NGDiff, each GDiff c, and the GDiff family (every c, every rate of the setting)."""
    gd = evals[evals["combiner"] == "gdiff"]
    return ([("NGDiff", evals[evals["combiner"] == "ngdiff"])]
            + [(d, g) for d, g in gd.groupby("display", sort=True)]
            + [("GDiff, best of every c and rate", gd)])


def matched(evals: pd.DataFrame, start: pd.DataFrame, utility: str, directions: dict,
            levels=LEVELS, precision: float = PRECISION) -> pd.DataFrame:
    """Claim 2's table: per setting (fixed rates, AutoLR) and level, each group's Utility at that
    Verbmem (seed mean ± 95 % interval, seeds reached), and NGDiff minus the GDiff family paired by
    seed, with its sign (+1 / −1 / 0, or NaN when fewer than MIN_SEEDS seeds pair)."""
    rows = []
    for setting, rule in (("fixed rates", "fixed"), ("AutoLR", "autolr")):
        part = evals[evals["lr_rule"] == rule]
        if part.empty:
            continue
        for x in levels:
            row, bests = {"setting": setting, "Verbmem": x}, {}
            for name, g in _groups(part):
                b = seed_bests(g, x, VERBMEM, utility, directions, start) if len(g) else pd.DataFrame()
                bests[name] = b
                m, h, n = mean_ci(b["u"]) if len(b) else (np.nan, np.nan, 0)
                row[name] = f"{fmt_ci(m, h)} ({n})" if n else "not reached"
            pair = bests["NGDiff"].merge(bests["GDiff, best of every c and rate"], on="seed", suffixes=("_n", "_g")) \
                if len(bests["NGDiff"]) and len(bests["GDiff, best of every c and rate"]) else pd.DataFrame()
            m, h, n = mean_ci(pair["u_n"] - pair["u_g"]) if len(pair) else (np.nan, np.nan, 0)
            sign = _sign(m, h, precision) if n >= MIN_SEEDS else np.nan
            row["Δ NGDiff − GDiff (paired seeds)"] = f"{fmt_ci(m, h)} ({n})" if n else "–"
            row["NGDiff better"] = ({1: "yes", -1: "no: worse", 0: "not significant"}.get(sign, "not compared")
                                    if np.isfinite(sign) else "not compared")
            row["_sign"] = sign
            rows.append(row)
    return pd.DataFrame(rows)


def claim_matched(evals: pd.DataFrame, start: pd.DataFrame, directions: dict,
                  precision: float = PRECISION) -> Verdict:
    t = matched(evals, start, UTILITY, directions, precision=precision)
    signs = t["_sign"].dropna()
    up, down = int((signs > 0).sum()), int((signs < 0).sum())
    verdict = ("holds" if up >= 2 and down == 0 else
               "does not hold" if len(signs) and up == 0 else "inconclusive")
    evidence = (f"NGDiff's Utility minus the GDiff family's at matched Verbmem: above 0 in {up}, below 0 in {down} "
                f"and not significant in {len(signs) - up - down} of {len(signs)} compared (setting, level) pairs "
                f"({len(t) - len(signs)} not compared: fewer than {MIN_SEEDS} common seeds reached the level)")
    return Verdict(CLAIM_2, verdict, evidence, t.drop(columns="_sign"))


def mean_paths(evals: pd.DataFrame, start: pd.DataFrame, utility: str = UTILITY) -> pd.DataFrame:
    """Each setting's (method × rate) seed-mean path: Verbmem and Utility averaged over seeds at
    each evaluation step, from the target at step 0 (plots.matched_paths draws it)."""
    e = evals[evals["combiner"] != "no-unlearn"]
    g = e.groupby(["display", "rate", "lr_rule", "eval_step"], sort=False)[[VERBMEM, utility]].mean().reset_index()
    first = g.drop_duplicates(["display", "rate"]).assign(eval_step=0, **{VERBMEM: float(start[VERBMEM].iloc[0]),
                                                                          utility: float(start[utility].iloc[0])})
    out = pd.concat([first, g], ignore_index=True).sort_values(["display", "rate", "eval_step"], kind="stable")
    return out.rename(columns={"eval_step": "step", VERBMEM: "x", utility: "y"}).assign(
        x_name=VERBMEM, y_name=utility).reset_index(drop=True)


# ------------------------------------------------------------------------------------ claim 3
def best_fixed_rates(trials: pd.DataFrame, regime: float = REGIME) -> pd.DataFrame:
    """Each method's best fixed rate by the rule in the module docstring: method, lr, why."""
    means = seed_means(trials[(trials["lr_rule"] == "fixed") & (trials["combiner"] != "no-unlearn")],
                       [VERBMEM, UTILITY])
    rows = []
    for method, g in means.groupby("method", sort=False):
        inside = g[g[VERBMEM] <= regime]
        if len(inside):
            best, why = inside.sort_values([UTILITY, "lr"], ascending=[False, True]).iloc[0], \
                f"highest Utility of the rates with Verbmem ≤ {regime}"
        else:
            best, why = g.sort_values([VERBMEM, "lr"]).iloc[0], f"no rate reaches Verbmem ≤ {regime}: the lowest Verbmem"
        rows.append({"method": method, "lr": float(best["lr"]), "why": why})
    return pd.DataFrame(rows)


def claim_autolr_tuned(trials: pd.DataFrame, precision: float = PRECISION) -> Verdict:
    ok = ok_trials(trials)
    rows, good, bad = [], 0, 0
    for _, b in best_fixed_rates(ok).iterrows():
        part = ok[ok["method"] == b["method"]]
        fixed = part[(part["lr_rule"] == "fixed") & np.isclose(part["lr"].astype(float), b["lr"])]
        auto = part[part["lr_rule"] == "autolr"]
        if auto.empty:
            continue
        d = {m: mean_ci(auto.set_index("seed")[m] - fixed.set_index("seed")[m]) for m in (TRUTH, VERBMEM, UTILITY)}
        st, sv = _sign(*d[TRUTH][:2], precision), _sign(*d[VERBMEM][:2], precision)
        good += st > 0 and sv < 0
        bad += st < 0 or sv > 0
        rows.append({"method": display_names([b["method"]]).iloc[0],
                     "best fixed η (rule)": f"{b['lr']:.0e} ({b['why']})",
                     "TruthRatio fixed → AutoLR": f"{fixed[TRUTH].mean():.3f} → {auto[TRUTH].mean():.3f}",
                     "Δ TruthRatio": fmt_ci(*d[TRUTH][:2]),
                     "Verbmem fixed → AutoLR": f"{fixed[VERBMEM].mean():.3f} → {auto[VERBMEM].mean():.3f}",
                     "Δ Verbmem": fmt_ci(*d[VERBMEM][:2]),
                     "Δ Utility (not in the rule)": fmt_ci(*d[UTILITY][:2]),
                     "paper's way": "both" if st > 0 and sv < 0 else
                                    ("against" if st < 0 or sv > 0 else "not significant")})
    n = len(rows)
    verdict = "holds" if n and good >= 0.75 * n else "does not hold" if n and bad > n / 2 else "inconclusive"
    evidence = (f"AutoLR against each method's best fixed rate: both move the paper's way significantly for "
                f"{good} of {n} methods; at least one moves against it significantly for {bad}")
    return Verdict(CLAIM_3, verdict, evidence, pd.DataFrame(rows))


# ------------------------------------------------------------------------------------ the page
def weak_metrics_range(trials: pd.DataFrame, evals: pd.DataFrame, fq_level: float = 0.05) -> str:
    """Model Utility and Forget Quality over the round's unlearnt trials: do they vary here?"""
    ok = ok_trials(trials)
    ok = ok[ok["combiner"] != "no-unlearn"]
    mu, fq = ok["model_utility"].dropna(), ok["forget_quality"].dropna()
    e = evals[evals["combiner"] != "no-unlearn"]
    hi = ok[ok["forget_quality"] >= fq_level]
    return (f"Over the {len(ok)} unlearnt trials' final evaluations, Model Utility ranges {mu.min():.3g} – "
            f"{mu.max():.3g} and Forget Quality {fq.min():.3g} – {fq.max():.3g} (≥ {fq_level} in {len(hi)} trials"
            + (f", whose Utility is {hi[UTILITY].min():.3f} – {hi[UTILITY].max():.3f}" if len(hi) else "")
            + f"); over all {len(e)} evaluations along the paths, Model Utility {e['model_utility'].min():.3g} – "
              f"{e['model_utility'].max():.3g} and Forget Quality {e['forget_quality'].min():.3g} – "
              f"{e['forget_quality'].max():.3g}.")


def _models(meta: dict) -> pd.DataFrame:
    rows = []
    for label, key in (("No-unlearn (target)", "no_unlearn"), ("Retrain (retain only)", "retrain")):
        m = meta.get(key) or {}
        rows.append({"model": label, **{k: f"{v:.3g}" for k, v in m.items()}})
    return pd.DataFrame(rows)


def section(root: Path, prose: str = "", fig_dir: Path | None = None) -> list[str]:
    """The round-2 part of docs/reproduction.md (empty when its sweeps are absent); its figure is
    written to ``fig_dir`` (the page's figure folder, named "reproduction" beside the page)."""
    root = Path(root)
    if not all((root / n).is_dir() for n in SWEEPS):
        return []
    trials, steps, evals, directions = load_paths(root)
    start = _start(trials)
    if fig_dir is not None:
        from analysis import plots

        plots.save(plots.matched_paths(mean_paths(evals, start), LEVELS, directions), Path(fig_dir) / "round2_paths.png")
    meta = json.loads((root / "meta.json").read_text()).get("round2", {})
    verdicts = [claim_matched(evals, start, directions), claim_autolr_tuned(trials),
                claim_autolr(trials, CLAIM_3_START)]
    lines = ["", "# Round 2: the paper's regime (issue 19)", "", prose, "", "## Round 2 verdicts", "",
             "| claim | verdict | evidence |", "|---|---|---|"]
    lines += [f"| {v.claim} | **{v.verdict}** | {v.evidence} |" for v in verdicts]
    lines += ["", "## Round 2 rules and when they were fixed", "", RULES_FIXED, "",
              "## Round 2 target and Retrain model", "", render(_models(meta).set_index("model"), "markdown"), "",
              weak_metrics_range(trials, evals)]
    for v in verdicts:
        lines += ["", f"## {v.claim}", "", f"**{v.verdict}** — {v.evidence}.", "",
                  render(v.table.set_index(v.table.columns[0]), "markdown")]
        if v.claim == CLAIM_2:
            mu = matched(evals, start, "model_utility", directions).drop(columns=["_sign", "NGDiff better"])
            lines += ["", "![Round 2 paths](reproduction/round2_paths.png)"] if fig_dir is not None else []
            lines += ["", "Utility is ROUGE-L recall on the retain questions (utility_r, as round 1); each cell: seed "
                      "mean ± 95 % interval (seeds that reached the level). The same with TOFU's Model Utility "
                      "(it decides nothing):", "", render(mu.set_index("setting"), "markdown"), "",
                      "NGDiff's implied weight c_t = ‖g_F‖ / (‖g_R‖ + ‖g_F‖) over its steps (every seed):", "",
                      render(ct_table(trials, steps).set_index("rate"), "markdown")]
        if v.claim == CLAIM_3:
            lines += ["", "Where AutoLR takes η (multiples of each trial's starting rate):", "",
                      render(autolr_rates(trials, steps).set_index("AutoLR"), "markdown")]
    if meta.get("targets"):
        lines += ["", "## Round 2 cost", "", render(cost_table(trials, meta).set_index("part"), "markdown")]
    return lines
