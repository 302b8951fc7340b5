"""TOFU answer probabilities and truth ratios, one number per item (field-notes §3).

Definitions
-----------
P(a|q)        = exp(−mean token NLL of the answer a given the question q): length-normalised.
Truth ratio   tr = P_pert / P_correct, P_pert the geometric mean of the probabilities of the
              perturbed answers (list field `perturbed_answer`: 5 on forget/retain, 3 on real
              authors / world facts), P_correct the probability of `correct_field`
              (`paraphrased_answer` on forget/retain, `answer` on RA/WF). Computed in log space:
              log tr = mean_j(log P_pert_j) − log P_correct.
Normalised P  (RA/WF) P_c / (P_c + Σ_j P_pert_j).
Reported stat mean(min(tr, 1/tr)) on forget, mean(max(0, 1 − tr)) on retain / RA / WF.

Conventions (recorded here because they change the numbers)
-----------------------------------------------------------
* Tokenisation is exactly the training loss's: `pareto.data.qa.encode_qa` + `collate` (prompt
  "Question: {q}\\nAnswer:" unless `template` says otherwise, BOS prepended when `add_bos` and
  the tokenizer has one — BOS is never scored — answer tokenised as " " + answer, right padding,
  labels −100 on the prompt) and the same one-token shift as `pareto.lm.token_nll`.
* EOS: `include_eos=True` (the default) scores the one EOS token that `encode_qa` appends to the
  answer. Both reference implementations count it: legacy TOFU (`data_module.
  convert_raw_data_to_model_format` labels `input_ids + [eos]`) and open-unlearning
  (`data/utils.preprocess_chat_instance` appends EOS when absent and labels everything after
  the prompt). `include_eos=False` scores the answer's own tokens only (the EOS is dropped from
  the input too, so the result equals tokenising without it).
* Question: every answer — correct, paraphrased and perturbed — is scored against the original
  `question` field (as TOFU and open-unlearning do), not `paraphrased_question`.
* Precision: the model runs in its own dtype; the log-softmax over the vocabulary and all
  later arithmetic are float64 (`pareto.lm.token_nll` works in float32), so per-item numbers are
  stable to the logits' own precision and independent of batching up to that.
* No truncation unless `max_length` is given (then the sequence is cut like `encode_qa` cuts
  it). An item with no scored token (an empty answer without EOS, or an answer cut away
  entirely) raises ValueError rather than silently scoring P = 1.
* No 1e−10 guards (open-unlearning adds one to denominators): log space needs none.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from pareto.data.qa import IGNORE, PLAIN_TEMPLATE, Encoded, collate, encode_qa

__all__ = [
    "answer_nll", "answer_probability", "truth_ratios", "log_truth_ratios", "truth_ratio_stat",
    "normalized_probability", "FORGET_SPLITS", "NON_FORGET_SPLITS",
]

#: Split kinds for `truth_ratio_stat`.
FORGET_SPLITS = frozenset({"forget"})
NON_FORGET_SPLITS = frozenset({"retain", "real_authors", "world_facts"})

_NO_LIMIT = 10**9


def _encode(tokenizer, question: str, answer: str, *, add_bos: bool, include_eos: bool,
            template: str, max_length: int | None) -> Encoded:
    enc = encode_qa(tokenizer, question, answer, max_length=_NO_LIMIT, add_bos=add_bos,
                    template=template)
    ids, labels = enc.input_ids, enc.labels
    if not include_eos and tokenizer.eos_token_id is not None:
        # encode_qa appended exactly one EOS (untruncated here): drop it from input and labels
        assert ids[-1] == tokenizer.eos_token_id and labels[-1] == tokenizer.eos_token_id
        ids, labels = ids[:-1], labels[:-1]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return Encoded(list(ids), list(labels), enc.prompt_len)


def _check_texts(name: str, texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of strings, not a single string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] is {type(t).__name__}, not str")
    return texts


@torch.no_grad()
def answer_nll(model, tokenizer, questions: Sequence[str], answers: Sequence[str], *,
               batch_size: int = 32, add_bos: bool = True, include_eos: bool = True,
               template: str = PLAIN_TEMPLATE, max_length: int | None = None) -> np.ndarray:
    """Mean NLL (nats per scored token) of each answer given its question, float64 [N].

    Batched with right padding (examples sorted by length to limit padding, results returned in
    input order); the model is put in eval mode for the call and its mode restored afterwards.
    See the module docstring for the tokenisation, EOS and precision conventions.
    """
    questions = _check_texts("questions", questions)
    answers = _check_texts("answers", answers)
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(questions)
    out = np.full(n, np.nan, dtype=np.float64)
    if n == 0:
        return out
    examples = [_encode(tokenizer, q, a, add_bos=add_bos, include_eos=include_eos,
                        template=template, max_length=max_length)
                for q, a in zip(questions, answers)]
    for i, e in enumerate(examples):
        if all(l == IGNORE for l in e.labels[1:]):
            raise ValueError(f"item {i} has no scored answer token (answer {answers[i]!r}, "
                             f"include_eos={include_eos}, max_length={max_length})")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    order = sorted(range(n), key=lambda i: len(examples[i].input_ids), reverse=True)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            batch = collate([examples[i] for i in idx], pad_id)
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits[:, :-1]
            targets = batch["labels"][:, 1:].to(logits.device)
            for row, i in enumerate(idx):
                pos = (targets[row] != IGNORE).nonzero().squeeze(1)
                logp = torch.log_softmax(logits[row, pos].to(torch.float64), dim=-1)
                tok_logp = logp.gather(1, targets[row, pos].unsqueeze(1))
                out[i] = -tok_logp.mean().item()
    finally:
        model.train(was_training)
    return out


def answer_probability(model, tokenizer, questions: Sequence[str], answers: Sequence[str], *,
                       batch_size: int = 32, add_bos: bool = True, include_eos: bool = True,
                       template: str = PLAIN_TEMPLATE,
                       max_length: int | None = None) -> np.ndarray:
    """P(a|q) = exp(−mean token NLL) per item, float64 [N] (length-normalised, field-notes §3)."""
    return np.exp(-answer_nll(model, tokenizer, questions, answers, batch_size=batch_size,
                              add_bos=add_bos, include_eos=include_eos, template=template,
                              max_length=max_length))


def _option_nlls(model, tokenizer, rows: Sequence[Mapping], *, correct_field: str,
                 question_field: str, perturbed_field: str, **kw):
    """(mean NLL of the correct answers [N], list of mean NLLs of each row's perturbed answers)."""
    if isinstance(rows, Mapping):
        raise TypeError("rows must be a sequence of dicts, not a single dict")
    questions, answers, counts = [], [], []
    for i, r in enumerate(rows):
        for f in (question_field, correct_field, perturbed_field):
            if f not in r:
                raise KeyError(f"row {i} has no field {f!r} (fields: {sorted(r)})")
        pert = r[perturbed_field]
        if isinstance(pert, str) or not isinstance(pert, Sequence) or len(pert) == 0:
            raise ValueError(f"row {i}: {perturbed_field!r} must be a non-empty list of "
                             f"strings, got {pert!r}")
        questions += [r[question_field]] * (1 + len(pert))
        answers += [r[correct_field], *pert]
        counts.append(len(pert))
    nll = answer_nll(model, tokenizer, questions, answers, **kw)
    correct, perturbed, at = np.empty(len(counts)), [], 0
    for i, k in enumerate(counts):
        correct[i] = nll[at]
        perturbed.append(nll[at + 1:at + 1 + k])
        at += 1 + k
    return correct, perturbed


def log_truth_ratios(model, tokenizer, rows: Sequence[Mapping], *, correct_field: str,
                     batch_size: int = 32, add_bos: bool = True, include_eos: bool = True,
                     question_field: str = "question", perturbed_field: str = "perturbed_answer",
                     template: str = PLAIN_TEMPLATE,
                     max_length: int | None = None) -> np.ndarray:
    """log tr per item = mean_j(log P_pert_j) − log P_correct = nll_correct − mean_j nll_pert_j."""
    correct, perturbed = _option_nlls(
        model, tokenizer, rows, correct_field=correct_field, question_field=question_field,
        perturbed_field=perturbed_field, batch_size=batch_size, add_bos=add_bos,
        include_eos=include_eos, template=template, max_length=max_length)
    return np.array([c - p.mean() for c, p in zip(correct, perturbed)], dtype=np.float64)


def truth_ratios(model, tokenizer, rows: Sequence[Mapping], *, correct_field: str,
                 batch_size: int = 32, add_bos: bool = True, include_eos: bool = True,
                 question_field: str = "question", perturbed_field: str = "perturbed_answer",
                 template: str = PLAIN_TEMPLATE, max_length: int | None = None) -> np.ndarray:
    """Raw truth ratio tr = P_pert / P_correct per item, float64 [N].

    correct_field: "paraphrased_answer" on forget/retain, "answer" on real authors / world
    facts. P_pert is the geometric mean over the row's `perturbed_answer` list. All answers are
    scored against `question_field` (default: the original "question").
    """
    return np.exp(log_truth_ratios(
        model, tokenizer, rows, correct_field=correct_field, batch_size=batch_size,
        add_bos=add_bos, include_eos=include_eos, question_field=question_field,
        perturbed_field=perturbed_field, template=template, max_length=max_length))


def truth_ratio_stat(tr, split: str) -> float:
    """The reported truth-ratio number of a split from the raw per-item ratios `tr`.

    split "forget": mean(min(tr, 1/tr)) (closer to 1 is better); "retain", "real_authors",
    "world_facts": mean(max(0, 1 − tr)) (higher is better). Anything else: ValueError.
    """
    if split in FORGET_SPLITS:
        forget = True
    elif split in NON_FORGET_SPLITS:
        forget = False
    else:
        raise ValueError(f"unknown split kind {split!r}; expected one of "
                         f"{sorted(FORGET_SPLITS | NON_FORGET_SPLITS)}")
    tr = np.asarray(tr, dtype=np.float64)
    if tr.ndim != 1 or tr.size == 0:
        raise ValueError(f"tr must be a non-empty 1-D array, got shape {tr.shape}")
    if np.any(np.isnan(tr)) or np.any(tr < 0):
        bad = np.flatnonzero(np.isnan(tr) | (tr < 0))
        raise ValueError(f"truth ratios must be ≥ 0 and not NaN; bad items {bad[:10].tolist()}")
    # 0 and +inf are limits a wrecked model reaches (exp of a log ratio beyond ±709): min(tr, 1/tr)
    # is then 0, max(0, 1 − tr) is 1 at 0 and 0 at inf — computed from log tr, never 1/0.
    log_tr = np.log(tr, where=tr > 0, out=np.full_like(tr, -np.inf))
    if forget:
        return float(np.mean(np.exp(-np.abs(log_tr))))
    return float(np.mean(np.maximum(0.0, 1.0 - tr)))


def normalized_probability(model, tokenizer, rows: Sequence[Mapping], batch_size: int = 32, *,
                           correct_field: str = "answer", add_bos: bool = True,
                           include_eos: bool = True, question_field: str = "question",
                           perturbed_field: str = "perturbed_answer",
                           template: str = PLAIN_TEMPLATE,
                           max_length: int | None = None) -> np.ndarray:
    """P_c / (P_c + Σ_j P_pert_j) per item, float64 [N] (real authors / world facts).

    Each P is length-normalised (exp of −mean token NLL); computed as
    exp(log P_c − logsumexp(log P_c, log P_pert_1, ...)).
    """
    correct, perturbed = _option_nlls(
        model, tokenizer, rows, correct_field=correct_field, question_field=question_field,
        perturbed_field=perturbed_field, batch_size=batch_size, add_bos=add_bos,
        include_eos=include_eos, template=template, max_length=max_length)
    out = np.empty(len(correct), dtype=np.float64)
    for i, (c, p) in enumerate(zip(correct, perturbed)):
        logs = -np.concatenate([[c], p])
        m = logs.max()
        out[i] = np.exp(logs[0] - m - np.log(np.sum(np.exp(logs - m))))
    return out
