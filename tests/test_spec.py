"""Spec parsing: every problem at once, with key paths and lines; grids that expand right."""

from pathlib import Path

import pytest
from _helpers import local_data_overrides

from pareto.search import expand_grid, parse_space
from pareto.spec import SpecError, load_spec, parse_spec, trial_label


def grid(raw: dict) -> list[dict]:
    problems = []
    points = expand_grid(parse_space(raw, ("search", "space"), lambda path, msg: problems.append(msg)))
    assert not problems, problems
    return points

SWEEPS = sorted(p for p in (Path(__file__).parents[1] / "sweeps").glob("*.yaml") if not p.name.startswith("_"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_shipped_spec_validates_and_opens_with_its_command(path, real_data):
    spec, points = load_spec(path, local_data_overrides(path, real_data))
    assert points
    assert path.read_text().splitlines()[0].startswith(f"# pareto sweep sweeps/{path.name}")


def test_all_problems_reported_at_once_with_lines_and_hints():
    text = """name: x
unlern: {steps: 3}
unlearn:
  stepz: 3
  batch_size: -1
  optimizer: adma
search:
  space:
    combiner: [ngdif, {gdiff: {c: [0.5, 2]}}]
    lr: [-1, fast]
"""
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    problems = "\n".join(err.value.problems)
    for expected in ["unlern (line 2)", "Did you mean 'unlearn'", "unlearn.stepz (line 4)", "Did you mean 'steps'",
                     "batch_size must be ≥ 1", "Did you mean 'adam'", "unknown combiner 'ngdif'",
                     "Did you mean 'ngdiff'", "c must lie in [0, 1]", "learning rate must be > 0",
                     "search.space.lr.1 (line 10): expected a number"]:
        assert expected in problems, expected
    assert len(err.value.problems) == 8


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(SpecError, match=r"line 2"):
        parse_spec("name: x\n  bad: [\n")


def test_wrong_types_and_bad_names():
    with pytest.raises(SpecError) as err:
        parse_spec("name: ../escape\nunlearn: {steps: many, threads: 1.5}\nsearch: {baseline: maybe}\n")
    problems = "\n".join(err.value.problems)
    assert "cannot escape the results root" in problems
    assert "unlearn.steps" in problems and "expected an integer" in problems
    assert "search.baseline" in problems and "true or false" in problems


def test_component_parameters_multiply_only_their_component():
    points = grid({"combiner": [{"gdiff": {"c": [0.1, 0.5, 0.9]}}, "ngdiff"],
                          "lr_rule": ["fixed", {"autolr": {"every": [5, 10]}}], "seed": [0, 1]})
    # (3 gdiff + 1 ngdiff) × (1 fixed + 2 autolr) × 2 seeds; ngdiff never gets a `c`
    assert len(points) == 4 * 3 * 2
    assert all("c" not in p["combiner"]["params"] for p in points if p["combiner"]["name"] == "ngdiff")
    labels = {trial_label(p) for p in points}
    assert len(labels) == len(points)
    assert "gdiff(c=0.1)/ga/autolr(every=5)/lr=0.001/seed=1" in labels


def test_baseline_trial_is_added_first():
    _, points = parse_spec("name: x\nsearch: {space: {combiner: [ngdiff]}}")
    assert points[0] == {"baseline": True, "seed": 0}
    _, points = parse_spec("name: x\nsearch: {baseline: false}")
    assert not any(p.get("baseline") for p in points)


def test_missing_spec_file_says_where_specs_are(tmp_path):
    with pytest.raises(SpecError, match="sweeps/quickstart.yaml"):
        load_spec(tmp_path / "nope.yaml")


def test_famo_with_gradient_ascent_is_refused_at_validation():
    with pytest.raises(SpecError, match="positive loss: ceu, idkdpo, idknll, npo, rmu, simnpo, undial. Pair 'famo' with "
                                        "those objectives only"):
        parse_spec("name: x\nsearch: {space: {combiner: [famo], objective: [ga]}}")
    _, points = parse_spec("name: x\nsearch: {space: {combiner: [famo], objective: [npo]}}")
    assert len(points) == 2


def test_set_overrides_any_value_and_reports_bad_ones():
    spec, points = parse_spec("name: x\nunlearn: {steps: 3}\n", overrides=["unlearn.steps=50", "search.space.seed=[0, 1]"])
    assert spec.unlearn.steps == 50 and len(points) == 1 + 2
    with pytest.raises(SpecError, match="expected dotted.key=value"):
        parse_spec("name: x\n", overrides=["unlearn.steps"])
    with pytest.raises(SpecError, match="unknown key 'stepz'"):
        parse_spec("name: x\n", overrides=["unlearn.stepz=5"])


def test_data_sources_are_checked():
    with pytest.raises(SpecError) as err:
        parse_spec("name: x\ndata: {source: tofu, path: ./nope, forget: forget11}\n"
                   "target: {source: train, train: {epoch: 3}}\n")
    problems = "\n".join(err.value.problems)
    assert "forget01, forget05 or forget10" in problems and "no such directory: ./nope" in problems
    assert "Did you mean 'epochs'" in problems
    with pytest.raises(SpecError, match="needs data.forget_file"):
        parse_spec("name: x\ndata: {source: custom}\ntarget: {source: train}\n")
    with pytest.raises(SpecError, match="embedded target goes with the embedded data"):
        parse_spec("name: x\ndata: {source: tofu}\n")
    spec, _ = parse_spec("name: x\ndata: {source: tofu, path: locuslab/TOFU, authors: 40}\ntarget: {source: train}\n")
    assert spec.data.authors == 40


# ---------------------------------------------------------------- search spaces, include, scheduler
def test_include_merges_one_base_and_names_the_file_of_a_problem(tmp_path):
    (tmp_path / "base.yaml").write_text("unlearn: {steps: 5, batch_size: 4}\neval:\n  max_new_tokens: 0\n")
    (tmp_path / "exp.yaml").write_text("name: exp\ninclude: base.yaml\nunlearn: {steps: 9}\n")
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "exp.yaml")
    assert any("eval (base.yaml line" in p for p in err.value.problems), err.value.problems
    (tmp_path / "base.yaml").write_text("unlearn: {steps: 5, batch_size: 4}\n")
    spec, _ = load_spec(tmp_path / "exp.yaml")
    assert spec.unlearn.steps == 9 and spec.unlearn.batch_size == 4  # the spec over its base, key by key
    (tmp_path / "base.yaml").write_text("include: other.yaml\n")
    with pytest.raises(SpecError, match="only one level of include"):
        load_spec(tmp_path / "exp.yaml")
    (tmp_path / "exp.yaml").write_text("name: exp\ninclude: nope.yaml\n")
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "exp.yaml")


