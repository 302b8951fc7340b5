"""`pareto sweep SPEC` — run a sweep on Ray Tune; results land in Parquet."""

from __future__ import annotations

import click

from pareto.cli._errors import fail
from pareto.spec import SpecError, load_spec


@click.command()
@click.argument("spec_path", metavar="SPEC")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value, e.g. --set unlearn.steps=50.")
@click.option("--address", default=None, help="Ray cluster address (default: a local Ray sized to this machine).")
@click.option("--results", "results_root", default=None, help="Results root (default: the spec's storage.root).")
def sweep(spec_path: str, overrides: tuple[str, ...], address: str | None, results_root: str | None) -> None:
    """Run every trial of SPEC and print the frontier.

    \b
      pareto sweep sweeps/quickstart.yaml
      pareto sweep sweeps/quickstart.yaml --results /tmp/results
    """
    try:
        spec, points = load_spec(spec_path, overrides)
    except SpecError as exc:
        fail(str(exc))
    from pareto.cli.frontier import print_frontier
    from pareto.sweep import run_sweep

    try:
        out_dir = run_sweep(spec, points, address=address, results_root=results_root, log=click.echo)
    except FileExistsError as exc:
        fail(f"results directory already exists: {exc.filename}")
    except PermissionError as exc:
        fail(f"cannot write results to {exc.filename}: permission denied. Pass --results DIR with a writable directory.")
    click.echo("")
    print_frontier(out_dir, planes=None, fmt="table", by=None)
    click.echo(f"\nresults: {out_dir}/trials.parquet, {out_dir}/steps.parquet")
    click.echo(f"again:   pareto frontier --results {out_dir}")
