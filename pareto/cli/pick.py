"""`pareto pick` — one (trial, step) per group of a sweep by a selection rule (docs/pick.md)."""

from __future__ import annotations

import click

from pareto.cli._errors import fail
from pareto.cli.frontier import _directions, find_results

_FQ_MU_FIX = ("add forget_quality and model_utility to eval.metrics, with target.retain_model: true "
              "(forget_quality compares with the Retrain model) on QA data such as data.source: tofu")
_IDENT = ("trial_id", "method", "seed", "eval_step")
_RULE_COLUMNS = {
    "knee": ("knee_distance", "front_size"),
    "first-below-retain": ("reached", "reference"),
    "fq-mu": ("fq_mu",),
    "at-forget": ("reached", "forget_metric", "x", "utility_metric", "utility_mean", "ci_low", "ci_high",
                  "n_seeds", "seeds_reached", "closest", "utility_at_closest"),
}


def _check_metric(name: str, flag: str, directions: dict, table) -> None:
    """Unknown, or known without a value in these results: exit 2 naming the fix."""
    if name not in directions and name not in table:
        have = ", ".join(m for m in directions if m in table and table[m].notna().any())
        fail(f"{flag} {name}: no such metric. Metrics of these results: {have or '(none)'}")
    if name not in table or not table[name].notna().any():
        fail(f"{flag} {name}: these results hold no value of {name}. Add {name} to eval.metrics and rerun "
             f"the sweep, or name another metric with {flag}")


def _plane(res, table, x: str | None, y: str | None, directions: dict, needed: bool):
    if x:
        for name, flag in ((x, "--x"), (y, "--y")):
            _check_metric(name.split(":")[0], flag, directions, table)
        return (x, y)
    from analysis.pick import default_plane

    try:
        return default_plane(res.default_planes(), table)
    except ValueError as exc:
        if not needed:
            return ()
        have = ", ".join(m for m in directions if m in table and table[m].notna().any())
        fail(f"{exc}. Name two metrics with --x NAME --y NAME: {have or '(none)'}")


def _columns(out, rule: str, by: str | None, plane, directions: dict) -> list[str]:
    lead = [by] if by else []
    lead += [c for c in _IDENT if c in out and c != by]
    lead += [c for c in _RULE_COLUMNS[rule] if c in out]
    names = [n.split(":")[0] for n in plane] + sorted(directions)
    metrics = [m for m in dict.fromkeys(names) if m in out and m not in lead and out[m].notna().any()]
    return lead + metrics


@click.command()
@click.option("--results", "results", default=None,
              help="A sweep's folder holding trials.parquet, or a folder of sweeps (default ./results): "
                   "then the newest sweep in it.")
@click.option("--rule", "rule", required=True,
              help="knee | first-below-retain | fq-mu | at-forget=X (X a value of the forget metric).")
@click.option("--by", default=None, help="One pick per group of this column, e.g. --by method "
                                         "(default: the whole sweep; at-forget: per method).")
@click.option("--x", "x", default=None, help="The plane's forget metric (with --y); NAME or NAME:min|max.")
@click.option("--y", "y", default=None, help="The plane's utility metric (with --x).")
@click.option("--forget", "forget", default=None,
              help="at-forget: the forget metric X is a value of (default: the plane's first); "
                   "first-below-retain: the metric compared (default knowmem_f).")
@click.option("--utility", "utility", default=None, help="The utility metric (default: the plane's last).")
@click.option("--reference", "reference", type=float, default=None,
              help="first-below-retain: the retrained model's value of the metric (e.g. its knowmem_f); default: "
                   "the value the sweep recorded (target.retain_model: true).")