RANDOM = """name: r
search:
  algorithm: random
  num_samples: 20
  seed: 3
  space:
    combiner: [{gdiff: {c: {uniform: [0.2, 0.4]}}}, ngdiff]
    lr: {loguniform: [1.0e-5, 1.0e-3]}
    lr_rule: [fixed, {autolr: {every: {choice: [5, 10]}}}]
    seed: [0, 1]
"""


def test_random_search_draws_from_ray_tune_distributions_reproducibly():
    _, a = parse_spec(RANDOM)
    _, b = parse_spec(RANDOM)
    assert a == b and len(a) == 21 and a[0].get("baseline")
    draws = a[1:]
    assert all(1e-5 <= p["lr"] <= 1e-3 for p in draws)
    assert {p["combiner"]["name"] for p in draws} == {"gdiff", "ngdiff"}
    cs = [p["combiner"]["params"]["c"] for p in draws if p["combiner"]["name"] == "gdiff"]
    assert cs and all(0.2 <= c <= 0.4 for c in cs) and len(set(cs)) == len(cs)
    assert all(p["combiner"]["params"] == {} for p in draws if p["combiner"]["name"] == "ngdiff")
    assert {p["lr_rule"]["params"].get("every") for p in draws if p["lr_rule"]["name"] == "autolr"} <= {5, 10}
    _, other = parse_spec(RANDOM.replace("seed: 3", "seed: 4"))
    assert other != a


