import hashlib
import json
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from pareto.data.qa import encode_qa
from pareto.data.synthetic import generate_authors, split_by_author
from pareto.data.tofu import load_tofu, tofu_attach_perturbed, tofu_author_subset
from pareto.models import target_build as target_mod
from pareto.models._build import (
    answer_metrics, build_tokenizer, epoch_batches, load_target, new_tiny_gpt2, train_on_answers,
)
from pareto.models.target import TargetConfig, data_hash
from pareto.models.target_build import build_target, rouge_item_indices, target_path

# builds in about a second: 4 synthetic authors (1 forgotten), a 1-layer model, 3 epochs
SMALL = TargetConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64, max_epochs=3)
QUIET = dict(log=lambda s: None)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def rows():
    return split_by_author(generate_authors(n_authors=4, qa_per_author=4, seed=0), 0.25)


@pytest.fixture(scope="module")
def small(tmp_path_factory, rows):
    cache = tmp_path_factory.mktemp("cache")
    lines = []
    path = build_target(*rows, SMALL, data_name="synthetic-4", cache_dir=cache,
                        log=lines.append)
    return cache, path, lines


@pytest.fixture(scope="module")
def tofu_dir(real_data):
    return real_data("tofu")


# ------------------------------------------------------------------------------- config


def test_defaults_resolve_by_base():
    tiny = TargetConfig().resolved()
    assert (tiny.optimizer, tiny.lr, tiny.batch_size, tiny.until_memorised) == (
        "adam", 3e-3, 16, True)
    assert tiny.target_accuracy == 0.998 and tiny.max_epochs >= 100 and tiny.epochs is None
    assert (tiny.lr_schedule, tiny.group_by_length) == ("plateau", True)
    assert tiny.max_length == tiny.n_positions
    # NGDiff App. E.3: Adam, lr 1e-5 (or 2e-5), batch 16 (or 32), 25 epochs
    real = TargetConfig(base="some/model").resolved()
    assert (real.optimizer, real.lr, real.batch_size, real.epochs) == ("adam", 1e-5, 16, 25)
    assert not real.until_memorised and real.n_layer is None and real.target_accuracy is None
    assert (real.lr_schedule, real.group_by_length) == ("constant", False)
    assert not real.trust_remote_code
    # explicit defaults, the execution settings and a resolved config hash alike
    key = TargetConfig().content_hash("d")
    assert TargetConfig(lr=3e-3, n_layer=2, num_threads=2, device="cpu").content_hash("d") == key
    assert tiny.content_hash("d") == key
    assert TargetConfig(seed=1).content_hash("d") != key
    assert TargetConfig().content_hash("e") != key


def test_invalid_config_names_every_problem():
    with pytest.raises(ValueError) as e:
        TargetConfig(base="org/model", n_layer=2, lr=0.0, optimizer="sgd", max_epochs=3,
                     batch_size=0)
    for word in ("n_layer", "lr", "optimizer", "max_epochs", "batch_size"):
        assert word in str(e.value)
    with pytest.raises(ValueError, match="epochs"):
        TargetConfig(epochs=5)  # tiny trains until memorised: the cap is max_epochs
    with pytest.raises(ValueError, match="trust_remote_code"):
        TargetConfig(trust_remote_code=True)
    with pytest.raises(ValueError, match="n_embd"):
        TargetConfig(n_embd=30, n_head=4)


def test_rouge_items_are_spread_and_capped():
    assert rouge_item_indices(5) == [0, 1, 2, 3, 4]
    idx = rouge_item_indices(720)
    assert len(idx) == 200 and idx == sorted(set(idx)) and idx[0] == 0 and idx[-1] < 720


# ------------------------------------------------------------------------------- tiny target


