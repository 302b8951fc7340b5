"""The data-source and task registries: each source declares what it reads and feeds, the spec asks
them, and nothing outside pareto/sources switches on a source's name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from analysis.results import DATASETS, DEFAULT_PLANES
from pareto.metrics import METRICS
from pareto.sources import SOURCES, TASKS, load_data, source_of
from pareto.spec import DataSpec, SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]
NAMES = SOURCES.names()


@pytest.mark.parametrize("name", NAMES)
def test_a_source_declares_real_keys_metrics_planes_and_task(name):
    source = SOURCES.get(name)
    fields = {f.name for f in dataclasses.fields(DataSpec)}
    assert set(source.keys) <= fields - {"source"}, name
    assert source.task in TASKS, name
    for metric in source.metrics + tuple(m for plane in source.planes for m in plane):
        assert metric in METRICS, (name, metric)
        assert METRICS.get(metric).data in (None, *source.metric_data), (name, metric)
    assert source.planes[0] == ("loss_f_eval", "loss_r_eval"), "the loss plane (Definition 1) comes first"
    assert source.family and source.summary


@pytest.mark.parametrize("name", NAMES)
def test_the_analysis_tables_agree_with_the_sources(name):
    """analysis/ reads Parquet only (no pareto import), so it keeps a reader's copy of the families
    and planes for results written before they were recorded; it must say what the sources say."""
    source = SOURCES.get(name)
    if source.family in DATASETS:
        assert name in DATASETS[source.family]
        assert DEFAULT_PLANES[source.family] == source.planes


def test_each_source_gets_its_own_default_metrics():
    for name, extra in (("embedded", ""), ("muse_news", ", articles: 2"), ("cifar10", "")):
        target = "embedded" if name == "embedded" else "train"
        spec, _ = parse_spec(f"name: x\ndata: {{source: {name}{extra}}}\ntarget: {{source: {target}}}\n")
        assert spec.eval.metrics == SOURCES.get(name).metrics


def test_a_key_of_another_source_is_refused_naming_its_readers():
    with pytest.raises(SpecError) as err:
        parse_spec("name: x\ndata: {source: tofu, per_class: 3, articles: 4, forget_file: f.json}\n"
                   "target: {source: train}\n")
    problems = "\n".join(err.value.problems)
    assert "data.per_class applies to data.source cifar10, cifar100, image_folder only, not tofu" in problems
    assert "data.articles applies to data.source muse_news only, not tofu" in problems
    assert "data.forget_file applies to data.source corpus, custom only, not tofu" in problems


def test_an_unknown_source_lists_the_registered_ones():
    with pytest.raises(SpecError) as err:
        parse_spec("name: x\ndata: {source: tofuu}\ntarget: {source: train}\n")
    assert "unknown data source 'tofuu'. Did you mean 'tofu'? Available: " + ", ".join(NAMES) in err.value.problems[0]


def test_load_data_refuses_a_source_built_with_its_target():
    with pytest.raises(TypeError, match="built together with its target"):
        load_data({"source": "embedded"})
    assert source_of("cifar10").default_forget_class == "dog"


#: `d.source == "tofu"`, `source in ("cifar10", ...)`, `source == "muse_news"`: a switch on a source's name.
SWITCH = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](%s)["']""" % "|".join(NAMES))


def test_nothing_outside_the_sources_switches_on_a_source_name():
    found = []
    for path in sorted([*ROOT.glob("pareto/**/*.py"), *ROOT.glob("trainables/**/*.py")]):
        if "sources" in path.relative_to(ROOT).parts:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if SWITCH.search(line) and "target.source" not in line and "t.source" not in line \
                    and 'get("kind")' not in line:  # a target manifest's kind, not a data source
                found.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not found, "ask pareto.sources instead:\n" + "\n".join(found)
