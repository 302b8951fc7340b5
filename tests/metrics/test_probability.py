"""Answer probabilities and truth ratios against an independent float64 recomputation.

The reference below tokenises one (question, answer) pair at a time, without padding or an
attention mask, runs the model, takes log_softmax of the logits in float64 and sums the
answer-token log-probabilities by hand; probabilities, geometric means and ratios are then
formed in probability space (the implementation works in log space).
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pareto.data.qa import collate, encode_qa
from pareto.lm import sequence_nll_mean
from pareto.metrics.probability import (
    answer_nll, answer_probability, log_truth_ratios, normalized_probability, truth_ratio_stat,
    truth_ratios,
)
from pareto.models.embedded import load_target

RTOL = 1e-6


def _rows(path: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (path / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def target(embedded_target):
    model, tokenizer, _ = load_target(embedded_target)
    forget = _rows(embedded_target, "forget.jsonl")
    retain = _rows(embedded_target, "retain.jsonl")
    return model, tokenizer, forget, retain


@pytest.fixture(scope="module")
def random_model(target):
    """A randomly initialised GPT-2 on the embedded tokenizer: probabilities far from 0 and 1."""
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tokenizer, _, _ = target
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2,
                        n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module", params=["trained", "random"])
def model_tok(request, target, random_model):
    model = target[0] if request.param == "trained" else random_model
    return model, target[1]


# ---------------------------------------------------------------------------- the reference


def ref_logprob(model, tok, question, answer, *, add_bos=True, include_eos=True):
    """(sum of answer-token log-probs, number of answer tokens), one unpadded sequence, float64."""
    prompt = tok(f"Question: {question}\nAnswer:", add_special_tokens=False)["input_ids"]
    if add_bos and tok.bos_token_id is not None:
        prompt = [tok.bos_token_id] + prompt
    ans = tok(" " + answer, add_special_tokens=False)["input_ids"]
    if include_eos:
        ans = ans + [tok.eos_token_id]
    ids = torch.tensor([prompt + ans])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].to(torch.float64)
    logp = torch.log_softmax(logits, dim=-1)
    total = 0.0
    for t in range(len(prompt), len(prompt) + len(ans)):
        total += logp[t - 1, ids[0, t]].item()
    return total, len(ans)


def ref_prob(model, tok, q, a, **kw):
    s, n = ref_logprob(model, tok, q, a, **kw)
    return math.exp(s / n)


def ref_truth_ratio(model, tok, row, correct_field, **kw):
    p_c = ref_prob(model, tok, row["question"], row[correct_field], **kw)
    p_pert = [ref_prob(model, tok, row["question"], a, **kw) for a in row["perturbed_answer"]]
    geo = math.prod(p_pert) ** (1.0 / len(p_pert))
    return geo / p_c


def ref_normalized(model, tok, row, **kw):
    p_c = ref_prob(model, tok, row["question"], row["answer"], **kw)
    p_pert = [ref_prob(model, tok, row["question"], a, **kw) for a in row["perturbed_answer"]]
    return p_c / (p_c + sum(p_pert))


def ra_like(rows):
    """RA/WF-shaped rows (answer + 3 perturbed answers) from the synthetic retain rows."""
    return [{"question": r["question"], "answer": r["answer"],
             "perturbed_answer": r["perturbed_answer"][:3]} for r in rows]


# ---------------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("include_eos", [True, False])
@pytest.mark.parametrize("add_bos", [True, False])
def test_answer_probability_matches_reference(model_tok, target, include_eos, add_bos):
    model, tok = model_tok
    rows = target[2][:12]
    qs = [r["question"] for r in rows]
    answers = [r["answer"] if i % 2 else r["paraphrased_answer"] for i, r in enumerate(rows)]
    got = answer_probability(model, tok, qs, answers, batch_size=5, add_bos=add_bos,
                             include_eos=include_eos)
    want = [ref_prob(model, tok, q, a, add_bos=add_bos, include_eos=include_eos)
            for q, a in zip(qs, answers)]
    assert got.dtype == np.float64 and got.shape == (len(rows),)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)
    nll = answer_nll(model, tok, qs, answers, batch_size=5, add_bos=add_bos,
                     include_eos=include_eos)
    sums = [ref_logprob(model, tok, q, a, add_bos=add_bos, include_eos=include_eos)
            for q, a in zip(qs, answers)]
    want_nll = [-s / n for s, n in sums]
    np.testing.assert_allclose(nll, want_nll, rtol=0, atol=RTOL)  # = P to 1e-6 relative


def test_batched_with_padding_equals_one_at_a_time(model_tok, target):
    model, tok = model_tok
    rows = target[3][:20]
    qs = [r["question"] for r in rows] * 2
    answers = [r["answer"] for r in rows] + [r["perturbed_answer"][0] for r in rows]
    lengths = {len(encode_qa(tok, q, a).input_ids) for q, a in zip(qs, answers)}
    assert len(lengths) > 1  # padding really happens
    one = answer_nll(model, tok, qs, answers, batch_size=1)
    for bs in (3, 16, 64):
        nll = answer_nll(model, tok, qs, answers, batch_size=bs)
        # probabilities to 1e-6 relative <=> mean NLLs to 1e-6 absolute (float32 logits differ
        # by ~1e-7 between batch shapes; an NLL near 0 makes a relative test on it meaningless)
        np.testing.assert_allclose(np.exp(-nll), np.exp(-one), rtol=RTOL, atol=0)
        np.testing.assert_allclose(nll, one, rtol=0, atol=RTOL)


def test_eos_convention(model_tok, target):
    """include_eos=True scores encode_qa's tokens exactly (= pareto.lm's loss, float32);
    include_eos=False drops the one EOS term."""
    model, tok = model_tok
    rows = target[2][:8]
    qs, answers = [r["question"] for r in rows], [r["answer"] for r in rows]
    with_eos = answer_nll(model, tok, qs, answers)
    batch = collate([encode_qa(tok, q, a) for q, a in zip(qs, answers)], tok.pad_token_id)
    with torch.no_grad():
        lm = sequence_nll_mean(model, batch).double().numpy()
    np.testing.assert_allclose(with_eos, lm, rtol=0, atol=1e-5)  # pareto.lm is float32
    without = answer_nll(model, tok, qs, answers, include_eos=False)
    for i, (q, a) in enumerate(zip(qs, answers)):
        s_eos, n_eos = ref_logprob(model, tok, q, a, include_eos=True)
        s, n = ref_logprob(model, tok, q, a, include_eos=False)
        assert n_eos == n + 1
        assert with_eos[i] == pytest.approx(-s_eos / n_eos, rel=0, abs=RTOL)
        assert without[i] == pytest.approx(-s / n, rel=0, abs=RTOL)
    assert not np.allclose(with_eos, without)


def test_model_mode_restored_and_empty_input(target):
    model, tok, rows, _ = target
    model.train()
    try:
        answer_nll(model, tok, [rows[0]["question"]], [rows[0]["answer"]])
        assert model.training
    finally:
        model.eval()
    assert answer_nll(model, tok, [], []).shape == (0,)


def test_input_errors(target):
    model, tok, rows, _ = target
    q = rows[0]["question"]
    with pytest.raises(ValueError, match="questions but"):
        answer_nll(model, tok, [q, q], ["x"])
    with pytest.raises(TypeError, match="single string"):
        answer_nll(model, tok, q, "answer")
    with pytest.raises(ValueError, match="no scored answer token"):
        answer_nll(model, tok, [q], [""], include_eos=False)
    bad = dict(rows[0], perturbed_answer=rows[0]["perturbed_answer"][0])  # a string, not a list
    with pytest.raises(ValueError, match="non-empty list"):
        truth_ratios(model, tok, [bad], correct_field="paraphrased_answer")
    with pytest.raises(KeyError, match="paraphrased_answer"):
        truth_ratios(model, tok, ra_like(rows[:1]), correct_field="paraphrased_answer")


# ---------------------------------------------------------------------------- truth ratios


def test_truth_ratios_forget_retain_match_reference(model_tok, target):
    model, tok = model_tok
    rows = target[2][:10] + target[3][:6]
    assert all(len(r["perturbed_answer"]) == 5 for r in rows)
    got = truth_ratios(model, tok, rows, correct_field="paraphrased_answer", batch_size=7)
    want = [ref_truth_ratio(model, tok, r, "paraphrased_answer") for r in rows]
    assert got.dtype == np.float64 and got.shape == (len(rows),)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)
    np.testing.assert_allclose(
        log_truth_ratios(model, tok, rows, correct_field="paraphrased_answer"), np.log(want),
        rtol=0, atol=RTOL)
    # the question, not the paraphrased question, is what the answers are scored against
    swapped = [dict(r, question=r["paraphrased_question"]) for r in rows]
    assert not np.allclose(truth_ratios(model, tok, swapped, correct_field="paraphrased_answer"),
                           got, rtol=1e-3)
    np.testing.assert_allclose(
        truth_ratios(model, tok, rows, correct_field="paraphrased_answer",
                     question_field="question"), got, rtol=RTOL)


def test_truth_ratios_ra_wf_shape_match_reference(model_tok, target):
    model, tok = model_tok
    rows = ra_like(target[3][:12])
    got = truth_ratios(model, tok, rows, correct_field="answer")
    want = [ref_truth_ratio(model, tok, r, "answer") for r in rows]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)


def test_normalized_probability_matches_reference(model_tok, target):
    model, tok = model_tok
    rows = ra_like(target[3][:12])
    got = normalized_probability(model, tok, rows, batch_size=4)
    want = [ref_normalized(model, tok, r) for r in rows]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)
    assert np.all((got > 0) & (got < 1))


def test_trained_model_prefers_the_true_answers(target):
    """Direction sanity on the memorising target, trained on `answer` only: against the trained
    answer the perturbed answers (one name or title swapped) are less likely (tr < 1); against the never-seen paraphrase
    they, sharing the trained answer's wording, are more likely (tr > 1)."""
    model, tok, forget, retain = target
    assert np.all(truth_ratios(model, tok, retain[:20], correct_field="answer") < 1)
    assert np.median(truth_ratios(model, tok, retain[:20],
                                  correct_field="paraphrased_answer")) > 1
    # above chance (1 correct among 4 options)
    assert np.median(normalized_probability(model, tok, ra_like(retain[:20]))) > 0.25