@click.option("--from-target/--no-from-target", default=True,
              help="at-forget: start every trial's path at the no-unlearn baseline's evaluation (the target, "
                   "step 0) when the sweep has one (default on).")
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "csv", "json", "markdown"]))
def pick(results: str | None, rule: str, by: str | None, x: str | None, y: str | None, forget: str | None,
         utility: str | None, reference: float | None, from_target: bool, fmt: str) -> None:
    """Pick one (trial, step) per group of a sweep by a selection rule, with its metrics.

    \b
      pareto pick --results DIR --rule knee --by method
      pareto pick --results DIR --rule first-below-retain --reference 0.30
      pareto pick --results DIR --rule fq-mu
      pareto pick --results DIR --rule at-forget=0.03 --forget verbmem_f
    """
    from analysis.pick import candidates, parse_rule, pick as apply_rule

    try:
        name, level = parse_rule(rule)
    except ValueError as exc:
        fail(f"--rule: {exc}")
    if (x is None) != (y is None):
        fail("--x and --y go together")
    folder = find_results(results)
    from analysis.results import load_results

    try:
        res = load_results(folder)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {folder}: {exc}")
    table = candidates(res.trials, res.evals)
    if table.empty:
        fail(f"{folder} holds no trial with status ok. Run the sweep to the end (`pareto sweep SPEC` resumes it).")
    directions = _directions(res.directions)
    if by is None and name == "at-forget":
        by = "method"
    if by is not None and by not in table:
        fail(f"--by {by!r}: no such column. Try --by method or --by combiner.")
    for metric, flag in ((forget, "--forget"), (utility, "--utility")):
        if metric:
            _check_metric(metric, flag, directions, table)
    plane = _plane(res, table, x, y, directions, needed=name in ("knee", "at-forget") and not (forget and utility))
    start = None
    if name == "fq-mu":
        missing = [m for m in ("forget_quality", "model_utility") if m not in table or table[m].isna().all()]
        if missing:
            fail(f"fq-mu needs {' and '.join(missing)}, which these results do not hold: {_FQ_MU_FIX}")
    if name == "first-below-retain":
        metric = forget or "knowmem_f"
        if metric not in table or table[metric].isna().all():
            fail(f"first-below-retain needs {metric}, which these results do not hold: add {metric} to "
                 "eval.metrics (MUSE data, data.source: muse_news), or name another metric with --forget")
        if reference is None:
            reference = res.reference_metrics.get(metric)
        if reference is None:
            fail(f"first-below-retain needs the retrained model's {metric}, which these results do not record: "
                 f"run the sweep with target.retain_model: true (its trials record the Retrain model's metrics), "
                 f"or pass it with --reference VALUE")
    if name == "at-forget" and from_target and "combiner" in table:
        base = table[table["combiner"] == "no-unlearn"]
        start = base.sort_values("eval_step").head(1) if len(base) else None
    try:
        out = apply_rule(table, rule, plane=plane, directions=directions, by=by, forget=forget,
                         utility=utility, reference=reference, start=start)
    except (KeyError, ValueError) as exc:
        fail(f"{exc.args[0] if exc.args else exc}. Name metrics these results hold with --x/--y, --forget or --utility")
    _print(out, name, level, by, plane, directions, fmt, forget, reference)


def _print(out, name: str, level, by, plane, directions: dict, fmt: str, forget, reference) -> None:
    import pandas as pd

    from analysis.frontier import FORMATS, FrontierTable
    from analysis.results import arrow

    cols = _columns(out, name, by, plane, directions) if len(out) else []
    df = out[cols] if cols else pd.DataFrame()
    rendered = FORMATS[fmt](df, FrontierTable((), df, pd.DataFrame()))
    if fmt in ("csv", "json"):
        click.echo(rendered, nl=fmt == "json")
        return
    per = f" per {by}" if by else " over the whole sweep"
    if name == "knee":
        what = f"knee of {' vs '.join(arrow(n, directions) for n in plane)}{per}"
    elif name == "first-below-retain":
        what = f"first evaluation with {forget or 'knowmem_f'} ≤ {reference} (Retrain){per}"
    elif name == "fq-mu":
        what = f"max ½(forget_quality + model_utility){per}"
    else:
        fm = out["forget_metric"].iloc[0] if "forget_metric" in out else forget
        what = f"utility at {fm} = {level}{per}: mean over seeds of each seed's best, 95 % t interval"
    click.echo(f"== {what} ==")
    click.echo(rendered)
    if "reached" in df and len(df) and not df["reached"].all():
        missed = df.loc[~df["reached"].astype(bool)]
        keys = missed[by].tolist() if by else ["the sweep"]
        click.echo("not reached: " + "; ".join(f"{k} (closest {float(c):.4g})" for k, c in zip(
            keys, missed["closest"] if "closest" in missed else missed[forget or "knowmem_f"])))
