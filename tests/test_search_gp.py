"""Optuna's GP sampler (`search.sampler: gp`) beside TPE and NSGA-II: the spec check, the seeded
sampler a sweep builds, the points it draws, and a short real sweep with it."""

import math

import pandas as pd
import pytest
from _helpers import ok, pareto, write_spec

from pareto.spec import SpecError, parse_spec, search_space

SPEC = """name: x
search:
  algorithm: optuna
  sampler: {sampler}
  seed: {seed}
  objectives: [rouge_f, utility_r]
  space:
    combiner: [{{gdiff: {{c: {{uniform: [0.0, 1.0]}}}}}}, ngdiff, lossnorm]
    lr: {{loguniform: [1.0e-5, 1.0e-3]}}
    lr_rule: [fixed, autolr]
"""


def test_the_spec_takes_gp_and_names_all_three_samplers_when_refusing_one():
    for sampler in ("gp", "tpe", "nsga2"):
        spec, _ = parse_spec(SPEC.format(sampler=sampler, seed=0))
        assert spec.search.sampler == sampler
    with pytest.raises(SpecError) as err:
        parse_spec(SPEC.format(sampler="cmaes", seed=0))
    problems = "\n".join(err.value.problems)
    assert "search.sampler" in problems and "optuna sampler must be gp, tpe or nsga2, got 'cmaes'" in problems
    with pytest.raises(SpecError, match="Did you mean 'gp'"):
        parse_spec(SPEC.format(sampler="gpp", seed=0))


def _first_points(sampler, spec, n: int) -> list[dict]:
    """`n` points the sampler suggests through the spec's own define-by-run space, each told a cheap
    analytic 2-objective value (forget ↓, retain ↑: a trade-off along lr, c and the combiner)."""
    import optuna

    from pareto.search import OptunaSpace

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    define = OptunaSpace(search_space(spec))
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    points = []
    for _ in range(n):
        trial = study.ask()
        point = define(trial)["point"]
        x = (math.log10(point["lr"]) + 5) / 2  # 0 … 1 over [1e-5, 1e-3]
        c = point["combiner"]["params"].get("c", 0.5)
        bonus = {"gdiff": 0.0, "ngdiff": 0.1, "lossnorm": 0.05}[point["combiner"]["name"]]
        forget = 1 - x ** 0.7 * (0.6 + 0.4 * c)
        retain = 1 - 0.8 * x ** 1.5 * (0.3 + 0.7 * c) + bonus + (0.02 if point["lr_rule"]["name"] == "autolr" else 0)
        study.tell(trial, [forget, retain])
        points.append(point)
    return points


def test_a_two_objective_spec_builds_optunas_gp_sampler_with_its_seed():
    import optuna

    from pareto.search import make_sampler

    spec, _ = parse_spec(SPEC.format(sampler="gp", seed=3))
    sampler = make_sampler(spec.search.sampler, spec.search.seed)
    assert isinstance(sampler, optuna.samplers.GPSampler)
    # seeded with the spec's seed: it draws what Optuna's GPSampler(seed=3) draws
    plain = optuna.samplers.GPSampler(seed=3, warn_independent_sampling=False)
    assert _first_points(sampler, spec, 3) == _first_points(plain, spec, 3)
    assert isinstance(make_sampler("tpe", 0), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("nsga2", 0), optuna.samplers.NSGAIISampler)


def test_the_same_seed_draws_the_same_points_past_the_random_start():
    from pareto.search import make_sampler

    spec, _ = parse_spec(SPEC.format(sampler="gp", seed=11))
    # 10 random start-up trials, then 3 chosen by the GP's log expected hypervolume improvement
    a = _first_points(make_sampler("gp", spec.search.seed), spec, 13)
    b = _first_points(make_sampler("gp", spec.search.seed), spec, 13)
    assert a == b
    assert len({(p["combiner"]["name"], p["lr"]) for p in a}) == 13  # real draws, not one point repeated
    assert all(1e-5 <= p["lr"] <= 1e-3 for p in a)
    other = _first_points(make_sampler("gp", 12), spec, 13)
    assert [p["lr"] for p in other] != [p["lr"] for p in a]


def test_every_sampler_pickles_as_ray_tune_keeps_its_searcher():
    """Tune pickles OptunaSearch (and its sampler) with the experiment state; Optuna 5.1's NSGA-II
    holds a threading.Lock, so `sampler: nsga2` failed at Tuner() before make_sampler's reducer."""
    from ray import cloudpickle

    from pareto.search import make_sampler

    spec, _ = parse_spec(SPEC.format(sampler="nsga2", seed=5))
    for name in ("gp", "tpe", "nsga2"):
        sampler = make_sampler(name, 5)
        copy = cloudpickle.loads(cloudpickle.dumps(sampler))
        assert type(copy) is type(sampler)
        # the copy goes on drawing what a fresh sampler with the same seed draws
        assert _first_points(copy, spec, 3) == _first_points(make_sampler(name, 5), spec, 3)


@pytest.mark.slow
def test_a_short_optuna_sweep_with_the_gp_sampler(tmp_path, embedded_target):
    search = """  algorithm: optuna
  sampler: gp
  num_samples: 4
  objectives: [rouge_f, utility_r]
  space:
    combiner: [{gdiff: {c: {uniform: [0.0, 1.0]}}}, ngdiff]
    lr: {loguniform: [1.0e-5, 1.0e-3]}"""
    ok(pareto("sweep", str(write_spec(tmp_path, "gp", search)), "--storage", str(tmp_path)))
    trials = pd.read_parquet(tmp_path / "gp" / "trials.parquet")
    assert len(trials) == 5 and (trials.status == "ok").all() and set(trials.search) == {"optuna"}
    assert (tmp_path / "gp" / "optuna.journal").is_file()
