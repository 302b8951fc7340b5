"""The GP sampler's options benchmarks/search_samplers.py measures (`gp:startup=N`, `gp:det`,
`gp:every`): its random start-up trials, Optuna's deterministic_objective, and every component's
parameters suggested in every trial so that its model (which sees only the parameters all trials
share) covers gdiff's c instead of drawing it at random. The default: deterministic_objective on,
Optuna's 10 start-up trials, c conditional (docs/benchmarks.md, "Search samplers")."""

import optuna
import pytest
from test_search_gp import SPEC

from pareto.search import GP_DETERMINISTIC, GP_EVERY_PARAM, GP_STARTUP_TRIALS, make_sampler
from pareto.spec import parse_spec


def _run(sampler, n: int):
    """`n` points through the spec's define-by-run space (told a cheap 2-objective value), the
    study's trials, and the parameters all of them share (the space GP's model covers)."""
    from pareto.search import OptunaSpace
    from pareto.spec import search_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec, _ = parse_spec(SPEC.format(sampler="gp", seed=0))
    define = OptunaSpace(search_space(spec))
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    points = []
    for _ in range(n):
        trial = study.ask()
        points.append(define(trial)["point"])
        study.tell(trial, [points[-1]["lr"] * 1e3, points[-1]["combiner"]["params"].get("c", 0.5)])
    return points, study.get_trials(), optuna.search_space.intersection_search_space(study.get_trials())


def test_every_param_suggests_every_components_parameters_in_every_trial_and_runs_only_the_chosen_ones():
    points, _, shared = _run(make_sampler("gp", 0, every_param=True), 8)
    # c is in every trial, so the GP's space (the parameters all trials share) has it
    assert {"combiner", "combiner.gdiff.c", "lr", "lr_rule"} <= set(shared)
    assert {p["combiner"]["name"] for p in points} >= {"gdiff", "ngdiff"}  # seed 0 draws both
    for p in points:  # the point a trial runs carries only its own component's parameters
        assert p["combiner"]["params"].keys() == ({"c"} if p["combiner"]["name"] == "gdiff" else set())
        assert 0.0 <= p["combiner"]["params"].get("c", 0.0) <= 1.0


def test_by_default_and_for_tpe_a_components_parameters_stay_conditional():
    assert not GP_EVERY_PARAM
    for sampler in (make_sampler("gp", 0), make_sampler("tpe", 0)):
        points, trials, shared = _run(sampler, 8)
        assert "combiner.gdiff.c" not in shared and {"combiner", "lr", "lr_rule"} <= set(shared)
        n_gdiff = sum(p["combiner"]["name"] == "gdiff" for p in points)
        assert sum("combiner.gdiff.c" in t.params for t in trials) == n_gdiff


@pytest.mark.filterwarnings("error::optuna.exceptions.ExperimentalWarning")
def test_the_defaults_and_the_options_reach_gp_and_tpe_and_survive_pickling():
    from ray import cloudpickle

    assert make_sampler("gp", 0)._n_startup_trials == GP_STARTUP_TRIALS == 10
    assert make_sampler("gp", 0, startup_trials=4)._n_startup_trials == 4
    assert make_sampler("tpe", 0, startup_trials=4)._n_startup_trials == 4
    assert make_sampler("tpe", 0)._n_startup_trials == 10
    # deterministic_objective by default (experimental in Optuna 5.1: its warning silenced)
    assert GP_DETERMINISTIC and make_sampler("gp", 0)._deterministic
    assert not make_sampler("gp", 0, deterministic=False)._deterministic
    copy = cloudpickle.loads(cloudpickle.dumps(make_sampler("gp", 0)))
    assert copy.suggest_every_param is GP_EVERY_PARAM
