"""`pareto validate SPEC...` — report every problem of each spec at once."""

from __future__ import annotations

import sys

import click



@click.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value, e.g. --set unlearn.steps=50.")
def validate(specs: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Check sweep specs without running them.

    \b
      pareto validate sweeps/quickstart.yaml
      pareto validate sweeps/*.yaml
    """
    from pareto.spec import SpecError, load_spec  # lazily: it imports torch

    bad = 0
    for path in specs:
        try:
            _, points = load_spec(path, overrides)
            click.echo(f"{path}: ok ({len(points)} trials)")
        except SpecError as exc:
            bad += 1
            click.echo(str(exc), err=True)
    sys.exit(2 if bad else 0)