def test_tiny_target_layout_and_manifest(small, rows):
    cache, path, lines = small
    forget, retain = rows
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temp dirs left behind
    assert {"manifest.json", "config.json", "model.safetensors", "tokenizer.json",
            "forget.jsonl", "retain.jsonl"} <= {p.name for p in path.iterdir()}
    m = json.loads((path / "manifest.json").read_text())
    assert path.name == "target-" + m["hash"][:16] and m["kind"] == "target"
    assert (m["base"], m["data_name"], m["retain_only"], m["trained_on"]) == (
        "tiny", "synthetic-4", False, "forget+retain")
    data = (path / "forget.jsonl").read_bytes() + (path / "retain.jsonl").read_bytes()
    assert m["data_hash"] == hashlib.sha256(data).hexdigest() == data_hash(forget, retain)
    assert read_jsonl(path / "forget.jsonl") == forget
    assert read_jsonl(path / "retain.jsonl") == retain
    assert m["config"] == {**SMALL.resolved().__dict__}
    assert (m["config"]["optimizer"], m["config"]["lr"], m["config"]["batch_size"]) == (
        "adam", 3e-3, 16)
    assert (m["n_rows"], m["n_forget"], m["n_retain"], m["n_train"]) == (16, 4, 12, 16)
    assert 1 <= m["epochs"] <= 3 and len(m["history"]) == m["epochs"]
    assert m["final_train_loss"] > 0 and 0 <= m["answer_accuracy"] <= 1
    assert m["reached_target"] in (True, False)
    assert set(m["rouge_l_recall"]) == {"forget", "retain"}
    assert all(0 <= v <= 1 for v in m["rouge_l_recall"].values())
    assert m["rouge_items"] == {"forget": 4, "retain": 12}
    assert m["wall_seconds"] > 0 and m["device"] == "cpu"
    assert 0 < m["cpu_seconds"] <= m["wall_seconds"] * (torch.get_num_threads() + 1)  # this process only
    assert set(m["versions"]) >= {"torch", "transformers"}
    assert any("epoch" in line for line in lines)


def test_tiny_target_loads_and_matches_its_manifest(small):
    _, path, _ = small
    model, tok, m = load_target(path)
    assert not model.training and model.config.vocab_size == len(tok) == m["vocab_size"]
    assert sum(p.numel() for p in model.parameters()) == m["n_params"]
    rows = read_jsonl(path / "forget.jsonl") + read_jsonl(path / "retain.jsonl")
    acc, loss = answer_metrics(model, [encode_qa(tok, r["question"], r["answer"])
                                       for r in rows], tok.pad_token_id)
    assert acc == pytest.approx(m["answer_accuracy"], abs=1e-6)
    assert loss == pytest.approx(m["final_train_loss"], rel=1e-4)


def test_second_call_reuses_the_cache(small, rows, monkeypatch):
    cache, path, _ = small
    before = (path / "model.safetensors").stat().st_mtime_ns
    lines = []
    t0 = time.perf_counter()
    # the same thing asked for: explicit defaults, another label, more threads
    again = build_target(*rows, TargetConfig(**{**SMALL.__dict__, "lr": 3e-3, "num_threads": 2}),
                         data_name="another label", cache_dir=cache, log=lines.append)
    assert time.perf_counter() - t0 < 1.0
    assert again == path == target_path(*rows, SMALL, cache) and lines == []
    assert (path / "model.safetensors").stat().st_mtime_ns == before
    monkeypatch.setenv("PARETO_CACHE", str(cache))
    assert build_target(*rows, SMALL, data_name="x", **QUIET) == path


def test_retain_only_trains_on_retain_only(small, rows):
    cache, full_path, _ = small
    forget, retain = rows
    path = build_target(forget, retain, TargetConfig(**{**SMALL.__dict__, "retain_only": True}),
                        data_name="synthetic-4", cache_dir=cache, **QUIET)
    assert path != full_path
    m = json.loads((path / "manifest.json").read_text())
    assert (m["retain_only"], m["trained_on"], m["n_train"]) == (True, "retain", len(retain))
    assert (m["n_forget"], m["n_retain"]) == (len(forget), len(retain))
    assert read_jsonl(path / "forget.jsonl") == forget  # both splits saved for the trials
    # one tokenizer for the target and its Retrain reference
    assert (path / "tokenizer.json").read_bytes() == (full_path / "tokenizer.json").read_bytes()
    # the accuracy it reports is the one on the retain rows it was trained on
    model, tok, _ = load_target(path)
    acc, _ = answer_metrics(model, [encode_qa(tok, r["question"], r["answer"]) for r in retain],
                            tok.pad_token_id)
    assert acc == pytest.approx(m["answer_accuracy"], abs=1e-6)


