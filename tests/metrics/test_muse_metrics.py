"""MUSE metrics: ROUGE as rouge_score computes it, Min-K% against a float64 recomputation,
AUC against a brute-force pair count, the privleak formula and MUSE's AUC orientation."""

import json

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer

from pareto.metrics.generation import encode_text, greedy_generate
from pareto.metrics.muse import (
    KNOWMEM_STOP_STRINGS, auc, knowmem, knowmem_prompt, min_k_percent, muse_privleak_auc,
    privleak, rouge_l, verbmem,
)



def direct_rouge(gens, refs, use_stemmer, field):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    return [getattr(scorer.score(ref, gen)["rougeL"], field) for gen, ref in zip(gens, refs)]


# --------------------------------------------------------------------------------- ROUGE


def test_rouge_l_matches_rouge_score_for_every_setting():
    gens = ["The cats are running home", "", "a b c", "running fast"]
    refs = ["the cat runs home quickly", "anything", "c b a", "Running, fast!"]
    for use_stemmer in (False, True):
        for score, field in (("f1", "fmeasure"), ("recall", "recall"), ("precision", "precision")):
            assert rouge_l(gens, refs, use_stemmer=use_stemmer, score=score).tolist() == \
                direct_rouge(gens, refs, use_stemmer, field)
    # the stemmer matters here, so the default (MUSE: off) is really off
    assert rouge_l(gens[:1], refs[:1])[0] != rouge_l(gens[:1], refs[:1], use_stemmer=True)[0]
    with pytest.raises(ValueError, match="score"):
        rouge_l(gens, refs, score="f2")


# ------------------------------------------------------------------------------- verbmem


def test_verbmem_scores_and_references(target):
    model, tok, rows = target
    items = [{"prompt": f"Question: {r['question']}\nAnswer:", "gt": r["answer"]} for r in rows[:12]]
    scores, gens, refs = verbmem(model, tok, items, max_new_tokens=8, batch_size=5)
    # reference: first max_new_tokens ids of BOS + gt (MUSE counts the BOS), decoded
    for it, ref in zip(items, refs):
        ids = [tok.bos_token_id] + tok(it["gt"], add_special_tokens=False)["input_ids"]
        assert ref == tok.decode(ids[:8], skip_special_tokens=True)
        assert len(ref.split()) <= 7
    assert gens == greedy_generate(model, tok, [it["prompt"] for it in items], max_new_tokens=8,
                                   batch_size=1)
    assert scores.tolist() == direct_rouge(gens, refs, False, "fmeasure")
    recall, _, _ = verbmem(model, tok, items, max_new_tokens=8, score="recall", use_stemmer=True)
    assert recall.tolist() == direct_rouge(gens, refs, True, "recall")
    # the memorised target continues its training answers
    assert scores.mean() > 0.8


def test_verbmem_untruncated_reference_is_the_whole_gt(target):
    model, tok, rows = target
    items = [{"prompt": "Question:", "gt": rows[0]["answer"]}]
    _, _, refs = verbmem(model, tok, items, max_new_tokens=60)
    assert refs == [rows[0]["answer"]]


# ------------------------------------------------------------------------------- knowmem


def test_knowmem_prompt_format():
    icl = [{"question": "Q1?", "answer": "A1"}, {"question": "Q2?", "answer": "A2"}]
    assert knowmem_prompt("Q3?", icl) == \
        "Question: Q1?\nAnswer: A1\n\nQuestion: Q2?\nAnswer: A2\n\nQuestion: Q3?\nAnswer: "
    assert knowmem_prompt("Q?", []) == "Question: Q?\nAnswer: "
    assert KNOWMEM_STOP_STRINGS == ("\n\n", "\nQuestion", "Question:")


def test_knowmem_scores_equal_rouge_score(target):
    model, tok, rows = target
    qa = [{"question": r["question"], "answer": r["answer"]} for r in rows[20:30]]
    icl = [{"question": "Who?", "answer": "Silas"}]
    scores, gens = knowmem(model, tok, qa, icl, max_new_tokens=24, batch_size=4)
    prompts = [knowmem_prompt(q["question"], icl) for q in qa]
    assert gens == greedy_generate(model, tok, prompts, max_new_tokens=24, batch_size=1,
                                   stop_strings=KNOWMEM_STOP_STRINGS)
    assert scores.tolist() == direct_rouge(gens, [q["answer"] for q in qa], False, "fmeasure")
    recall, _ = knowmem(model, tok, qa, icl, max_new_tokens=24, score="recall")
    assert recall.tolist() == direct_rouge(gens, [q["answer"] for q in qa], False, "recall")


