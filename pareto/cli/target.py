"""`pareto target SPEC` — build (or find in the cache) the target a sweep unlearns from."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pareto.cli._errors import fail


@click.command()
@click.argument("spec_path", metavar="SPEC")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value, e.g. --set unlearn.steps=50.")
def target(spec_path: str, overrides: tuple[str, ...]) -> None:
    """Train SPEC's target model (and its retain-only reference when target.retain_model is on).

    Targets are cached by a hash of what made them (data, base model, settings) and shared
    read-only by every sweep that asks for the same one.

    \b
      pareto target sweeps/quickstart.yaml
      pareto target sweeps/tofu_cpu.yaml
      pareto target sweeps/cifar10_cpu.yaml --set data.path=/path/to/cifar10_subset.tar
    """
    from pareto.spec import SpecError, load_spec  # lazily: it imports torch

    try:
        spec, _ = load_spec(spec_path, overrides)
    except SpecError as exc:
        fail(str(exc))
    from dataclasses import asdict

    from pareto.data.hub import check_hub_data, local_copy_fix
    from pareto.data.tofu import HubUnavailableError
    from pareto.prepare import prepare_target

    kind, why = check_hub_data(asdict(spec.data))
    if kind:
        fail(f"data.path: {why}")
    try:
        prepared = prepare_target(spec, log=click.echo)
    except HubUnavailableError as exc:
        fail(f"{exc.problem} {local_copy_fix(spec.data.source, exc.repo)}")
    except (FileNotFoundError, OSError, ValueError) as exc:
        fail(str(exc))
    paths = [prepared.target_dir] + ([prepared.reference["retain_model"]] if prepared.reference else [])
    for path in paths:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        keys = ("kind", "base", "data_name", "retain_only", "n_params", "epochs", "final_train_loss",
                "answer_accuracy", "rouge", "wall_seconds")
        if manifest.get("kind") == "vision":  # a classifier (pareto.vision.train): its fit and accuracies
            keys = ("kind", "data_name", "forget_class", "n_forget", "n_retain", "n_params", "epochs",
                    "final_train_loss", "train_accuracy", "forget_accuracy", "retain_accuracy", "test_forget_accuracy",
                    "test_retain_accuracy", "wall_seconds")
            click.echo(f"{path}\n  arch: {manifest['config']['arch']}")
        else:
            click.echo(f"{path}")
        for key in keys:
            if key in manifest:
                click.echo(f"  {key}: {manifest[key]}")