def test_failed_build_leaves_nothing(tmp_path, rows, monkeypatch):
    with pytest.raises(ValueError, match="n_positions"):
        build_target(*rows, TargetConfig(**{**SMALL.__dict__, "n_positions": 8}),
                     data_name="x", cache_dir=tmp_path, **QUIET)
    assert list(tmp_path.iterdir()) == []

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted after training")

    monkeypatch.setattr(target_mod, "_greedy_rouge", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        build_target(*rows, SMALL, data_name="x", cache_dir=tmp_path, **QUIET)
    assert list(tmp_path.iterdir()) == []


def test_bad_rows_are_refused(tmp_path, rows):
    forget, retain = rows
    with pytest.raises(ValueError, match="forget_rows: no rows"):
        build_target([], retain, SMALL, data_name="x", cache_dir=tmp_path, **QUIET)
    with pytest.raises(ValueError, match="retain_rows row 1: field 'answer'"):
        build_target(forget, [retain[0], {"question": "q"}], SMALL, data_name="x",
                     cache_dir=tmp_path, **QUIET)


def test_micro_batches_give_the_batch_gradient(rows):
    forget, retain = rows
    tok = build_tokenizer(forget + retain)
    examples = [encode_qa(tok, r["question"], r["answer"]) for r in forget + retain]
    params = []
    for micro in (None, 3):
        torch.manual_seed(0)
        model = new_tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64)
        train_on_answers(model, examples, pad_id=tok.pad_token_id, optimizer="adam", lr=1e-3,
                         weight_decay=0.0, batch_size=8, seed=0, epochs=2,
                         target_accuracy=None, micro_batch_size=micro, tag="t", **QUIET)
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(params[0], params[1], rtol=1e-4, atol=1e-5)


def test_grouped_batches_cover_every_example_once_with_less_padding():
    lengths = [int(x) for x in torch.randint(5, 100, (300,), generator=torch.Generator().manual_seed(1))]

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = epoch_batches(lengths, 16, torch.Generator().manual_seed(0), group_by_length=True)
    plain = epoch_batches(lengths, 16, torch.Generator().manual_seed(0))
    for batches in (grouped, plain):
        assert sorted(i for b in batches for i in b) == list(range(300))
        assert all(1 <= len(b) <= 16 for b in batches)
    assert padded(grouped) < 0.8 * padded(plain)
    assert grouped == epoch_batches(lengths, 16, torch.Generator().manual_seed(0), True)


def test_plateau_schedule_halves_a_rate_that_does_not_help(rows):
    forget, retain = rows
    tok = build_tokenizer(forget + retain)
    examples = [encode_qa(tok, r["question"], r["answer"]) for r in forget + retain]
    torch.manual_seed(0)
    model = new_tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64)
    result = train_on_answers(model, examples, pad_id=tok.pad_token_id, optimizer="adam",
                              lr=3.0, weight_decay=0.0, batch_size=16, seed=0, epochs=8,
                              target_accuracy=None, lr_schedule="plateau", tag="t", **QUIET)
    rates = [h["lr"] for h in result["history"]]
    assert rates[0] == 3.0 and rates[-1] < 3.0
    assert all(b in (a, a / 2) for a, b in zip(rates, rates[1:]))


# ------------------------------------------------------------------------------- a "real" base


