"""`pareto sweep SPEC` — run a sweep on Ray Tune; results land in Parquet."""

from __future__ import annotations

import sys

import click

from pareto.cli._errors import fail


@click.command()
@click.argument("spec_path", metavar="SPEC")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value, e.g. --set unlearn.steps=50.")
@click.option("--address", default=None, help="An existing Ray cluster (e.g. ray://head:10001 or auto); default: a local Ray sized to this machine.")
@click.option("--storage", default=None, help="Where results go: a directory or a URI (s3://…, gs://…, file:///…); default: the spec's storage.root.")
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep: run only the trials without results.")
def sweep(spec_path: str, overrides: tuple[str, ...], address: str | None, storage: str | None, resume: bool) -> None:
    """Run every trial of SPEC and print the frontier.

    \b
      pareto sweep sweeps/quickstart.yaml
      pareto sweep sweeps/quickstart.yaml --storage /tmp/results --set unlearn.steps=10
      pareto sweep sweeps/gdiff_c.yaml --address auto --storage s3://bucket/pareto
      pareto sweep sweeps/gdiff_c.yaml --resume        # after an interruption
    """
    from pareto.spec import SpecError, load_spec  # lazily: it imports torch

    try:
        spec, points = load_spec(spec_path, overrides)
    except SpecError as exc:
        fail(str(exc))
    from pareto.cli.frontier import print_frontier
    from pareto.data.hub import local_copy_fix
    from pareto.data.tofu import HubUnavailableError
    from pareto.results.store import StorageError
    from pareto.results.state import SweepStateError
    from pareto.sweep import run_sweep

    try:
        result = run_sweep(spec, points, address=address, storage=storage, resume=resume, log=click.echo,
                           source=spec_path)
    except SweepStateError as exc:
        fail(str(exc))
    except HubUnavailableError as exc:  # the hub went away after the preflight found it
        fail(f"{exc.problem} {local_copy_fix(spec.data.source, exc.repo)}")
    except FileNotFoundError as exc:  # a data file the preflight could not foresee
        fail(str(exc))
    except StorageError as exc:
        again = (f"pareto sweep {spec_path} --resume" + "".join(f" --set {o}" for o in overrides)
                 + (f" --storage {storage}" if storage else ""))
        fail(f"{exc}\nFinished trials are kept; once there is room, continue with: {again}")
    except KeyboardInterrupt as exc:
        click.echo(f"interrupted{f' ({exc})' if str(exc) else ''}. Finished trials are kept; continue with: "
                   f"pareto sweep {spec_path} --resume" + "".join(f" --set {o}" for o in overrides)
                   + (f" --storage {storage}" if storage else ""), err=True)
        sys.exit(130)
    where = result.store.display(result.folder)
    click.echo("")
    print_frontier(result.store.read_table(f"{result.folder}/trials.parquet").to_pandas(), planes=None, fmt="table", by=None)
    click.echo(f"results: {where}/ (trials, evals, steps, items .parquet)")
    click.echo(f"next:    pareto frontier --results {where}")
