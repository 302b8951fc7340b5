"""The `pareto` command line: one thin file per subcommand, each calling library functions."""

from __future__ import annotations

import click

from pareto.cli.check import check
from pareto.cli.export import export
from pareto.cli.frontier import frontier
from pareto.cli.mix import mix
from pareto.cli.pick import pick
from pareto.cli.probe import probe
from pareto.cli.report import report
from pareto.cli.sweep import sweep
from pareto.cli.target import target
from pareto.cli.validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pareto-unlearn")
def main() -> None:
    """pareto — machine unlearning as two-task optimisation, and the whole forget/retain frontier.

    \b
      pareto sweep sweeps/quickstart.yaml     run a sweep (local Ray), write Parquet results
      pareto frontier --results DIR           non-dominated and dominated trials
      pareto pick --results DIR --rule knee   one (trial, step) per group by a selection rule
      pareto check theorem5 --results DIR     Eq. 5 / Lemma 4 / Theorem 5 per step and method
      pareto report --results DIR --out F     one HTML page: every figure and table
      pareto probe --trial T --step K         the losses along one step's update (Fig. 4)
      pareto export --trial T --step K --out D  a kept model as a transformers folder
      pareto mix --trial T --alphas 0:1:0.1   evaluate (1−α)·target + α·trial, add the points
      pareto validate sweeps/*.yaml           check specs, every problem at once
      pareto target sweeps/tofu_cpu.yaml      build (or find cached) the target and Retrain models
    """


main.add_command(sweep)
main.add_command(frontier)
main.add_command(validate)
main.add_command(target)
main.add_command(check)
main.add_command(report)
main.add_command(probe)
main.add_command(pick)
main.add_command(export)
main.add_command(mix)