def test_real_base_from_a_local_directory_offline(tmp_path, rows, monkeypatch):
    forget, retain = rows
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = tmp_path / "base"
    tok = build_tokenizer(forget + retain)
    torch.manual_seed(0)
    new_tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64).save_pretrained(base)
    tok.save_pretrained(base)

    cfg = TargetConfig(base=str(base), epochs=1, lr=1e-3)
    cache = tmp_path / "cache"
    lines = []
    path = build_target(forget, retain, cfg, data_name="synthetic-4", cache_dir=cache,
                        log=lines.append)
    m = json.loads((path / "manifest.json").read_text())
    assert m["base"] == str(base) and m["base_fingerprint"]
    assert (m["epochs"], m["reached_target"], m["n_train"]) == (1, None, 16)
    assert m["config"]["epochs"] == 1 and m["config"]["optimizer"] == "adam"
    assert m["config"]["max_length"] == 512 and m["config"]["n_layer"] is None
    assert set(m["rouge_l_recall"]) == {"forget", "retain"}
    model, tok2, _ = load_target(path)
    assert tok2.get_vocab() == tok.get_vocab()
    assert sum(p.numel() for p in model.parameters()) == m["n_params"]
    # the weights moved away from the base's
    original = AutoModelForCausalLM.from_pretrained(base)
    assert not torch.equal(original.transformer.wte.weight, model.transformer.wte.weight)
    # a changed base directory is another target
    (base / "notes.txt").write_text("changed")
    assert target_path(forget, retain, cfg, cache) != path


def test_missing_local_base_says_so(tmp_path, rows):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        build_target(*rows, TargetConfig(base=str(tmp_path / "nope")), data_name="x",
                     cache_dir=tmp_path, **QUIET)


# ------------------------------------------------------------------------------- TOFU subset


def test_tofu_author_subset_is_whole_last_authors(tofu_dir):
    full = load_tofu("full", tofu_dir)
    forget, retain = tofu_author_subset(full, n_authors=40, forget_fraction=0.1)
    assert (len(forget), len(retain)) == (80, 720)
    assert [r["item_id"] for r in retain] == [f"full:{i}" for i in range(3200, 3920)]
    assert [r["item_id"] for r in forget] == [f"full:{i}" for i in range(3920, 4000)]
    # forget10 is the last 10 % of all authors, so these 4 authors are the end of it
    tail = load_tofu("forget10", tofu_dir)[-80:]
    assert [(r["question"], r["answer"]) for r in forget] == [
        (r["question"], r["answer"]) for r in tail]
    assert full[3920] is not forget[0] and full[3920] == forget[0]  # copies
    f2, r2 = tofu_author_subset(full, n_authors=10, forget_fraction=0.2)
    assert (len(f2), len(r2)) == (40, 160)
    with pytest.raises(ValueError, match="0 authors"):
        tofu_author_subset(full, n_authors=5, forget_fraction=0.1)
    with pytest.raises(ValueError, match="201"):
        tofu_author_subset(full, n_authors=201)
    with pytest.raises(ValueError, match="whole authors"):
        tofu_author_subset(full[:-1])


def test_tofu_attach_perturbed(tofu_dir):
    forget, retain = tofu_author_subset(load_tofu("full", tofu_dir), n_authors=40)
    sources = [load_tofu("forget10_perturbed", tofu_dir), load_tofu("retain_perturbed", tofu_dir)]
    f2, r2 = (tofu_attach_perturbed(rows, *sources) for rows in (forget, retain))
    assert all(len(r["perturbed_answer"]) == 5 and r["paraphrased_answer"] for r in f2)
    assert [r["item_id"] for r in f2] == [r["item_id"] for r in forget]
    # authors 180-199 are forget10's; 160-179 have no perturbed rows in TOFU
    assert sum("perturbed_answer" in r for r in r2) == 320
    assert "perturbed_answer" not in forget[0]  # the input is not modified


def test_tiny_target_on_real_tofu_authors(tofu_dir, tmp_path):
    forget, retain = tofu_author_subset(load_tofu("full", tofu_dir), n_authors=2,
                                        forget_fraction=0.5)
    cfg = TargetConfig(n_layer=1, n_embd=32, n_head=2, max_epochs=2)
    path = build_target(forget, retain, cfg, data_name="tofu-last2", cache_dir=tmp_path,
                        **QUIET)
    m = json.loads((path / "manifest.json").read_text())
    assert (m["n_forget"], m["n_retain"], m["n_train"], m["epochs"]) == (20, 20, 40, 2)
    assert m["rouge_items"] == {"forget": 20, "retain": 20}