def test_knowmem_cuts_at_the_stop_strings(target):
    """With a stop string the word-level tokenizer can produce, outputs end before it."""
    model, tok, rows = target
    qa = [{"question": r["question"], "answer": r["answer"]} for r in rows[:6]]
    _, full = knowmem(model, tok, qa, [], max_new_tokens=24, stop_strings=())
    _, cut = knowmem(model, tok, qa, [], max_new_tokens=24, stop_strings=("was",))
    for f, c in zip(full, cut):
        assert c == (f[:f.index("was")] if "was" in f else f)
    assert any("was" in f for f in full)


# ---------------------------------------------------------------------------------- Min-K%


def reference_min_k(model, tok, text, k, max_length=None):
    """Independent: one unbatched forward, float64 log-softmax, numpy sort."""
    ids = encode_text(tok, text)[:max_length]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    token_lp = np.array([logp[t - 1, ids[t]].item() for t in range(1, len(ids))])
    m = max(1, int(len(token_lp) * k))
    return np.sort(token_lp)[:m].mean()


@pytest.mark.parametrize("k", [0.4, 0.2, 1.0])
def test_min_k_equals_float64_recomputation(target, k):
    model, tok, rows = target
    texts = [r["answer"] for r in rows[:7]] + [r["question"] + " " + r["answer"] for r in rows[7:11]]
    texts.append("Silas")  # 2 tokens with BOS: one scored token
    got = min_k_percent(model, tok, texts, k=k, batch_size=3)
    want = np.array([reference_min_k(model, tok, t, k) for t in texts])
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    assert np.all(got <= 0)


def test_min_k_truncation_sign_and_errors(target):
    model, tok, rows = target
    text = rows[0]["question"] + " " + rows[0]["answer"]
    got = min_k_percent(model, tok, [text], max_length=10)
    np.testing.assert_allclose(got, [reference_min_k(model, tok, text, 0.4, max_length=10)], atol=2e-5)
    # sign: a memorised training answer scores higher (more member-like) than its shuffle
    words = rows[0]["answer"].split()
    shuffled = " ".join(words[::-1])
    member, other = min_k_percent(model, tok, [rows[0]["answer"], shuffled])
    assert member > other
    with pytest.raises(ValueError, match="k must"):
        min_k_percent(model, tok, [text], k=0)
    with pytest.raises(ValueError, match="at least 2"):
        min_k_percent(model, tok, [""])


# ----------------------------------------------------------------------------- AUC, privleak


def brute_force_auc(pos, neg):
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, 6, size=rng.integers(1, 40))  # few values: many ties
    neg = rng.integers(0, 5, size=rng.integers(1, 40))
    assert auc(pos, neg) == pytest.approx(brute_force_auc(pos, neg), abs=1e-12)
    cont_pos, cont_neg = rng.normal(0.3, 1, 50), rng.normal(0, 1, 60)
    assert auc(cont_pos, cont_neg) == pytest.approx(brute_force_auc(cont_pos, cont_neg), abs=1e-12)


def test_auc_edge_cases():
    assert auc([2, 3], [0, 1]) == 1.0
    assert auc([0, 1], [2, 3]) == 0.0
    assert auc([1, 1, 1], [1, 1]) == 0.5
    assert auc([-5.0], [-5.0, -6.0]) == 0.75
    with pytest.raises(ValueError, match="both classes"):
        auc([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        auc([np.nan], [1.0])


def test_muse_orientation_and_privleak():
    forget = np.array([-0.1, -0.2, -0.3])  # memorised: high Min-K% (member-like)
    holdout = np.array([-2.0, -2.5, -3.0])
    assert auc(forget, holdout) == 1.0
    assert muse_privleak_auc(forget, holdout) == 0.0  # MUSE: holdout is the positive class
    assert privleak(0.3, 0.5) == pytest.approx(-40.0)
    assert privleak(0.6, 0.5) == pytest.approx(20.0)
    assert privleak(0.5, 0.5) == 0.0
    assert privleak(0.001, 0.5) == pytest.approx(-99.8)  # a target that memorised the forget set
    with pytest.raises(ValueError, match="auc_retrain"):
        privleak(0.5, 0.0)


# ------------------------------------------------------------------------ MUSE-News files


@pytest.fixture(scope="module")
def muse_news(real_data):
    return real_data("muse_news")


def test_muse_news_files_fit_the_functions(muse_news):
    verb = json.loads((muse_news / "verbmem" / "forget.json").read_text())
    qa = json.loads((muse_news / "knowmem" / "forget_qa.json").read_text())
    icl = json.loads((muse_news / "knowmem" / "forget_qa_icl.json").read_text())
    texts = json.loads((muse_news / "privleak" / "forget.json").read_text())
    assert {"prompt", "gt"} <= set(verb[0]) and {"question", "answer"} <= set(qa[0])
    assert all(isinstance(t, str) for t in texts)
    prompt = knowmem_prompt(qa[0]["question"], icl)
    assert prompt.count("Question: ") == len(icl) + 1 and prompt.endswith("\nAnswer: ")
    assert prompt.startswith(f"Question: {icl[0]['question']}\nAnswer: {icl[0]['answer']}\n\n")
