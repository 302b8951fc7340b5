"""`pareto frontier` — non-dominated and dominated trials of a sweep (paper Definition 1)."""

from __future__ import annotations

from pathlib import Path

import click

from pareto.cli._errors import fail


def _latest_run(root: Path) -> Path | None:
    runs = sorted((p for p in root.glob("**/trials.parquet") if not {"parts", ".ray"} & set(p.parts)),
                  key=lambda p: p.stat().st_mtime)
    return runs[-1].parent if runs else None


def print_frontier(trials, planes, fmt: str, by: str | None) -> None:
    """`trials`: the trials table of a sweep (a pandas DataFrame)."""
    from analysis import format_table, frontier_table
    from pareto.results.schema import DEFAULT_PLANES, METRICS

    trials = trials.copy()
    arrows = {"min": "↓", "max": "↑", "zero": "→0"}
    for x, y in planes or DEFAULT_PLANES:
        objectives = []
        for col in (x, y):
            if col not in METRICS:
                fail(f"no metric {col!r}. Metrics: {', '.join(METRICS)}")
            if METRICS[col] == "zero":  # closest to zero is best: minimise |value|
                trials[f"|{col}|"] = trials[col].abs()
                objectives.append((f"|{col}|", "min"))
            else:
                objectives.append((col, METRICS[col]))
        table = frontier_table(trials, objectives, by=by)
        click.echo(f"== {x} {arrows[METRICS[x]]} vs {y} {arrows[METRICS[y]]}"
                   f"{f' (fronts per {by})' if by else ''} ==")
        cols = ["trial_id", "label", x, y, "dominated", "dominated_by"]
        click.echo(format_table(table, fmt, columns=cols))
        if len(table.excluded):
            click.echo("excluded: " + "; ".join(f"{r.trial_id} ({r.reason})" for r in table.excluded.itertuples()))
        click.echo("")


@click.command()
@click.option("--results", "results", default=None,
              help="A sweep's folder holding trials.parquet (default: the newest under ./results).")
@click.option("--x", "x", default=None, help="Metric on the x axis (with --y).")
@click.option("--y", "y", default=None, help="Metric on the y axis (with --x).")
@click.option("--by", default=None, help="Per-group fronts, e.g. --by combiner.")
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "csv", "json", "markdown"]))
def frontier(results: str | None, x: str | None, y: str | None, by: str | None, fmt: str) -> None:
    """Print the non-dominated and the dominated trials with their dominators.

    \b
      pareto frontier --results results/quickstart
      pareto frontier --x rouge_f --y utility_r --by combiner
    """
    if results is None:
        found = _latest_run(Path("results"))
        if found is None:
            fail("no results found under ./results. Run `pareto sweep sweeps/quickstart.yaml` or pass --results DIR.")
        results = str(found)
    from pareto.results.store import Store, StorageError

    try:
        store = Store(results)  # a local folder or a URI (s3://…, gs://…, file://…)
        present = store.exists("trials.parquet")
    except StorageError as exc:
        fail(str(exc))
    if not present:
        fail(f"{results} holds no trials.parquet. Pass --results with the folder `pareto sweep` printed.")
    if (x is None) != (y is None):
        fail("--x and --y go together")
    print_frontier(store.read_table("trials.parquet").to_pandas(), [(x, y)] if x else None, fmt, by)
