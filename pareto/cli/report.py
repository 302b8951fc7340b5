"""`pareto report` — one self-contained HTML page with every figure and table of a sweep."""

from __future__ import annotations

import click

from pareto.cli._errors import fail
from pareto.cli.frontier import find_results


@click.command()
@click.option("--results", default=None, help="A sweep folder (default: the newest under ./results).")
@click.option("--out", default="report.html", show_default=True, help="The HTML file to write.")
@click.option("--rtol", type=float, default=None, help="Eq. 5 relative tolerance (default 1e-4).")
def report(results: str | None, out: str, rtol: float | None) -> None:
    """Write the frontier, hypervolume, paper-style tables, Theorem-5 checks, direction agreement
    and Figs. 1, 5, 6, 7 of a sweep into one HTML file (images embedded; readable offline).

    \b
      pareto report --results results/quickstart --out report.html
    """
    from analysis.report import write_report
    from analysis.theorem5 import RTOL

    folder = find_results(results)
    try:
        path = write_report(folder, out, rtol=RTOL if rtol is None else rtol)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    click.echo(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB)")
