"""`pareto mix` — evaluate the interpolations θ_α = (1 − α)·θ_target + α·θ_unlearned of one trial."""

from __future__ import annotations

import time

import click

from pareto.cli._errors import fail
from pareto.cli.frontier import find_results


@click.command(short_help="Evaluate (1−α)·target + α·trial for each α and add the points to the results.")
@click.option("--results", default=None, help="A sweep folder (default: the newest under ./results).")
@click.option("--trial", "trial", required=True, help="The unlearning trial, e.g. t004.")
@click.option("--step", type=int, default=None, help="Its kept evaluation step (default: the last kept one).")
@click.option("--alphas", default="0:1:0.1", show_default=True,
              help="START:STOP:STEP (both ends included) or a comma list, each α in [0, 1].")
def mix(results: str | None, trial: str, step: int | None, alphas: str) -> None:
    """Evaluate θ_α = (1 − α)·θ_target + α·θ_unlearned for each α, with the sweep's own evaluation
    (metrics, eval settings, the target's template and BOS), and add each α to the results as a
    trial of its own (combiner "mix", combiner_params {alpha, of, step}), so `pareto frontier` and
    `pareto report` show them beside the sweep's trials. α = 0 is the target, α = 1 the trial at
    that step. A LoRA trial mixes its adapters' delta only: θ_target + α·ΔW. Needs the sweep to
    have kept its weights (eval.keep_checkpoints: true).

    \b
      pareto mix --results results/quickstart --trial t004 --alphas 0:1:0.1
      pareto mix --results DIR --trial t004 --step 20 --alphas 0,0.25,0.5
    """
    from pareto.export import Evaluator, KeptError, open_kept
    from pareto.mix import mix_rows, parse_alphas, write_mix
    from pareto.results.store import StorageError

    folder = find_results(results)
    try:
        grid = parse_alphas(alphas)  # before anything is loaded
        kept = open_kept(folder, trial, step)
        click.echo(f"mixing {trial} ({kept.trial.get('label')}) at step {kept.step} with the target: "
                   f"{len(grid)} α" + (" (LoRA: the adapters' delta)" if kept.lora else ""))
        ev = Evaluator(kept, log=click.echo)
        points = []
        names = kept.spec["eval"]["metrics"]
        for alpha in grid:
            t0 = time.perf_counter()
            ev.set_alpha(alpha)
            values, items, settings = ev.evaluate()
            points.append((alpha, mix_rows(kept, alpha, "t000", values, items, settings, time.perf_counter() - t0)))
            click.echo(f"  α {alpha:<5g} " + "  ".join(f"{m} {values[m]:.4f}" for m in names))
        ids = write_mix(kept, points)
    except KeptError as exc:
        fail(str(exc))
    except StorageError as exc:
        fail(str(exc))
    click.echo(f"added {len(ids)} mixed point(s) as {ids[0]}…{ids[-1]} (combiner mix) to {folder}; "
               f"`pareto frontier --results {folder}` shows them")
