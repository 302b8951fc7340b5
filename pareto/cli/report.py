"""`pareto report` — one self-contained HTML page with every figure and table of a sweep."""

from __future__ import annotations

import time

import click

from pareto.cli._errors import fail
from pareto.cli.frontier import find_results

PLOTLY_HINT = 'pip install "pareto-unlearn[plotly]"  (or: pip install plotly)'


def _probe_arg(text: str) -> tuple[str, int]:
    tid, _, step = text.partition(":")
    if not tid or not step.strip().isdigit():
        fail(f"--probe {text!r}: give TRIAL:STEP, e.g. --probe t004:10")
    return tid, int(step)


@click.command(short_help="One HTML page with every figure and table of a sweep.")  # not cut at "Figs."
@click.option("--results", default=None, help="A sweep folder (default: the newest under ./results).")
@click.option("--out", default="report.html", show_default=True, help="The HTML file to write.")
@click.option("--rtol", type=float, default=None, help="Eq. 5 relative tolerance (default 1e-4).")
@click.option("--interactive", is_flag=True,
              help="Interactive plotly figures (zoom, hover, toggle traces) for Figs. 1, 4, 5, 6, 7, with "
                   "plotly.js inlined (still one offline file, ~5 MB more). Needs the plotly extra.")
@click.option("--probe", "probes", multiple=True, metavar="TRIAL:STEP",
              help="Probe this step first (as `pareto probe`, added to DIR/probe.parquet) for Fig. 4. Repeatable.")
def report(results: str | None, out: str, rtol: float | None, interactive: bool, probes: tuple[str, ...]) -> None:
    """Write the frontier, hypervolume, paper-style tables, Theorem-5 checks, direction agreement
    and Figs. 1, 5, 6, 7 of a sweep into one HTML file (images embedded; readable offline), and
    Fig. 4 for every step probed (`pareto probe`, or --probe here).

    \b
      pareto report --results results/quickstart --out report.html
      pareto report --results results/quickstart --probe t010:10 --interactive
    """
    if interactive:
        try:
            import plotly  # noqa: F401  (only whether it imports)
        except ImportError:
            fail(f"--interactive draws with plotly, which is not installed. Install it with\n  {PLOTLY_HINT}\n"
                 "or drop --interactive for the PNG figures.")
    t0 = time.monotonic()

    def log(msg: str) -> None:  # progress on stderr, each line with the seconds since the start
        click.echo(f"[{time.monotonic() - t0:5.1f}s] {msg}", err=True)

    from analysis.report import write_report
    from analysis.theorem5 import RTOL

    folder = find_results(results)
    wanted = [_probe_arg(p) for p in probes]
    if wanted:
        from pareto.cli.probe import run_probe

        for tid, step in wanted:
            log(f"probing {tid} at step {step} (replays the trial)")
            run_probe(folder, tid, step)
    try:
        path = write_report(folder, out, rtol=RTOL if rtol is None else rtol, interactive=interactive, log=log)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    click.echo(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t0:.0f}s)")
