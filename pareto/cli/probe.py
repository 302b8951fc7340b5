"""`pareto probe` — the losses along one step's update (the paper's Fig. 4), from a sweep's results."""

from __future__ import annotations

import math

import click

from pareto.cli._errors import fail
from pareto.cli.frontier import find_results


def parse_etas(text: str | None) -> list[float] | None:
    """"-1e-3,0,1e-3" → floats; fails (exit 2) on anything else."""
    if text is None:
        return None
    try:
        etas = [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        fail(f"--etas {text!r}: give step sizes as comma-separated numbers, e.g. --etas=-1e-3,0,5e-4,1e-3")
    if not etas or not all(math.isfinite(e) for e in etas):
        fail(f"--etas {text!r}: give at least one finite step size, e.g. --etas=-1e-3,0,1e-3")
    return etas


def run_probe(folder: str, trial: str, step: int, etas=None, full: bool = False, table: str | None = None,
              log=click.echo):
    """Probe, save the table (default `<folder>/probe.parquet`); returns (table, where saved).
    Bad input exits with status 2 and a message naming the fix."""
    from pareto.probe import PROBE_FILE, ProbeError, load_trial, probe_step, save_probe

    try:
        rec = load_trial(folder, trial, step)  # checks the input before torch is imported
        log(f"rebuilding {trial} ({rec.trial.get('label')}) at step {step}: replaying {step + 1} step(s) "
            f"from the target…")
        out = probe_step(rec, step, etas=etas, full=full, log=log)
    except ProbeError as exc:
        fail(str(exc))
    where = table or f"{folder.rstrip('/')}/{PROBE_FILE}"
    try:
        save_probe(out, where)
    except OSError as exc:
        fail(f"cannot write {where}: {exc}. Pass --table with a writable path (.parquet or .csv).")
    return out, where


# short_help given: click cuts the first sentence of the docstring at "Fig." otherwise
@click.command(short_help="Fig. 4: rebuild a trial at step K and measure L_R and L_F along the update it took.")
@click.option("--results", default=None, help="A sweep folder (default: the newest under ./results).")
@click.option("--trial", "trial", required=True, help="The trial id, e.g. t004 (`pareto frontier` lists them).")
@click.option("--step", type=int, required=True, help="The step K (0-based) whose update is probed.")
@click.option("--etas", default=None,
              help="Step sizes, comma-separated (default: a grid symmetric about 0 scaled to the step's η and "
                   "the parabola's η*; 0 and the η used are always added). Write --etas=-1e-3,0,1e-3.")
@click.option("--full", is_flag=True, help="Also measure on every forget and retain example (slower).")
@click.option("--out", default=None, help="The figure (PNG; default fig4-TID-stepK.png).")
@click.option("--table", default=None,
              help="Where the table goes (default DIR/probe.parquet, which `pareto report` draws; .csv for CSV).")
def probe(results: str | None, trial: str, step: int, etas: str | None, full: bool, out: str | None,
          table: str | None) -> None:
    """Rebuild a trial's model at step K (replaying its recorded spec and grid point from the
    target, exactly as the sweep ran it), and measure the retain and forget losses at θ − η·u
    along the update u the optimizer took there, for a grid of η: the paper's Fig. 4.

    Checks the rebuild against the record: at η = 0 the losses are the step's recorded
    loss_r / loss_f, at the η used its loss_r_after / loss_f_after.

    \b
      pareto probe --results results/quickstart --trial t010 --step 10
      pareto probe --results DIR --trial t004 --step 0 --etas=-1e-3,0,1e-4,1e-3 --full --out fig4.png
    """
    from analysis import figures as F
    from analysis import plots as P

    folder = find_results(results)
    grid = parse_etas(etas)
    tab, where = run_probe(folder, trial, step, etas=grid, full=full, table=table)
    summ = F.fig4_summary(tab).iloc[0]
    png = out or f"fig4-{trial}-step{step}.png"
    try:
        P.save(P.fig4(F.fig4_data(tab), F.fig4_summary(tab)), png)
    except OSError as exc:
        fail(f"cannot write {png}: {exc.strerror or exc}. Pass --out with a writable path.")
    n = int((tab["data"] == "batch").sum())
    click.echo(f"{trial} {summ['label']} ({summ['optimizer']}), step {step}: {n} step sizes"
               + (" on the step's batches and on every example" if full else " on the step's batches"))
    star = summ["η* (parabola)"]
    click.echo(f"  η used {summ['η used']:.4g}; L_R parabola ({summ['parabola']}): "
               + (f"minimiser η* {star:.4g}" if math.isfinite(star)
                  else "no minimiser at η > 0 (g_R·u ≤ 0 or uᵀH_R u ≤ 0)"))
    click.echo(f"  rebuilt step vs its record: largest relative difference {summ['rebuild rel. err.']:.2g}")
    click.echo(f"  at η = 0:      L_R − recorded loss_r {summ['L_R(0) − rec.']:+.2g},  "
               f"L_F − recorded loss_f {summ['L_F(0) − rec.']:+.2g}")
    if math.isfinite(summ["L_R(η) − rec. after"]):
        click.echo(f"  at η used:     L_R − loss_r_after {summ['L_R(η) − rec. after']:+.2g},  "
                   f"L_F − loss_f_after {summ['L_F(η) − rec. after']:+.2g}")
    click.echo(f"  slope at 0:    dL_R/dη {summ['dL_R/dη (fin. diff.)']:.5g} (finite difference) vs "
               f"−g_R·u {summ['−g_R·u']:.5g};  −g_F·u {summ['−g_F·u']:.5g}")
    if summ["rebuild rel. err."] > 1e-4:
        click.echo("warning: the rebuilt step differs from the recorded one (another torch version, device or "
                   "thread count?): the landscape is of a nearby model, not exactly the trial's.", err=True)
    click.echo(f"table:  {where}\nfigure: {png}")