# ---------------------------------------------------------------------------- the reported stat


def test_truth_ratio_stat_by_hand():
    tr = np.array([0.5, 2.0, 1.0, 0.25])
    # forget: min(tr, 1/tr) = [0.5, 0.5, 1, 0.25]
    assert truth_ratio_stat(tr, "forget") == pytest.approx(2.25 / 4, abs=1e-15)
    # others: max(0, 1 - tr) = [0.5, 0, 0, 0.75]
    for split in ("retain", "real_authors", "world_facts"):
        assert truth_ratio_stat(tr, split) == pytest.approx(1.25 / 4, abs=1e-15)
    assert truth_ratio_stat([1.0, 1.0], "forget") == 1.0
    assert truth_ratio_stat([4.0, 0.1], "retain") == pytest.approx(0.45)
    assert isinstance(truth_ratio_stat(tr, "forget"), float)


def test_truth_ratio_stat_errors():
    with pytest.raises(ValueError, match="unknown split kind"):
        truth_ratio_stat([1.0], "holdout")
    with pytest.raises(ValueError, match="NaN"):
        truth_ratio_stat([1.0, float("nan")], "retain")
    with pytest.raises(ValueError, match="≥ 0"):
        truth_ratio_stat([-1.0], "forget")
    with pytest.raises(ValueError, match="non-empty"):
        truth_ratio_stat([], "forget")


def test_truth_ratio_stat_at_the_limits_a_wrecked_model_reaches():
    """exp(log tr) under- or overflows once |log tr| > ~709 (a model unlearned to pieces): the
    statistics take their limits instead of failing the trial."""
    inf = float("inf")
    assert truth_ratio_stat([0.0, inf, 1.0], "forget") == pytest.approx(1 / 3)
    assert truth_ratio_stat([0.0, inf, 1.0], "retain") == pytest.approx(1 / 3)
    assert truth_ratio_stat([1e-300, 1e300], "forget") == pytest.approx(1e-300, abs=1e-299)
