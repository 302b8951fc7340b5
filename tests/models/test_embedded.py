import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pareto.data.qa import collate, encode_prompt, encode_qa, left_pad
from pareto.data.synthetic import FACT_KINDS, generate_authors
from pareto.models.embedded import (
    SPECIAL_TOKENS, EmbeddedConfig, _publish, answer_accuracy, build_embedded_target,
    build_tokenizer, load_target,
)

REPO = Path(__file__).resolve().parents[2]
# A target that builds in about a second: 4 authors, 1 of them forgotten, a 1-layer model.
SMALL = EmbeddedConfig(n_authors=4, qa_per_author=4, forget_fraction=0.25, n_layer=1,
                       n_embd=32, n_head=2, max_epochs=3)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# ------------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("seed", [0, 1])
def test_tokenizer_covers_every_word_and_round_trips(seed):
    rows = generate_authors(n_authors=30, qa_per_author=len(FACT_KINDS), seed=seed)
    tok = build_tokenizer(rows)
    assert [tok.pad_token, tok.unk_token, tok.bos_token, tok.eos_token] == list(SPECIAL_TOKENS)
    assert [tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id] == [0, 1, 2, 3]
    vocab = tok.get_vocab()
    words = sorted(vocab, key=vocab.get)[len(SPECIAL_TOKENS):]
    assert words == sorted(words)  # deterministic order
    assert {"Question", "Answer", ":"} <= set(vocab)
    assert len(tok) < 600
    for r in rows:
        for text in [r["question"], r["answer"], r["paraphrased_answer"],
                     r["paraphrased_question"], *r["perturbed_answer"]]:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert tok.unk_token_id not in ids, text
            assert tok.decode(ids) == text
        ex = encode_qa(tok, r["question"], r["answer"])
        assert tok.unk_token_id not in ex.input_ids
    assert build_tokenizer(rows).get_vocab() == vocab


def test_unknown_words_map_to_unk():
    tok = build_tokenizer(generate_authors(2, 2))
    assert tok("zzyzx", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]


# ------------------------------------------------------------------------------- small target


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache-small")
    lines = []
    path = build_embedded_target(SMALL, cache, log=lines.append)
    return cache, path, lines


def test_small_target_layout_and_manifest(small):
    cache, path, lines = small
    assert path.parent == cache
    assert path.name == "embedded-" + SMALL.content_hash()[:16]
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temp dirs left behind
    names = {p.name for p in path.iterdir()}
    assert {"manifest.json", "config.json", "model.safetensors", "tokenizer.json",
            "forget.jsonl", "retain.jsonl"} <= names
    m = json.loads((path / "manifest.json").read_text())
    assert m["kind"] == "embedded"
    assert m["hash"] == SMALL.content_hash()
    assert m["config"] == EmbeddedConfig(**m["config"]).__dict__ == SMALL.__dict__
    assert m["generator_version"] == 1 and m["trainer_version"] >= 1
    data = (path / "forget.jsonl").read_bytes() + (path / "retain.jsonl").read_bytes()
    assert m["data_hash"] == hashlib.sha256(data).hexdigest()
    assert 1 <= m["epochs"] <= SMALL.max_epochs
    assert m["final_train_loss"] > 0 and 0 <= m["answer_accuracy"] <= 1
    assert m["wall_seconds"] > 0
    assert set(m["versions"]) >= {"torch", "transformers"}
    assert any("epoch" in line for line in lines)

    rows = generate_authors(SMALL.n_authors, SMALL.qa_per_author, SMALL.data_seed)
    forget, retain = read_jsonl(path / "forget.jsonl"), read_jsonl(path / "retain.jsonl")
    assert retain + forget == rows
    assert {r["author_index"] for r in forget} == {3}
    assert (m["n_rows"], m["n_forget"], m["n_retain"]) == (16, 4, 12)


