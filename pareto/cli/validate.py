"""`pareto validate SPEC...` — report every problem of each spec at once."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value, e.g. --set unlearn.steps=50.")
@click.option("--storage", default=None, help="Check this storage location instead of the spec's storage.root.")
@click.option("--estimate/--no-estimate", "priced", default=None,
              help="Estimate what each valid spec costs on this machine (a few seconds of measuring each; "
                   "default: on for one spec, off for several).")
def validate(specs: tuple[str, ...], overrides: tuple[str, ...], storage: str | None, priced: bool | None) -> None:
    """Check sweep specs without running them: the spec itself, then its data files, target model,
    storage location and resources (what this machine lacks is a note, not an error: the spec may
    be meant for a GPU cluster), and estimate what running it costs here.

    \b
      pareto validate sweeps/quickstart.yaml
      pareto validate sweeps/*.yaml
      pareto validate sweeps/*.yaml --estimate
    """
    from pareto.spec import SpecError, load_spec, precision_warnings  # lazily: it imports torch
    from pareto.preflight import preflight

    if priced is None:
        priced = len(specs) == 1

    bad = 0
    bases = _base_files(specs)
    for path in specs:
        if path in bases:
            click.echo(f"{path}: skipped: a base file for include: ({bases[path]}), not a sweep on its own")
            continue
        try:
            spec, points = load_spec(path, overrides)
        except SpecError as exc:
            bad += 1
            click.echo(str(exc), err=True)
            continue
        found = preflight(spec, source=path, storage=storage)
        extra = [w for w in precision_warnings(spec, points) if not any(w in f for f in found.warnings)]
        for warning in found.warnings + extra:  # the precision ones once, should preflight add them too
            click.echo(f"{path}: warning: {warning}", err=True)
        for note in found.environment:
            click.echo(f"{path}: note: not runnable on this machine as it is: {note}", err=True)
        if found.problems:
            bad += 1
            click.echo(f"{path}: {len(found.problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in found.problems),
                       err=True)
        else:
            notes = f"; {len(found.environment)} note(s) above" if found.environment else ""
            click.echo(f"{path}: ok ({len(points)} trials{notes})")
            if spec.eval.keep_checkpoints:  # what the kept weights will take
                from pareto.export import kept_size_note

                click.echo(f"  {kept_size_note(spec, points)}")
            if priced:
                from pareto.estimate import estimate, long_run_hint

                est = estimate(spec, points)
                hint = long_run_hint(spec, est)
                for line in est.lines() + ([hint] if hint else []):
                    click.echo(f"  {line}")
    sys.exit(2 if bad else 0)


def _base_files(specs: tuple[str, ...]) -> dict[str, str]:
    """The files among `specs` that are include-only bases (no name:, and named _*.yaml or included by
    another of `specs`) → why they are taken for one. A mistyped spec without name: is still checked."""
    import yaml

    def read(path: str):
        try:
            return yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            return None  # load_spec reports it

    raw = {path: read(path) for path in specs}
    included = {(Path(path).parent / r["include"]).resolve(): path for path, r in raw.items()
                if isinstance(r, dict) and isinstance(r.get("include"), str)}
    out = {}
    for path, r in raw.items():
        if not isinstance(r, dict) or "name" in r:
            continue
        if Path(path).resolve() in included:
            out[path] = f"{included[Path(path).resolve()]} includes it"
        elif Path(path).name.startswith("_"):
            out[path] = "its name starts with _"
    return out
