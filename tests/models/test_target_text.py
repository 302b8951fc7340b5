"""A target trained on a text corpus (MUSE-News articles): windows, a vocabulary that covers the
evaluation texts, a verbmem-style check in the manifest, and the text loss metric."""

import json

import pytest
import torch

from pareto.data.encode import encode_rows
from pareto.data.qa import collate
from pareto.sources import load_data
from pareto.lm import token_nll
from pareto.metrics import EvalContext, eval_settings, evaluate
from pareto.metrics.generation import encode_text
from pareto.models._build import answer_metrics, load_target
from pareto.models.target import TargetConfig
from pareto.models.target_build import build_target, target_path

CFG = TargetConfig(n_layer=1, n_embd=32, n_head=2, n_positions=384, max_length=48, max_epochs=2)
QUIET = dict(log=lambda s: None)


@pytest.fixture(scope="module")
def built(tmp_path_factory, real_data):
    data = load_data({"source": "muse_news", "path": str(real_data("muse_news")), "articles": 8, "context": 48})
    forget, retain = data.forget[:2], data.retain[:2]
    vocab = [r for rows in data.eval_splits.values() for r in rows]
    cache = tmp_path_factory.mktemp("cache")
    path = build_target(forget, retain, CFG, data_name="muse-2", cache_dir=cache, vocab_rows=vocab, **QUIET)
    return path, data, forget, retain, vocab, cache


def test_text_target_trains_on_windows_and_knows_every_evaluated_word(built):
    path, data, forget, retain, vocab, cache = built
    m = json.loads((path / "manifest.json").read_text())
    assert (m["data_kind"], m["n_truncated"], m["template"], m["add_bos"]) == ("text", 0, "plain", True)
    assert m["vocab_rows"] == len(vocab) and m["check"].startswith("ROUGE-L F1 of greedy window continuations")
    assert set(m["rouge_l"]) == {"forget", "retain"} and "rouge_l_recall" not in m
    model, tok, _ = load_target(path)
    windows = encode_rows(tok, forget + retain, max_length=48)
    assert m["n_examples"] == len(windows) and all(len(w.input_ids) <= 48 for w in windows)
    assert m["n_forget_examples"] == len(encode_rows(tok, forget, max_length=48)) > len(forget)
    acc, loss = answer_metrics(model, windows, tok.pad_token_id)
    assert acc == pytest.approx(m["answer_accuracy"], abs=1e-6) and loss == pytest.approx(m["final_train_loss"], rel=1e-4)
    # every word of every evaluation split (holdout texts, verbmem, knowmem and its ICL) is known
    for split, rows in data.eval_splits.items():
        for r in rows:
            for text in (r.get("text"), r.get("prompt"), r.get("gt"), r.get("question"), r.get("answer")):
                if text:
                    assert tok.unk_token_id not in encode_text(tok, text), (split, text[:60])
    # the evaluation rows are part of a tiny target's key
    assert target_path(forget, retain, CFG, cache, vocab_rows=vocab) == path
    assert target_path(forget, retain, CFG, cache) != path


def test_text_loss_metric_is_the_token_mean_over_every_window(built):
    path, data, forget, retain, _, _ = built
    model, tok, manifest = load_target(path)
    settings = eval_settings(manifest, batch_size=4)
    assert settings.max_length == 48
    ctx = EvalContext(model, tok, {"forget": forget, "retain": retain}, settings)
    values = evaluate(ctx, ["loss_f_eval", "loss_r_eval"])
    for name, rows in (("loss_f_eval", forget), ("loss_r_eval", retain)):
        per_article = []
        for r in rows:
            batch = collate(encode_rows(tok, [r], max_length=48), tok.pad_token_id)
            with torch.no_grad():
                nll, mask = token_nll(model, batch)
            per_article.append((nll.double().sum().item(), mask.sum().item()))
        total = sum(s for s, _ in per_article) / sum(c for _, c in per_article)
        assert values[name].value == pytest.approx(total, rel=1e-5)
        assert [i.score for i in values[name].items] == pytest.approx([s / c for s, c in per_article], rel=1e-5)
        assert [i.reference for i in values[name].items] == [r["text"] for r in rows]
        assert values[name].settings["tokens"] == "every token but BOS"
    # TOFU's QA metrics refuse text data and say what fits it
    with pytest.raises(ValueError, match="holds texts, not question/answer pairs.*verbmem_f"):
        evaluate(ctx, ["rouge_f"])


def test_retrain_reference_is_the_privleak_metric_on_the_retain_model(built):
    from dataclasses import replace

    from pareto.prepare import reference_values

    path, data, forget, retain, vocab, cache = built
    ref_path = build_target(forget, retain, replace(CFG, retain_only=True), data_name="muse-2", cache_dir=cache,
                            vocab_rows=vocab, **QUIET)
    splits = {k: v for k, v in data.eval_splits.items() if k.startswith("privleak")}
    splits["privleak_forget"] = splits["privleak_forget"][:2]  # the two articles trained on
    reference = reference_values(ref_path, forget, splits, batch_size=16)
    assert set(reference) == {"retain_model", "privleak_auc"}  # texts: no truth ratios
    assert 0 <= reference["privleak_auc"] <= 1
    model, tok, manifest = load_target(ref_path)
    ctx = EvalContext(model, tok, splits, eval_settings(manifest, batch_size=16), reference=reference)
    value = evaluate(ctx, ["privleak"])["privleak"]
    assert value.value == 0.0 and value.settings["auc"] == reference["privleak_auc"]  # Retrain vs itself
    assert value.settings["max_length"] == 48 and len(value.items) == 2 + 100


def test_privleak_scores_whole_texts_up_to_the_learnt_positions_or_eval_privleak_tokens(built):
    """Default: every position the model learnt (a tiny target: its 48-token window, though its
    context is 384); `privleak_tokens` cuts each text there instead, and both say how many were cut."""
    from pareto.metrics.muse import min_k_percent, muse_privleak_auc

    path, data, _, _, _, _ = built
    splits = {k: v[:12] for k, v in data.eval_splits.items() if k.startswith("privleak")}
    model, tok, manifest = load_target(path)
    assert eval_settings(manifest).trained_positions == 48
    assert eval_settings({"base": "gpt2", "config": {"base": "gpt2", "max_length": 512}}).trained_positions is None
    for tokens, limit in ((None, 48), (16, 16)):
        ctx = EvalContext(model, tok, splits, eval_settings(manifest, batch_size=16, privleak_tokens=tokens),
                          reference={"privleak_auc": 0.5})
        value = evaluate(ctx, ["privleak"])["privleak"]
        scores = {s: min_k_percent(model, tok, [r["text"] for r in splits[f"privleak_{s}"]], k=0.4,
                                   max_length=limit, batch_size=16) for s in ("forget", "holdout")}
        assert value.settings["auc"] == pytest.approx(muse_privleak_auc(scores["forget"], scores["holdout"]))
        n_long = sum(len(encode_text(tok, r["text"], True)) > limit for rows in splits.values() for r in rows)
        assert value.settings["max_length"] == limit and value.settings["n_cut"] == n_long > 0
        why = "eval.privleak_tokens" if tokens else "the window this from-scratch target was trained on"
        assert f"first {limit} tokens only ({why}; MUSE scores whole texts)" in " ".join(value.settings["departures"])