def test_small_target_loads(small):
    _, path, _ = small
    model, tok, manifest = load_target(path)
    assert not model.training
    assert model.config.vocab_size == len(tok) == manifest["vocab_size"]
    assert (model.config.bos_token_id, model.config.eos_token_id,
            model.config.pad_token_id) == (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert model.config.n_layer == SMALL.n_layer and model.config.n_embd == SMALL.n_embd
    assert sum(p.numel() for p in model.parameters()) == manifest["n_params"]
    # the saved weights give the accuracy and loss the manifest reports
    rows = read_jsonl(path / "retain.jsonl") + read_jsonl(path / "forget.jsonl")
    batch = collate([encode_qa(tok, r["question"], r["answer"]) for r in rows],
                    tok.pad_token_id)
    acc, loss = answer_accuracy(model, batch)
    assert acc == pytest.approx(manifest["answer_accuracy"], abs=1e-6)
    assert loss == pytest.approx(manifest["final_train_loss"], rel=1e-4)


def test_second_call_reuses_the_cache(small):
    cache, path, _ = small
    manifest = path / "manifest.json"
    before = (manifest.stat().st_mtime_ns, (path / "model.safetensors").stat().st_mtime_ns)
    lines = []
    t0 = time.perf_counter()
    again = build_embedded_target(SMALL, cache, log=lines.append)
    assert time.perf_counter() - t0 < 0.5
    assert again == path and lines == []
    assert (manifest.stat().st_mtime_ns,
            (path / "model.safetensors").stat().st_mtime_ns) == before


def test_cache_dir_defaults_to_env(small, monkeypatch):
    cache, path, _ = small
    monkeypatch.setenv("PARETO_CACHE", str(cache))
    assert build_embedded_target(SMALL, log=lambda s: None) == path


def test_build_is_deterministic_and_restores_torch_state(small, tmp_path):
    _, path, _ = small
    threads = torch.get_num_threads()
    rng = torch.random.get_rng_state()
    torch.set_num_threads(2)
    try:  # the build uses one thread (the default) and gives the thread count back
        other = build_embedded_target(SMALL, tmp_path, log=lambda s: None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.random.get_rng_state(), rng)
    for name in ("model.safetensors", "tokenizer.json", "forget.jsonl", "retain.jsonl"):
        assert (other / name).read_bytes() == (path / name).read_bytes(), name


def test_a_different_config_is_a_different_target(small):
    cfg = EmbeddedConfig(**{**SMALL.__dict__, "train_seed": 1})
    assert cfg.content_hash() != SMALL.content_hash()


def test_failed_build_leaves_nothing(tmp_path):
    cfg = EmbeddedConfig(**{**SMALL.__dict__, "n_positions": 8})
    with pytest.raises(ValueError, match="n_positions"):
        build_embedded_target(cfg, tmp_path, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_invalid_config_names_every_problem():
    with pytest.raises(ValueError) as e:
        EmbeddedConfig(n_embd=30, n_head=4, lr=0.0, target_accuracy=1.5)
    for word in ("n_embd", "lr", "target_accuracy"):
        assert word in str(e.value)


def test_publish_keeps_the_first_complete_target(tmp_path):
    final = tmp_path / "embedded-x"
    final.mkdir()
    (final / "manifest.json").write_text("first")
    tmp = tmp_path / ".embedded-x.tmp"
    tmp.mkdir()
    (tmp / "manifest.json").write_text("second")
    assert _publish(tmp, final, log=lambda s: None) == final
    assert (final / "manifest.json").read_text() == "first" and not tmp.exists()
    # an incomplete directory in the way is replaced
    (final / "manifest.json").unlink()
    tmp.mkdir()
    (tmp / "manifest.json").write_text("second")
    assert _publish(tmp, final, log=lambda s: None) == final
    assert (final / "manifest.json").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["embedded-x"]


@pytest.mark.slow
def test_concurrent_builders_share_one_target(small, tmp_path):
    _, path, _ = small
    code = ("import sys; from pathlib import Path; "
            "from pareto.models.embedded import build_embedded_target, EmbeddedConfig; "
            f"cfg = EmbeddedConfig(**{SMALL.__dict__!r}); "
            "print(build_embedded_target(cfg, sys.argv[1], log=lambda s: None))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    built = {Path(o[0].strip().splitlines()[-1]) for o in outs}
    assert built == {tmp_path / path.name}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert load_target(tmp_path / path.name)[2]["hash"] == SMALL.content_hash()


# ------------------------------------------------------------------------------- default target


@pytest.fixture(scope="module")
def default_target(tmp_path_factory):
    return build_embedded_target(EmbeddedConfig(), tmp_path_factory.mktemp("cache-default"),
                                 log=lambda s: None)


@pytest.mark.slow
def test_default_target_memorises(default_target):
    model, tok, m = load_target(default_target)
    cfg = EmbeddedConfig()
    assert m["reached_target"] and m["answer_accuracy"] >= cfg.target_accuracy
    assert m["epochs"] < cfg.max_epochs
    assert (m["n_rows"], m["n_forget"], m["n_authors_forget"]) == (200, 20, 2)
    # greedy decoding reproduces most forget answers word for word
    rows = read_jsonl(default_target / "forget.jsonl")
    batch = left_pad([encode_prompt(tok, r["question"]) for r in rows], tok.pad_token_id)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=32, do_sample=False)
    texts = tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    exact = sum(t.strip() == r["answer"] for t, r in zip(texts, rows))
    assert exact >= 0.8 * len(rows), list(zip(texts, [r["answer"] for r in rows]))
