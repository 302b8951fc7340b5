"""One self-contained HTML page for a sweep: every figure (PNG, base64-embedded) and table.

``build_report(results)`` returns the page as a string; ``write_report(folder, out)`` loads a
sweep folder and writes it. Everything shown is computed by the other analysis modules; this
file only lays it out. The page needs no network and no files beside it. With
``interactive=True`` Figs. 1, 4, 5, 6, 7 are plotly figures (analysis.interactive) drawn from the
same tables, with plotly.js inlined once.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import figures as F
from analysis import plots as P
from analysis.agreement import agreement_table
from analysis.frontier import frontier_table
from analysis.attainment import attainment_surfaces
from analysis.budget import budget_curves, trials_to_reach
from analysis.hypervolume import hypervolume_table, nadir_point
from analysis.mixing import is_mix, mixing_curves
from analysis.robustness import (DEEP, RETAIN_LOST, SHALLOW, has_robustness, relearning_curve, robustness_metric,
                                 robustness_table)
from analysis.results import (Results, departure_notes, display_names, load_results, resolve_objectives,
                              setting_names)
from analysis.tables import TABLE_METRICS, autolr_table, objective_rule_table, paper_table, render
from analysis.theorem5 import RTOL, failures, lemma4_violations, step_checks, summarize

__all__ = ["build_report", "write_report"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:24px auto;
padding:0 16px;color:#222}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin-top:20px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th.t,td.t,tbody th{text-align:left}thead th{background:#f4f4f4}
tbody tr:nth-child(even){background:#fafafa}
.wrap{overflow-x:auto}.note{color:#555;font-size:13px}.bad{color:#b00020;font-weight:600}.good{color:#1b7f3b;font-weight:600}
img{max-width:100%;height:auto;border:1px solid #eee;margin:6px 0}
nav a{margin-right:12px}code{background:#f4f4f4;padding:0 3px}
"""


