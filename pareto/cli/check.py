"""`pareto check theorem5` — the paper's Eq. 5 / Lemma 4 / Theorem 5 on a sweep's steps."""

from __future__ import annotations

import sys

import click

from pareto.cli._errors import fail
from pareto.cli.frontier import find_results


@click.group()
def check() -> None:
    """Check a sweep's results against the paper's theory."""


# short_help given: click cuts the first sentence of the docstring at "Eq." otherwise
@check.command("theorem5", short_help="Eq. 5, Theorem 5's η bound and simultaneous improvement: "
                                      "the passing fraction per method, and the failing steps.")
@click.option("--results", default=None, help="A sweep folder (default: the newest under ./results).")
@click.option("--rtol", type=float, default=None,
              help="Relative tolerance of the Eq. 5 test for float rounding (default 1e-4).")
@click.option("--format", "fmt", default="text", type=click.Choice(["text", "markdown", "latex"]))
@click.option("--show", default=10, show_default=True, help="How many failing steps to list per check.")
def theorem5(results: str | None, rtol: float | None, fmt: str, show: int) -> None:
    """Per method: the fraction of steps where Eq. 5 holds, where η meets Theorem 5's bound
    (AutoLR-probed steps) and where both losses improved at once; the failing steps.

    Exits 1 if Lemma 4 is violated on any NGDiff step (Eq. 5 must hold there: a bug).

    \b
      pareto check theorem5 --results results/quickstart
    """
    from analysis.results import display_names, load_results, setting_names
    from analysis.tables import render
    from analysis.theorem5 import RTOL, failures, lemma4_violations, step_checks, summarize

    folder = find_results(results)
    res = load_results(folder)
    if res.steps.empty:
        fail(f"{folder} has no steps (steps.parquet missing or empty): nothing to check.")
    rtol = RTOL if rtol is None else rtol
    checks = step_checks(res.steps, rtol=rtol)
    summ = summarize(checks, res.trials)
    table = summ[["lr_rule", "trials", "steps"]].copy()
    table.index = display_names(summ["method"]).tolist()
    for name in ("eq5", "lr_bound", "descent_r", "improved", "improved_r", "improved_f"):
        table[name] = [f"{round(f * n)}/{n} ({100 * f:.0f}%)" if n else "–"
                       for f, n in zip(summ[name], summ[f"{name}_n"].astype(int))]
    click.echo(f"Theorem 5 checks for {folder} (Eq. 5 relative tolerance {rtol:g}); "
               "passed/measured steps per method:\n")
    click.echo(render(table, fmt))
    labels = dict(zip(res.trials["trial_id"], setting_names(res.trials)))
    for name in ("eq5", "lr_bound", "improved"):
        f = failures(checks, name)
        if len(f):
            cols = {"eq5": ["dot_r_upd", "dot_f_upd"], "lr_bound": ["lr", "bound_eta"],
                    "improved": ["loss_r", "loss_r_after", "loss_f", "loss_f_after"]}[name]
            click.echo(f"{name} fails on {len(f)} step(s)" + (f"; the first {show}:" if len(f) > show else ":"))
            for rec in f.head(show).to_dict("records"):
                vals = "  ".join(f"{c}={rec[c]:.4g}" for c in cols)
                click.echo(f"  {rec['trial_id']} {labels.get(rec['trial_id'], '')} step {rec['step']}: {vals}")
    ngdiff = res.trials.loc[res.trials["combiner"] == "ngdiff", "trial_id"]
    n_ng = int(checks["trial_id"].isin(ngdiff).sum())
    viol = lemma4_violations(checks, res.trials)
    if not n_ng:
        click.echo("\nLemma 4: no NGDiff trial in this sweep; nothing to check.")
    elif viol.empty:
        click.echo(f"\nLemma 4 holds on {n_ng}/{n_ng} NGDiff steps (100%).")
    else:
        click.echo(f"\nLemma 4 VIOLATED on {len(viol)} of {n_ng} NGDiff steps — Eq. 5 must hold for NGDiff "
                   "on every step: this is a bug.", err=True)
        for rec in viol.head(show).to_dict("records"):
            click.echo(f"  {rec['trial_id']} step {rec['step']}: g_R·d={rec['dot_r_upd']:.6g} "
                       f"g_F·d={rec['dot_f_upd']:.6g}", err=True)
        sys.exit(1)