def test_distribution_mistakes_are_reported_with_their_keys():
    text = """name: x
search:
  algorithm: grid
  space:
    combiner: [{gdiff: {c: {uniform: [0.5, 1.5]}}}]
    lr: {loguniform: [0, 1.0e-3]}
    seed: {uniform: [0, 3]}
"""
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    problems = "\n".join(err.value.problems)
    assert "c must lie in [0, 1]" in problems  # the upper end of the range is checked
    assert "search.space.lr.loguniform (line 6): loguniform needs low > 0" in problems
    assert "seed takes a list or {choice: [...]}" in problems
    with pytest.raises(SpecError, match="a grid needs lists of values"):
        parse_spec("name: x\nsearch: {space: {lr: {uniform: [1.0e-4, 1.0e-3]}}}")
    with pytest.raises(SpecError, match="Did you mean 'loguniform'"):
        parse_spec("name: x\nsearch: {algorithm: random, space: {lr: {loguniforn: [1.0e-4, 1.0e-3]}}}")


def test_optuna_and_asha_settings_are_checked():
    with pytest.raises(SpecError) as err:
        parse_spec("name: x\nsearch: {algorithm: optuna, sampler: cmaes}\nscheduler: {name: asha}\n")
    problems = "\n".join(err.value.problems)
    assert "optuna needs the metrics to optimise" in problems
    assert "optuna sampler must be gp, tpe or nsga2" in problems
    assert "set scheduler.metric" in problems and "set eval.every" in problems
    with pytest.raises(SpecError, match="'prob_f' is not among eval.metrics; add it to eval.metrics"):
        parse_spec("name: x\nsearch: {algorithm: optuna, objectives: [rouge_f, prob_f]}\n")
    with pytest.raises(SpecError, match="Did you mean 'optuna'"):
        parse_spec("name: x\nsearch: {algorithm: optuma}\n")
    spec, points = parse_spec("name: x\nsearch: {algorithm: optuna, objectives: [rouge_f, utility_r]}\n")
    assert points == [{"baseline": True, "seed": 0}]  # optuna asks for its points while the sweep runs


def test_optuna_space_is_conditional_and_indexed():
    import optuna

    from pareto.search import OptunaSpace
    from pareto.spec import search_space

    spec, _ = parse_spec("name: x\nsearch:\n  algorithm: optuna\n  objectives: [rouge_f]\n  space:\n"
                         "    combiner: [{gdiff: {c: {uniform: [0, 1]}}}, ngdiff]\n"
                         "    lr: {loguniform: [1.0e-5, 1.0e-3]}\n")
    define = OptunaSpace(search_space(spec), start=7)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    points = []
    for _ in range(12):
        trial = study.ask()
        points.append(define(trial)["point"])
        assert ("combiner.gdiff.c" in trial.params) == (points[-1]["combiner"]["name"] == "gdiff")
        study.tell(trial, 0.0)
    assert [p["index"] for p in points] == list(range(7, 19))
    assert {p["combiner"]["name"] for p in points} == {"gdiff", "ngdiff"}
    assert all(1e-5 <= p["lr"] <= 1e-3 for p in points)


def test_settings_that_only_mean_something_together():
    text = """name: x
data: {source: tofu, articles: 4, template: llama2-chat}
target: {source: train, train: {template: phi}}
eval: {metrics: [rouge_f, verbmem_f, forget_quality]}
"""
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    problems = "\n".join(err.value.problems)
    assert "data.articles applies to data.source muse_news only" in problems
    assert "set template once, as data.template" in problems
    assert "verbmem_f is for text data (data.source corpus, muse_news), not data.source tofu" in problems
    assert "forget_quality compares with the retain-only model" in problems
    with pytest.raises(SpecError, match="rouge_f is for question/answer data"):
        parse_spec("name: x\ndata: {source: muse_news}\ntarget: {source: train}\neval: {metrics: [rouge_f]}\n")
    with pytest.raises(SpecError, match="needs target.source: train"):
        parse_spec("name: x\ndata: {template: phi}\n")


def test_a_language_model_objective_is_refused_for_an_image_task_at_validation():
    with pytest.raises(SpecError, match="search.space.objective.*'idknll' is for language models only"):
        parse_spec("name: x\ndata: {source: cifar10}\ntarget: {source: train}\n"
                   "search: {space: {objective: [ga, {idknll: {}}]}}")
    parse_spec("name: x\nsearch: {space: {objective: [idknll]}}")  # the embedded default is a language model
