"""Spec parsing: every problem at once, with key paths and lines; grids that expand right."""

from pathlib import Path

import pytest

from pareto.search import expand_grid, parse_space
from pareto.spec import SpecError, load_spec, parse_spec, trial_label


def grid(raw: dict) -> list[dict]:
    problems = []
    points = expand_grid(parse_space(raw, ("search", "space"), lambda path, msg: problems.append(msg)))
    assert not problems, problems
    return points

SWEEPS = sorted(p for p in (Path(__file__).parents[1] / "sweeps").glob("*.yaml") if not p.name.startswith("_"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_shipped_spec_validates_and_opens_with_its_command(path):
    spec, points = load_spec(path)
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
    with pytest.raises(SpecError, match="Pair 'famo' with objective npo or simnpo"):
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