def _esc(s: object) -> str:
    return html.escape(str(s))


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _table(df: pd.DataFrame, pct: tuple[str, ...] = (), right: tuple[str, ...] = ()) -> str:
    """A DataFrame as an HTML table; ``pct`` columns as percentages; numbers (and ``right``)
    right-aligned, text left-aligned, header with its column."""
    if df.empty:
        return '<p class="note">(none)</p>'
    num = {c: c in pct or c in right or (pd.api.types.is_numeric_dtype(df[c])
                                         and not pd.api.types.is_bool_dtype(df[c])) for c in df.columns}
    cls = {c: "" if num[c] else ' class="t"' for c in df.columns}
    head = "".join(f"<th{cls[c]}>{_esc(c)}</th>" for c in df.columns)
    body = []
    for rec in df.itertuples(index=False, name=None):
        cells = []
        for c, v in zip(df.columns, rec):
            text = (f"{100 * v:.1f} %" if isinstance(v, (float, np.floating)) and np.isfinite(v) else "–") \
                if c in pct else _fmt(v)
            cells.append(f"<td{cls[c]}>{_esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _img(fig, alt: str) -> str:
    data = base64.b64encode(P.png_bytes(fig)).decode()
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _figure(ix, name: str, data_args: tuple, alt: str, **kw) -> str:
    """Figure `name` drawn from the same table either way: a PNG (analysis.plots) or, with ``ix``
    (analysis.interactive), an interactive plotly figure embedded as JSON under id ``alt``'s slug."""
    if ix is not None:
        return _embed(getattr(ix, name)(*data_args, **kw), alt)
    return _img(getattr(P, name)(*data_args, **kw), alt)


def _embed(fig, alt: str) -> str:
    from analysis.interactive import embed

    return embed(fig, "plot-" + re.sub(r"[^a-z0-9]+", "-", alt.lower()).strip("-"))  # "Fig. 1" → plot-fig-1


def _planes(results: Results) -> list[tuple[str, ...]]:
    planes = results.default_planes()
    t = results.trials
    return [p for p in planes if all(m in t and pd.to_numeric(t[m], errors="coerce").notna().any() for m in p)]


def _arrowed(names, directions) -> str:
    arrows = {"min": "↓", "max": "↑", "zero": "→0"}
    return " vs ".join(f"{n} {arrows.get(directions.get(n, ''), '')}".rstrip() for n in names)


def _daggered(r: Results, names) -> dict[str, str]:
    """Column renames that mark with † each metric whose values depart from the reference tool's."""
    found = r.departures
    return {n: f"{n} †" for n in names if found.get(n.strip("|"))}


def _departures(r: Results, names) -> str:
    """The † notes of ``names`` (analysis.results.departure_notes), beside the numbers they qualify."""
    lines = departure_notes([n.split(":")[0] for n in names], r.departures)
    return "".join(f"<p class='note'>{_esc(line)}</p>" for line in lines)


def _has_baseline(r: Results) -> bool:
    """Whether the sweep has an ok No-unlearn trial: the default reference point of the volumes."""
    t = r.trials
    return "combiner" in t and bool(((t["combiner"] == "no-unlearn") & (t.get("status") == "ok")).any())


# ------------------------------------------------------------------------------------ sections
def _summary(r: Results) -> str:
    t = r.trials
    counts = t["status"].value_counts().to_dict() if "status" in t else {}
    status = ", ".join(f"{v} {k}" for k, v in counts.items())
    ver = t["pareto_version"].dropna().iloc[0] if "pareto_version" in t and t["pareto_version"].notna().any() else "?"
    opt = ", ".join(sorted(t["optimizer"].dropna().unique())) if "optimizer" in t else "?"
    n_steps = sorted(int(s) for s in t["steps"].dropna().unique() if s > 0) if "steps" in t else []
    steps = ", ".join(map(str, n_steps)) or "?"
    return (f"<p>Sweep <b>{_esc(r.name)}</b> · dataset <b>{_esc(r.dataset or 'unknown')}</b> · "
            f"{len(t)} trials ({_esc(status)}) · optimizer {_esc(opt)} · {_esc(steps)} unlearning steps · "
            f"pareto {_esc(ver)}<br><span class='note'>results: <code>{_esc(r.folder)}</code> · "
            f"generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</span></p>")


def _frontier_section(r: Results, planes) -> str:
    out = ['<h2 id="frontier">Frontier (Definition 1)</h2>',
           '<p class="note">A trial is dominated when another is at least as good on every objective and '
           'strictly better on one; equal points do not dominate each other. Rank 0 = non-dominated; '
           'rank r = non-dominated once ranks &lt; r are removed. Trials that failed, diverged, were '
           'stopped or have a missing/NaN value are left out and listed.</p>']
    if r.reference_metrics:
        shown = ", ".join(f"{k} = {v:.4g}" for k, v in sorted(r.reference_metrics.items()))
        out.append(f"<p class='note'><b>Retrain</b> (the retain-only model of target.retain_model, evaluated "
                   f"with the sweep's metrics; not a trial): {_esc(shown)}</p>")
    tables = []
    trials = r.trials.assign(setting=setting_names(r.trials))
    for plane in planes:
        tr, objs = resolve_objectives(trials, list(plane), r.directions)
        t = frontier_table(tr, objs)
        tables.append(t)
        cols = ["trial_id", "setting", *[c for c, _ in objs], "rank", "dominated_by"]
        out.append(f"<h3>{_esc(_arrowed(plane, r.directions))}</h3>")
        out.append(_table(t.rows[cols].rename(columns=_daggered(r, [c for c, _ in objs]))))
        out.append(_departures(r, plane))
        if len(t.excluded):
            ex = t.excluded[["trial_id", "reason"]]
            out.append("<p class='note'>Excluded:</p>" + _table(ex))
    if tables:
        out.append(_img(P.frontier(tables, r.directions), "frontier plots"))
    return "\n".join(out)


def _hv_section(r: Results, planes) -> str:
    out = ['<h2 id="hv">Hypervolume</h2>']
    if not _has_baseline(r):
        return out[0] + "<p class='note'>No No-unlearn trial in this sweep: no default reference point.</p>"
    out.append("<p class='note'>Area (volume for 3 objectives) that a method's trials dominate up to a "
               "reference point. <b>vs No-unlearn</b> (the default): measured to the No-unlearn model's "
               "point, so it counts only trials better than not unlearning on every objective at once — "
               "a trial that unlearns but loses some retain utility adds nothing. <b>vs nadir</b>: "
               "measured to the worst value of each objective over the sweep's trials, so every "
               "non-dominated trial adds something. Per seed, then the mean over seeds with a 95 % "
               "percentile bootstrap CI over seeds (one seed: a zero-width interval).</p>")
    for plane in planes:
        tr, objs = resolve_objectives(r.trials, list(plane), r.directions)
        hv = hypervolume_table(tr, objs)
        nadir = hypervolume_table(tr, objs, reference=nadir_point(tr, objs))
        tab = pd.DataFrame({
            "method": display_names(hv["method"].where(hv["method"] != "all", "all")),
            "vs No-unlearn": hv["hv"], "CI (No-unlearn)": _ci(hv),
            "vs nadir": nadir["hv"], "CI (nadir)": _ci(nadir),
            "seeds": hv["n_seeds"], "trials": hv["n_trials"]})
        refs = "; ".join(f"{name}: " + ", ".join(f"{k} = {v:.4g}" for k, v in t.attrs["reference"].items())
                         for name, t in (("No-unlearn", hv), ("nadir", nadir)))
        out.append(f"<h3>{_esc(_arrowed(plane, r.directions))}</h3><p class='note'>reference {_esc(refs)}</p>")
        out.append(_table(tab, right=("CI (No-unlearn)", "CI (nadir)")))
    return "\n".join(out)


_BUDGET_NOTE = ("<p class='note'>Is a method better, or just easier to tune? For k = 1…n trials drawn at random "
                "from a method's n trials (200 random orders), the hypervolume (vs No-unlearn) of their front: "
                "the mean and the central 90 % of the orders. <b>k for 90 %</b>: the fewest trials whose mean "
                "reaches 90 % of the method's own volume with all n.</p>")
_EAF_NOTE = ("<p class='note'>Each seed of a method gives one front (its trials of that seed). The 50 % "
             "attainment surface is reached by at least half of the seeds' fronts: the median front, drawn "
             "per method. Compare two methods point by point with <code>pareto frontier --eaf A,B</code>.</p>")


def _budget_section(r: Results, planes) -> str:
    """Hypervolume against trials spent, per method (analysis.budget)."""
    out = ['<h2 id="budget">Tuning budget</h2>', _BUDGET_NOTE]
    if not _has_baseline(r):
        return out[0] + "<p class='note'>No No-unlearn trial in this sweep: no reference point.</p>"
    for plane in [p for p in planes if len(p) == 2]:
        tr, objs = resolve_objectives(r.trials, list(plane), r.directions)
        curves = budget_curves(tr, objs)
        if curves.empty:
            continue
        need = trials_to_reach(curves, 0.9)
        tab = pd.DataFrame({"method": display_names(need["method"]), "trials": need["n_trials"],
                            "k for 90 %": need["k_needed"], "volume (all trials)": need["hv_final"]})
        out.append(f"<h3>{_esc(_arrowed(plane, r.directions))}</h3>" + _table(tab))
        out.append(_img(P.budget(curves, _arrowed(plane, r.directions)), "tuning budget curves"))
    return "\n".join(out)


def _attainment_section(r: Results, planes) -> str:
    """Median attainment surfaces across seeds, per method (analysis.attainment)."""
    out = ['<h2 id="eaf">Attainment across seeds</h2>', _EAF_NOTE]
    seeds = r.trials.groupby("method")["seed"].nunique() if {"method", "seed"} <= set(r.trials) else pd.Series()
    if seeds.empty or seeds.max() < 2:
        return "\n".join(out) + ("<p class='note'>Every method ran with one seed: its surfaces are its front. "
                                 "Add seeds (search.space.seed: [0, 1, 2]) to see where fronts land across "
                                 "seeds.</p>")
    for plane in [p for p in planes if len(p) == 2]:
        tr, objs = resolve_objectives(r.trials, list(plane), r.directions)
        tr = tr[tr["method"].isin(seeds[seeds >= 2].index) & (tr.get("combiner") != "no-unlearn")]
        surf = attainment_surfaces(tr, objs, percentiles=(50,))
        if surf.empty:
            continue
        out.append(f"<h3>{_esc(_arrowed(plane, r.directions))}</h3>")
        out.append(_img(P.attainment(surf, [c for c, _ in objs], r.directions), "median attainment surfaces"))
    return "\n".join(out)


_PATHS_NOTE = ("<p class='note'>Every evaluation (trial, step) of evals.parquet as a point, named "
               "<code>trial@step</code>: the front a researcher gets by keeping the best checkpoint, not "
               "only the final one. <b>mid-path</b>: a front point that is not its trial's last evaluation — a "
               "trial stopped there would have been on the front. Same as <code>pareto frontier --points "
               "evals</code>.</p>")
_FRONT_ROWS = 40  # front points listed per plane; the rest are one `pareto frontier --points evals` away


def _paths_section(r: Results, planes) -> str:
    """The training-path frontier (analysis.paths): the front over every evaluation, per plane."""
    from analysis.paths import POINT_COL, STEP_COL, path_lines, path_points

    out = ['<h2 id="paths">Training paths</h2>', _PATHS_NOTE]
    if r.evals.empty or "eval_step" not in r.evals:
        return "\n".join(out) + "<p class='note'>No evals.parquet: no evaluation to place.</p>"
    pts = path_points(r.trials, r.evals)
    if pts.single_evaluation:
        return "\n".join(out) + ("<p class='note'>Every trial has one evaluation (eval.every was 0): the path "
                                 "front is the final front above. Set eval.every to see the paths.</p>")
    settings = dict(zip(r.trials["trial_id"], setting_names(r.trials)))  # once per trial, not per point
    points = pts.points.assign(setting=pts.points["trial_id"].map(settings))
    last = points.groupby("trial_id")[STEP_COL].max()
    panels = []
    for plane in planes:
        tr, objs = resolve_objectives(points, list(plane), r.directions)
        t = frontier_table(tr, objs, id_col=POINT_COL)
        panels.append((t, path_lines(t)))
        front = t.rows[~t.rows["dominated"]]
        mid = front[STEP_COL] < front["trial_id"].map(last)
        shown = front.assign(**{"mid-path": mid})[[POINT_COL, "setting", *[c for c, _ in objs], "mid-path"]]
        out.append(f"<h3>{_esc(_arrowed(plane, r.directions))}</h3>")
        out.append(f"<p class='note'>{len(front)} non-dominated of {len(t.rows)} evaluation points from "
                   f"{t.rows['trial_id'].nunique()} trials; {int(mid.sum())} mid-path, from "
                   f"{front.loc[mid, 'trial_id'].nunique()} trials.</p>")
        out.append(_table(shown.head(_FRONT_ROWS)))
        if len(shown) > _FRONT_ROWS:
            out.append(f"<p class='note'>… {len(shown) - _FRONT_ROWS} more: <code>pareto frontier --results DIR "
                       f"--points evals</code></p>")
    if panels:
        out.append(_img(P.paths(panels, r.directions), "training paths"))
    return "\n".join(out)


_PICKS_NOTE = ("<p class='note'>One evaluation (trial@step) per method by each selection rule of "
               "<code>pareto pick</code> (their definitions: docs/pick.md), over every evaluation of the "
               "trials that ended ok; No-unlearn is the start, not a pick.</p>")


def _picks_section(r: Results) -> str:
    """Each selection rule's pick per method (analysis.pick), on the first plane with values."""
    from analysis.pick import at_forget, candidates, common_level, default_plane, first_below, fq_mu, knee

    out = ['<h2 id="picks">Picks per rule</h2>', _PICKS_NOTE]
    table = candidates(r.trials, r.evals)
    if "method" not in table or table.empty:
        return "\n".join(out) + "<p class='note'>No trial ended ok.</p>"
    base = table[table["combiner"] == "no-unlearn"] if "combiner" in table else table.iloc[:0]
    table = table.drop(base.index)
    if table.empty:
        return "\n".join(out) + "<p class='note'>No unlearning trial ended ok.</p>"
    table = table.assign(point=[f"{t}@{int(s)}" for t, s in zip(table["trial_id"], table["eval_step"])],
                         method=display_names(table["method"]))
    try:
        plane = default_plane(r.default_planes(), table)
    except ValueError:
        return "\n".join(out) + "<p class='note'>No plane of these results has values.</p>"
    names = [n.split(":")[0] for n in plane]
    dirs = {n: r.directions.get(n, "min") for n in names}

    def show(df: pd.DataFrame, extra: list[str], metrics: bool = True) -> str:
        if df.empty:
            return "<p class='note'>(none)</p>"
        df = df.assign(point=[f"{t}@{s:g}" if float(s).is_integer() else f"{t}@≈{s:.1f}"  # at-forget interpolates
                              for t, s in zip(df["trial_id"], df["eval_step"].astype(float))])
        cols = ["method", "point", *(names if metrics else []), *extra]
        return _table(df[list(dict.fromkeys(c for c in cols if c in df))])

    out.append(f"<h3>knee of {_esc(_arrowed(plane, r.directions))}</h3>")
    out.append(show(knee(table, list(dirs.items()), by="method"), ["knee_distance", "front_size"]))
    forget, utility = names[0], names[-1]
    start = float(pd.to_numeric(base[forget], errors="coerce").iloc[0]) if len(base) and forget in base else None
    level = common_level(table, forget, dirs[forget], start=start)
    if level is not None:
        first = base.sort_values("eval_step").head(1) if len(base) else None
        at = at_forget(table, level, forget, utility, r.directions, by="method", start=first)
        out.append(f"<h3>at-forget={level:.4g}: {_esc(utility)} at matched {_esc(forget)}</h3>"
                   f"<p class='note'>{_esc(forget)} = {level:.4g} is the deepest level every method that forgets "
                   f"at all reaches (the worst of their best values); each trial's path starts at the target's "
                   f"evaluation. Mean over seeds of each seed's best, 95 % t interval. Another level: "
                   f"<code>pareto pick --results DIR --rule at-forget=X</code>.</p>")
        at = at.rename(columns={"utility_mean": f"{utility} (mean)"})
        out.append(show(at, [f"{utility} (mean)", "ci_low", "ci_high", "n_seeds", "seeds_reached", "reached"],
                        metrics=False))
    if all(m in table and table[m].notna().any() for m in ("forget_quality", "model_utility")):
        out.append("<h3>fq-mu: max ½(forget_quality + model_utility)</h3>")
        out.append(show(fq_mu(table, by="method"), ["forget_quality", "model_utility", "fq_mu"]))
    if "knowmem_f" in table and table["knowmem_f"].notna().any():
        ref = r.reference_metrics.get("knowmem_f")
        out.append("<h3>first-below-retain: first knowmem_f ≤ Retrain's</h3>")
        if ref is None:
            out.append("<p class='note'>The sweep recorded no Retrain model's metrics (target.retain_model: true "
                       "records them); <code>pareto pick --rule first-below-retain --reference VALUE</code> takes "
                       "one.</p>")
        else:
            out.append(f"<p class='note'>Retrain's knowmem_f = {ref:.4g}, evaluated with the sweep's metrics.</p>")
            out.append(show(first_below(table, "knowmem_f", ref, utility, r.directions, by="method"),
                            ["knowmem_f", "reached"]))
    return "\n".join(out)


def _mixing_section(r: Results, planes) -> str:
    """The mixing curves `pareto mix` added (analysis.mixing), on the first 2-objective plane."""
    mixed = is_mix(r.trials)
    if not mixed.any():
        return ""
    out = ['<h2 id="mix">Model mixing</h2>',
           "<p class='note'>θ<sub>α</sub> = (1 − α)·θ<sub>target</sub> + α·θ<sub>unlearned</sub>, evaluated by "
           "<code>pareto mix</code> with the sweep's own evaluation: α = 0 is the target, α = 1 the trial at its "
           "kept step. <b>on the front</b>: the mixed point is non-dominated among every trial's final point "
           "and every mixed point of the plane.</p>"]
    plane = next((p for p in planes if len(p) == 2), None)
    if plane is None:
        return "\n".join(out) + "<p class='note'>No 2-objective plane with values.</p>"
    tr, objs = resolve_objectives(r.trials, list(plane), r.directions)
    front = frontier_table(tr, objs)
    on_front = dict(zip(front.rows["trial_id"], ~front.rows["dominated"]))
    curves = mixing_curves(tr, [c for c, _ in objs])
    curves["on the front"] = curves["trial_id"].map(on_front).fillna(False).astype(bool)
    out.append(f"<h3>{_esc(_arrowed(plane, r.directions))}</h3>")
    out.append(_table(curves.drop(columns=["of", "step"])))
    base = tr[(tr.get("combiner") == "no-unlearn")] if "combiner" in tr else tr.iloc[:0]
    sources = tr[tr["trial_id"].isin(set(curves["of"]))]
    others = tr[~is_mix(tr) & (tr.get("combiner") != "no-unlearn")]
    out.append(_img(P.mixing(curves, [c for c, _ in objs], others, base, sources, r.directions), "mixing curves"))
    return "\n".join(out)


def _ci(t: pd.DataFrame) -> list[str]:
    return [f"[{lo:.4g}, {hi:.4g}]" for lo, hi in zip(t["ci_lo"], t["ci_hi"])]


def _paper_tables(r: Results) -> str:
    metrics = TABLE_METRICS.get(r.dataset or "tofu", TABLE_METRICS["tofu"])
    t1 = paper_table(r.trials, metrics, r.directions)
    t3 = autolr_table(r.trials, metrics, r.directions)
    n = {"tofu": "Table 1", "muse": "Table 2"}.get(r.dataset or "", "Table 1")
    by_objective = []
    plane = next((p for p in _planes(r) if len(p) == 2 and "loss_f_eval" not in p), None)
    if plane and not (t := objective_rule_table(r.trials, *plane)).empty:
        cells = _esc(_arrowed(plane, r.directions).replace(" vs ", " / "))
        by_objective = [f"<h3>Forget objectives × rules — {cells}, seed means of the final values</h3>", f'<div class="wrap">{render(t, "html")}</div>']
    return "\n".join([
        '<h2 id="tables">Tables like the paper\'s</h2>',
        f"<h3>{n} — methods as columns (seed means)</h3>", f'<div class="wrap">{render(t1, "html")}</div>',
        "<h3>Table 3 — fixed η → AutoLR</h3>", f'<div class="wrap">{render(t3, "html")}</div>',
        *by_objective,
        _departures(r, [m for m in metrics if isinstance(m, str)]),
    ])


def _robustness_section(r: Results) -> str:
    """eval.robustness's attacks (analysis.robustness): before / after per setting, and the verdict."""
    metric = robustness_metric(r.trials)
    tab = robustness_table(r.trials, metric, r.directions.get(metric, "min"))
    return "\n".join([
        '<h2 id="robustness">Robustness</h2>',
        f"<p class='note'>{_esc(_arrowed((metric,), r.directions))} on the evaluated half of the forget set "
        "(the other half is what relearning trains on), before and after each attack on a copy of the final "
        "model: <b>relearn</b> (fine-tuning on the relearn half), <b>quantised</b> (per-channel round-to-nearest "
        "weights), <b>paraphrased</b> (the paraphrased questions); the first column is the whole forget set. "
        "<code>undone</code>: the share of the forgetting (the gap to No-unlearn) an attack undoes, each "
        "measured against No-unlearn under the same attack (<code>±</code>: its standard deviation over seeds); "
        "<b>deep</b>: relearning and quantisation each "
        f"undo less than {DEEP:.0%} of it, <b>shallow</b>: one undoes more than {SHALLOW:.0%} (the paraphrase's "
        "share is shown, not read into the verdict). <code>kept</code>: the share of No-unlearn's utility the "
        f"model keeps; <b>retain lost</b> below {RETAIN_LOST:.0%} of it: nothing comes back from a wrecked model "
        "either, so read such a verdict with it. Seed means; docs/robustness.md.</p>",
        _verdicts(tab),
        _table(tab),
        _relearning_curve(r, metric),
    ])


def _relearning_curve(r: Results, metric: str) -> str:
    """eval.robustness.relearn_steps as a list: the metric after each K, with the share undone."""
    curve = relearning_curve(r.trials, metric, r.directions.get(metric, "min"))
    if curve.empty:
        return ""
    cell = curve.apply(lambda row: f"{row['value']:.3f}" + ("" if pd.isna(row.get("undone", np.nan))
                                                            else f" ({row['undone']:.0%})"), axis=1)
    wide = (curve.assign(cell=cell).pivot(index="setting", columns="K", values="cell")
            .reindex(index=list(dict.fromkeys(curve["setting"]))))
    wide.columns = [f"K={k}" for k in wide.columns]
    return "\n".join([
        f"<h3>Relearning curve — {_esc(_arrowed((metric,), r.directions))} after K relearning steps</h3>",
        "<p class='note'>On the evaluated half, seed means; in brackets the share of the forgetting undone "
        "after K steps, against No-unlearn relearnt the same K steps (K = 0: the model as it is). The verdict "
        "above reads the last K: a verdict belongs to its K and rate.</p>",
        _img(P.relearning(curve, metric, r.directions), "Relearning curve"),
        _table(wide.reset_index()),
    ])


def _verdicts(tab) -> str:
    """One line per verdict of the robustness table: the settings that got it."""
    if tab.empty or "forgetting" not in tab:
        return ""
    groups = tab.dropna(subset=["forgetting"]).groupby("forgetting", sort=False)["setting"].apply(list)
    rank = {"deep": 0, "partial": 1, "shallow": 2}
    order = sorted(groups.index, key=lambda v: (rank.get(v.split(",")[0], 3), v))
    return "<ul>" + "".join(f"<li><b>{_esc(v)}</b>: {_esc(', '.join(groups[v]))}</li>" for v in order) + "</ul>"


def _theorem5_section(r: Results, rtol: float) -> str:
    out = ['<h2 id="theorem5">Theorem 5, step by step</h2>']
    if r.steps.empty:
        return out[0] + "<p class='note'>No steps.parquet: nothing to check.</p>"
    checks = step_checks(r.steps, rtol=rtol)
    summ = summarize(checks, r.trials)
    summ.insert(0, "method name", display_names(summ["method"]))
    viol = lemma4_violations(checks, r.trials)
    ng = checks[checks["trial_id"].isin(r.trials.loc[r.trials["combiner"] == "ngdiff", "trial_id"])]
    if len(ng):
        verdict = (f"<p class='good'>Lemma 4 holds on {len(ng) - len(viol)}/{len(ng)} NGDiff steps.</p>"
                   if viol.empty else
                   f"<p class='bad'>Lemma 4 is violated on {len(viol)} of {len(ng)} NGDiff steps — a bug.</p>")
    else:
        verdict = "<p class='note'>No NGDiff trial: Lemma 4 not checked.</p>"
    out += [verdict, f"""<p class='note'>Each cell: steps passing / steps where the check could be measured.</p>
<ul class='note'>
<li><b>eq5</b> — paper Eq. 5, g_R·d ≥ 0 ≥ g_F·d, for the direction d = w_R·g_R − w_F·g_F handed to the
optimizer (relative tolerance {rtol:g} of the two terms each dot product is the difference of, for float
rounding). Lemma 4: always true for NGDiff.</li>
<li><b>lr_bound</b> — Theorem 5 (2): 0 &lt; η &lt; 2·g_Rᵀu / uᵀH_R u, on the steps where AutoLR measured
g_Rᵀu and uᵀH_R u along the optimizer's real step u and uᵀH_R u &gt; 0 (u = d for SGD; Adam's
preconditioned d for Adam). Fixed-η trials are never probed: “–”.</li>
<li><b>descent_r</b> — g_Rᵀu &gt; 0 on probed steps: the real step descends on L_R.</li>
<li><b>improved</b> — L_R fell and L_F rose on the step's own batches, both re-measured after the update;
<b>improved_r</b> / <b>improved_f</b> each alone.</li>
<li>With Adam, Eq. 5 is a statement about d, while θ moves along u ≠ d: Lemma 4 does not guarantee
descent_r or improved there.</li></ul>""",
            _table(_compact(summ), right=_SHOWN_CHECKS)]
    cols = {"eq5": ["dot_r_upd", "dot_f_upd", "w_r", "w_f", "gram_rr", "gram_rf", "gram_ff"],
            "lr_bound": ["lr", "autolr_gd", "autolr_dhd", "bound_eta", "autolr_accepted"],
            "improved": ["lr", "loss_r", "loss_r_after", "loss_f", "loss_f_after"]}
    lab = r.trials.assign(setting=setting_names(r.trials))[["trial_id", "setting"]]
    for check, title in (("eq5", "Steps where Eq. 5 fails"),
                         ("lr_bound", "Steps where η breaks the bound (bound_eta = 2·g_Rᵀu/uᵀH_R u)"),
                         ("improved", "Steps without simultaneous improvement")):
        f = failures(checks, check)
        if f.empty:
            out.append(f"<h3>{title}</h3><p class='note'>none</p>")
            continue
        f = f.merge(lab, on="trial_id", how="left")
        shown = f[["setting", "trial_id", "step", *[c for c in cols[check] if c in f]]].head(25)
        more = f"<p class='note'>… {len(f) - 25} more</p>" if len(f) > 25 else ""
        out.append(f"<h3>{title} ({len(f)})</h3>" + _table(shown) + more)
    return "\n".join(out)


_SHOWN_CHECKS = ("eq5", "lr_bound", "descent_r", "improved", "improved_r", "improved_f")


def _compact(summ: pd.DataFrame) -> pd.DataFrame:
    """One cell per check: "passed/measured (percent)"; "–" where never measured."""
    out = summ[["method name", "lr_rule", "trials", "steps"]].copy()
    for check in _SHOWN_CHECKS:
        n = summ[f"{check}_n"].astype(int)
        frac = summ[check]
        out[check] = [f"{round(f * k)}/{k} ({100 * f:.0f} %)" if k else "–" for f, k in zip(frac, n)]
    return out


def _agreement_section(r: Results) -> str:
    if r.steps.empty:
        return ""
    tab = agreement_table(r.steps, r.trials)
    tab.insert(0, "method name", display_names(tab["method"]))
    return "\n".join([
        '<h2 id="agreement">Direction agreement with NGDiff</h2>',
        "<p class='note'>cos between each step's update d = w_R·g_R − w_F·g_F and NGDiff's "
        "g_R/‖g_R‖ − g_F/‖g_F‖, from the Gram matrix. IMTL-G, MGDA-l2 and Nash-MTL give the same "
        "direction (cos = 1); <code>at_1</code> = fraction of steps with cos ≥ 0.999.</p>",
        _table(tab.drop(columns=["method"]), pct=("at_1",)),
        _img(P.agreement(F.agreement_data(r.steps, r.trials)), "direction agreement"),
    ])


def _fig1_section(r: Results, planes, ix=None) -> str:
    return "\n".join([
        '<h2 id="fig1">Fig. 1 — the trade-off</h2>',
        "<p class='note'>Static-c GDiff joined by a dashed line in c order (one line per lr setting); "
        "every other method a marker, filled for AutoLR and hollow for a fixed η; ★ No-unlearn.</p>",
        _figure(ix, "fig1", (F.fig1_data(r.trials, planes), r.directions), "Fig. 1")])


def _curves_section(r: Results, planes, ix=None, say=lambda _msg: None) -> str:
    metrics = [m for p in planes[1:] for m in p] or ["rouge_f", "utility_r"]
    metrics = list(dict.fromkeys([*metrics, "loss_f_eval", "loss_r_eval"]))
    out = []
    if not r.steps.empty:
        say("Fig. 5: gradient norms, c_t and η over steps")
        out += ['<h2 id="fig5">Fig. 5 — gradient norms, c_t and η</h2>',
                "<p class='note'>NGDiff trials (all trials when the sweep has none); solid: AutoLR, dashed: fixed η.</p>",
                _figure(ix, "fig5", (F.fig5_data(r.steps, r.trials),), "Fig. 5")]
    every = "evaluations at the steps in evals.parquet"
    say(f"Fig. 6: {len(metrics)} metrics and losses over steps, per method")
    out += ['<h2 id="fig6">Fig. 6 — metrics and losses over steps, per method</h2>',
            f"<p class='note'>Top: {every}, each curve starting at the No-unlearn model (step 0). "
            "Bottom: L_F and L_R on each step's training batches (steps.parquet). Solid: AutoLR, dashed: fixed η.</p>",
            _figure(ix, "curves", (F.curves_data(r.evals, r.steps, r.trials, metrics), "Fig. 6 — every method",
                                   r.directions), "Fig. 6")]
    ng = r.trials["combiner"].eq("ngdiff").any() if "combiner" in r.trials else False
    which = ["ngdiff"] if ng else None
    say(f"Fig. 7: {'NGDiff' if ng else 'every method'} per learning rate")
    out += ['<h2 id="fig7">Fig. 7 — per learning rate</h2>',
            f"<p class='note'>{'NGDiff' if ng else 'Every method'} at each learning-rate setting.</p>",
            _figure(ix, "curves", (F.curves_data(r.evals, r.steps, r.trials, metrics, combiners=which),
                                   f"Fig. 7 — {'NGDiff' if ng else 'all methods'} per learning rate", r.directions),
                    "Fig. 7", color_by="setting"),
    ]
    return "\n".join(out)


def _fig4_section(r: Results, ix=None) -> str:
    head = '<h2 id="fig4">Fig. 4 — the losses along one step\'s update</h2>'
    if r.probe is None or r.probe.empty:
        return head + ("<p class='note'>Not probed yet: the landscape along a step's update needs the model "
                       "at that step, which the results do not hold. <code>pareto probe --results DIR --trial TID "
                       "--step K</code> rebuilds it (replaying the trial from the target) and adds "
                       "<code>probe.parquet</code> here; or <code>pareto report --probe TID:K</code>.</p>")
    summ = F.fig4_summary(r.probe)
    return "\n".join([
        head,
        "<p class='note'>L_R and L_F at θ − η·u on the step's own batches (and on every example when probed "
        "with <code>--full</code>), u the step the optimizer took (u = d for SGD, Adam's preconditioned d for "
        "Adam), θ the model before the step, rebuilt by replaying the trial. ✕: the values the trial recorded "
        "before and after its step — the curve passes through them when the rebuild is exact. Dashed: the "
        "parabola L₀ − η·g_Rᵀu + ½η²·uᵀH_R u (AutoLR's fit where it probed at that step, else the same "
        "three-point formula at ±η_in); its minimiser η* is the step AutoLR would take here (and does at the "
        "steps it probes). The table: the probe minus what the trial recorded (rec.) at η = 0 and at the η it "
        "used (≈ 0: the rebuild is exact), the rebuilt step's largest relative difference from its recorded "
        "row, and the slope of L_R at 0 against −g_R·u.</p>",
        _table(summ.drop(columns=["label", "optimizer"])),
        _figure(ix, "fig4", (F.fig4_data(r.probe), summ), "Fig. 4"),
    ])


def build_report(results: Results, rtol: float = RTOL, interactive: bool = False, log=None) -> str:
    """The whole page as one HTML string. ``interactive``: Figs. 1, 4, 5, 6, 7 as plotly figures
    (plotly.js inlined once; needs plotly), the other figures stay PNG. ``log``: called with one
    line before each table or figure is computed and drawn (None: quiet)."""
    say = log or (lambda _msg: None)
    ix = None
    if interactive:
        from analysis import interactive as ix
    planes = _planes(results)
    robust = has_robustness(results.trials)
    shown = "; ".join(_arrowed(p, results.directions) for p in planes) or "none with values"
    nav = " ".join(f'<a href="#{a}">{t}</a>' for a, t in [
        ("frontier", "Frontier"), ("paths", "Paths"), ("picks", "Picks"), ("hv", "Hypervolume"),
        ("budget", "Budget"), ("eaf", "Attainment"), ("fig1", "Fig. 1"), ("tables", "Tables"),
        ("theorem5", "Theorem 5"), ("agreement", "Agreement"), ("fig5", "Fig. 5"), ("fig6", "Fig. 6"),
        ("fig7", "Fig. 7"), ("fig4", "Fig. 4"), *([("robustness", "Robustness")] if robust else [])])
    parts = [f"<h1>pareto report — {_esc(results.name)}</h1>", _summary(results), f"<nav>{nav}</nav>"]
    sections = [
        (f"frontier tables and plot ({shown})", lambda: _frontier_section(results, planes)),
        ("training-path fronts over every evaluation", lambda: _paths_section(results, planes)),
        ("picks per selection rule", lambda: _picks_section(results)),
        ("mixing curves" if is_mix(results.trials).any() else None, lambda: _mixing_section(results, planes)),
        ("hypervolume tables", lambda: _hv_section(results, planes)),
        ("tuning-budget curves", lambda: _budget_section(results, planes)),
        ("attainment surfaces across seeds", lambda: _attainment_section(results, planes)),
        ("Fig. 1: the trade-off", lambda: _fig1_section(results, planes, ix)),
        ("paper-style tables (Tables 1/2 and 3)", lambda: _paper_tables(results)),
        ("robustness table (eval.robustness)" if robust else None, lambda: _robustness_section(results) if robust else ""),
        (f"Theorem 5 checks on {len(results.steps)} steps", lambda: _theorem5_section(results, rtol)),
        ("direction agreement table and plot" if not results.steps.empty else None,  # none without steps
         lambda: _agreement_section(results)),
        (None, lambda: _curves_section(results, planes, ix, say)),  # says each of Figs. 5, 6, 7 itself
        ("Fig. 4: the losses along probed steps" if results.probe is not None and not results.probe.empty
         else "Fig. 4: no probed step (pareto probe), a note only", lambda: _fig4_section(results, ix)),
    ]
    for what, make in sections:
        if what:
            say(what)
        parts.append(make())
    body = "\n".join(parts)
    js = f'<script type="text/javascript">{ix.plotly_js()}</script>' if ix is not None else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>pareto report — {_esc(results.name)}</title><style>{_CSS}</style>{js}</head>"
            f"<body>\n{body}\n</body></html>\n")


def write_report(folder, out, rtol: float = RTOL, interactive: bool = False, log=None) -> Path:
    """Load the sweep in ``folder`` and write its report to ``out``; ``log`` (one line per stage:
    reading, each table and figure, writing) as in build_report."""
    say = log or (lambda _msg: None)
    say(f"reading {folder}")
    results = load_results(folder)
    say(f"read {len(results.trials)} trials, {len(results.steps)} steps, {len(results.evals)} evaluations"
        + (f", {len(results.probe)} probe rows" if results.probe is not None and len(results.probe) else ""))
    page = build_report(results, rtol=rtol, interactive=interactive, log=log)
    out = Path(out)
    say(f"writing {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
