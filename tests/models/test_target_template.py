"""The prompt template and BOS travel end to end: target config → training → manifest → trial → metrics."""

import dataclasses
import json

import numpy as np

import pytest

from pareto.data.encode import encode_rows
from pareto.data.synthetic import generate_authors, split_by_author
from pareto.data.templates import TEMPLATES
from pareto.metrics import eval_settings
from pareto.metrics.generation import greedy_answers
from pareto.metrics.loss import answer_losses
from pareto.models._build import answer_metrics, load_target
from pareto.models.target import TargetConfig
from pareto.models.target_build import build_target
from pareto.prepare import prepare_target, target_config
from pareto.spec import SpecError, parse_spec
from trainables.unlearn import read_jsonl, run_trial

SMALL = dict(n_layer=1, n_embd=32, n_head=2, n_positions=64, max_epochs=3)
QUIET = dict(log=lambda s: None)
SPEC = """name: tpl
unlearn: {steps: 3, batch_size: 4}
eval: {metrics: [loss_f_eval, loss_r_eval, rouge_f, prob_f], retain_items: 6, max_new_tokens: 8}
search:
  space: {combiner: [ngdiff], lr: [1.0e-3]}
"""


@pytest.fixture(scope="module")
def rows():
    return split_by_author(generate_authors(n_authors=4, qa_per_author=4, seed=1), 0.25)


@pytest.fixture(scope="module")
def llama(tmp_path_factory, rows):
    cfg = TargetConfig(**SMALL, template="llama2-chat", add_bos=False)
    return build_target(*rows, cfg, data_name="synthetic-4", cache_dir=tmp_path_factory.mktemp("c"), **QUIET)


def test_template_and_bos_are_hashed_validated_and_recorded(llama, rows):
    plain = TargetConfig(**SMALL)
    # defaults are left out of the hash: targets built before these settings existed keep their keys
    assert "template" not in plain.hashed_fields() and "add_bos" not in plain.hashed_fields()
    assert TargetConfig(**SMALL, template="plain", add_bos=True).content_hash("d") == plain.content_hash("d")
    keys = {TargetConfig(**SMALL, **kw).content_hash("d") for kw in
            ({}, {"template": "llama2-chat"}, {"add_bos": False}, {"template": "llama2-chat", "add_bos": False})}
    assert len(keys) == 4  # a different template or BOS choice is a different target
    with pytest.raises(ValueError, match="unknown prompt template 'llama'.*Available: plain, phi, llama2-chat"):
        TargetConfig(template="llama")
    m = json.loads((llama / "manifest.json").read_text())
    assert (m["template"], m["add_bos"], m["data_kind"]) == ("llama2-chat", False, "qa")
    assert (m["config"]["template"], m["config"]["add_bos"]) == ("llama2-chat", False)
    # trained and measured with them: the manifest's accuracy is that of the llama2-chat, BOS-less encoding
    model, tok, _ = load_target(llama)
    examples = encode_rows(tok, rows[0] + rows[1], max_length=64, template="llama2-chat", add_bos=False)
    assert all(e.input_ids[0] != tok.bos_token_id and tok.unk_token_id not in e.input_ids for e in examples)
    assert tok.convert_ids_to_tokens(examples[0].input_ids[:3]) == ["[", "INST", "]"]
    acc, loss = answer_metrics(model, examples, tok.pad_token_id)
    assert acc == pytest.approx(m["answer_accuracy"], abs=1e-6) and loss == pytest.approx(m["final_train_loss"], rel=1e-4)


def test_trial_reads_the_template_from_the_manifest(llama):
    spec, points = parse_spec(SPEC)
    model, tok, manifest = load_target(llama)
    settings = eval_settings(manifest)
    assert (settings.template, settings.add_bos, settings.max_length) == ("llama2-chat", False, 64)
    forget = read_jsonl(llama / "forget.jsonl")
    baseline = []
    run_trial({"spec": spec.to_dict(), "target_dir": str(llama)}, points[0], baseline.append)
    final = baseline[-1]
    recorded = json.loads(final["metric_settings"])
    for name in ("loss_f_eval", "rouge_f", "prob_f"):
        assert (recorded[name]["template"], recorded[name]["add_bos"]) == ("llama2-chat", False)
    # the numbers are those of llama2-chat prompts without BOS, not of the plain template with BOS
    sums, counts = answer_losses(model, tok, forget, template="llama2-chat", add_bos=False, max_length=64)
    assert final["loss_f_eval"] == pytest.approx(sum(sums) / sum(counts), rel=1e-6)
    plain_sums, plain_counts = answer_losses(model, tok, forget)
    assert final["loss_f_eval"] != pytest.approx(sum(plain_sums) / sum(plain_counts), rel=1e-3)
    gens = greedy_answers(model, tok, [r["question"] for r in forget], max_new_tokens=8, add_bos=False,
                          template=TEMPLATES["llama2-chat"])
    items = [i for i in final["items"] if i["metric"] == "rouge_f"]
    assert [i["generation"] for i in items] == gens
    # an unlearning trial encodes its batches the same way and runs
    trial = []
    run_trial({"spec": spec.to_dict(), "target_dir": str(llama)}, points[1], trial.append)
    assert trial[-1]["status"] == "ok" and trial[-1]["steps_done"] == 3
    assert np.isfinite(trial[-1]["loss_f_eval"]) and trial[-1]["loss_f_eval"] != final["loss_f_eval"]


def test_prepare_passes_the_data_section_and_refuses_what_cannot_work():
    # refused when the spec is read, before any work (pareto.spec), and by prepare_target itself
    with pytest.raises(SpecError, match="embedded target is trained with the plain template and BOS"):
        parse_spec(SPEC + "data: {source: embedded, template: llama2-chat}\n")
    spec, _ = parse_spec(SPEC + "data: {source: embedded}\n")
    for bad in ({"template": "llama2-chat"}, {"add_bos": False}):
        with pytest.raises(ValueError, match="embedded target is trained with the plain template and BOS"):
            prepare_target(dataclasses.replace(spec, data=dataclasses.replace(spec.data, **bad)), **QUIET)
    custom = ("data: {source: tofu, template: llama2-chat, add_bos: false, context: 48}\n"
              "target: {source: train, train: {base: tiny, n_positions: 64}}\n")
    cfg = target_config(parse_spec(SPEC + custom)[0])
    assert (cfg.template, cfg.add_bos, cfg.max_length) == ("llama2-chat", False, 48)
    clash = custom.replace("n_positions: 64", "n_positions: 64, template: phi")
    with pytest.raises(SpecError, match="set template once, as data.template"):
        parse_spec(SPEC + clash)
