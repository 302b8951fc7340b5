"""`pareto export` — one trial's model at one evaluation step, as a transformers folder."""

from __future__ import annotations

import click

from pareto.cli._errors import fail
from pareto.cli.frontier import find_results


@click.command(short_help="Write a trial's model at step K as a transformers folder (needs eval.keep_checkpoints).")
@click.option("--results", default=None, help="A sweep folder (default: the newest under ./results).")
@click.option("--trial", "trial", required=True, help="The trial id, e.g. t004 (`pareto frontier` lists them).")
@click.option("--step", type=int, required=True, help="The evaluation step whose weights were kept.")
@click.option("--out", required=True, help="A new folder to write the model into.")
def export(results: str | None, trial: str, step: int, out: str) -> None:
    """Write the model a trial had at evaluation step K (kept because the sweep ran with
    eval.keep_checkpoints: true) as a folder `AutoModelForCausalLM.from_pretrained` loads: config,
    safetensors weights and the target's tokenizer. A LoRA trial gives its adapters in peft's
    layout (adapter_config.json naming the target as base) and a README saying how to load them.
    pareto_export.json records the trial, step, target and the metrics recorded there.

    \b
      pareto export --results results/quickstart --trial t004 --step 20 --out models/t004-s20
    """
    from pareto.export import KeptError, export as write, open_kept

    folder = find_results(results)
    try:
        kept = open_kept(folder, trial, step)
        where = write(kept, out, log=click.echo)
    except KeptError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}. Pass --out with a writable new folder.")
    what = "LoRA adapters (peft layout) over the target" if kept.lora else "model (transformers layout)"
    click.echo(f"{trial} ({kept.trial.get('label')}) at step {step}: {what} → {where}")
