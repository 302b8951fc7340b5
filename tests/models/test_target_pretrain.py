"""target.train.pretrain: a stand-in for pretraining knowledge (evaluation splits learned before the
forget/retain rows): hashed only when set, validated, trained, given to the Retrain twin, recorded."""

import json

import pytest

from pareto.data.synthetic import generate_authors, split_by_author
from pareto.models.target import TargetConfig
from pareto.models.target_build import build_target, target_path
from pareto.prepare import target_config
from pareto.spec import SpecError, parse_spec

SMALL = dict(n_layer=1, n_embd=32, n_head=2, n_positions=64, max_epochs=25, target_accuracy=0.9)
QUIET = dict(log=lambda s: None)


@pytest.fixture(scope="module")
def data():
    forget, retain = split_by_author(generate_authors(n_authors=4, qa_per_author=4, seed=1), 0.25)
    # stand-ins for TOFU's real_authors / world_facts: other rows, with the eval splits' layout
    extra = generate_authors(n_authors=3, qa_per_author=4, seed=7)
    return forget, retain, {"real_authors": extra[:6], "world_facts": extra[6:], "retain": retain[:4]}


@pytest.fixture(scope="module")
def built(tmp_path_factory, data):
    forget, retain, splits = data
    cache = tmp_path_factory.mktemp("c")
    vocab = [r for rows in splits.values() for r in rows]
    cfg = TargetConfig(**SMALL, pretrain=["real_authors", "world_facts"])
    kw = dict(data_name="synthetic-4", cache_dir=cache, vocab_rows=vocab, eval_splits=splits, **QUIET)
    full = build_target(forget, retain, cfg, **kw)
    twin = build_target(forget, retain, TargetConfig(**SMALL, pretrain=["real_authors", "world_facts"],
                                                     retain_only=True), **kw)
    return cfg, cache, vocab, full, twin


def test_hashed_only_when_set_and_validated():
    plain = TargetConfig(**SMALL)
    # unset: hashed as before the option existed (old targets keep their keys)
    assert "pretrain" not in plain.hashed_fields() and "pretrain_mix" not in plain.hashed_fields()
    assert TargetConfig(**SMALL, pretrain=(), pretrain_mix=False).content_hash("d") == plain.content_hash("d")
    keys = {TargetConfig(**SMALL, **kw).content_hash("d", pretrain_hash="p") for kw in
            ({}, {"pretrain": ["real_authors"]}, {"pretrain": ["real_authors", "world_facts"]},
             {"pretrain": ["real_authors"], "pretrain_mix": False})}
    assert len(keys) == 4
    with_rows = TargetConfig(**SMALL, pretrain="real_authors")  # a lone name is one split
    assert with_rows.pretrain == ("real_authors",)
    assert with_rows.content_hash("d", pretrain_hash="p") != with_rows.content_hash("d", pretrain_hash="q")
    for bad, match in (([1], "pretrain must be a list"), (["a", "a"], "names a split twice"),
                       (["retain"], "beyond forget and retain")):
        with pytest.raises(ValueError, match=match):
            TargetConfig(pretrain=bad)
    with pytest.raises(ValueError, match="pretrain_mix must be true or false"):
        TargetConfig(pretrain=["real_authors"], pretrain_mix="no")


def test_unknown_split_names_the_known_ones(data, tmp_path):
    forget, retain, splits = data
    cfg = TargetConfig(**SMALL, pretrain=["real_author"])
    with pytest.raises(ValueError, match="unknown evaluation split 'real_author'; this data has real_authors, "
                                         "world_facts"):
        build_target(forget, retain, cfg, data_name="x", cache_dir=tmp_path, eval_splits=splits, **QUIET)
    assert not list(tmp_path.iterdir())  # nothing built


def test_spec_passes_it_through():
    spec, _ = parse_spec("""name: p
data: {source: tofu, path: locuslab/TOFU, authors: 10}
target: {source: train, retain_model: true, train: {base: tiny, pretrain: [real_authors, world_facts],
         target_accuracy: 0.9}}
unlearn: {steps: 1}
search: {space: {combiner: [ngdiff], lr: [1.0e-3]}}
""")
    assert target_config(spec).pretrain == ("real_authors", "world_facts")
    # a misspelt split is refused with the spec's other problems, before any work
    with pytest.raises(SpecError, match="target.train.pretrain.*unknown evaluation split.*'world_fact' of data.source "
                                        "tofu; it has: real_authors, world_facts"):
        parse_spec("""name: p
data: {source: tofu, path: locuslab/TOFU, authors: 10}
target: {source: train, train: {base: tiny, pretrain: [real_authors, world_fact]}}
search: {space: {combiner: [ngdiff], lr: [1.0e-3]}}
""")


def test_stand_in_is_trained_recorded_and_given_to_the_twin(built, data):
    cfg, cache, vocab, full, twin = built
    forget, retain, splits = data
    for path, retain_only in ((full, False), (twin, True)):
        m = json.loads((path / "manifest.json").read_text())
        assert m["retain_only"] is retain_only and m["config"]["pretrain"] == ["real_authors", "world_facts"]
        p = m["pretrain"]
        assert p["splits"] == ["real_authors", "world_facts"] and p["mix"] is True
        assert p["n_rows"] == {"real_authors": 6, "world_facts": 6}
        # learned: the stand-in's loss fell in its first phase, and it is still low after the build
        first, last = p["history"][0]["answer_loss"], p["history"][-1]["answer_loss"]
        assert last < first and p["after_build"]["answer_loss"] < first
        assert {"forget", "retain"} <= set(p["after_build"])
    a, b = (json.loads((p / "manifest.json").read_text())["pretrain"] for p in (full, twin))
    assert a["hash"] == b["hash"] and a["history"] == b["history"]  # the same first phase for both
    assert full == target_path(forget, retain, cfg, cache, vocab_rows=vocab, eval_splits=splits)
    assert full != target_path(forget, retain, TargetConfig(**SMALL), cache, vocab_rows=vocab)
    without = json.loads((build_target(forget, retain, TargetConfig(**SMALL), data_name="x", cache_dir=cache,
                                       vocab_rows=vocab, **QUIET) / "manifest.json").read_text())
    assert without["pretrain"] is None and "pretrain" in without["config"]
