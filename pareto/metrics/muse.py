"""MUSE metrics (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation"), per item.

Pure functions: each returns per-item numbers (and the generations), the caller aggregates
(MUSE reports the mean × 100). Defaults follow MUSE's own evaluation code
(github.com/swj0419/muse_bench, `eval.py` and its metrics), where it differs from the
TOFU/open-unlearning conventions used in `pareto.metrics.rouge`:

ROUGE-L (verbmem, knowmem)
    `rouge_score.RougeScorer(["rougeL"], use_stemmer=False).score(target=reference,
    prediction=generation)`; MUSE aggregates the key "rougeL", which its logger fills with the
    **F1** (`fmeasure`); recall is logged beside it as "rougeL_recall". Hence the defaults
    `use_stemmer=False, score="f1"`; pass `score="recall"` (and `use_stemmer=True`) for the
    open-unlearning/TOFU definition.

verbmem
    prompt = item["prompt"] (BOS prepended), greedy continuation of `max_new_tokens` = 128 tokens.
    Reference = the first `max_new_tokens` tokens of item["gt"] decoded. MUSE tokenises gt with
    `add_special_tokens=True` and then keeps the first 128 ids, so for Llama the BOS is one of the
    128 and the reference has 127 text tokens; `add_bos=True` reproduces that exactly.

knowmem
    prompt = "".join("Question: {q}\\nAnswer: {a}\\n\\n" for each ICL example)
             + "Question: {q}\\nAnswer: "      (MUSE's code keeps the trailing space)
    greedy, `max_new_tokens` = 32, output cut before the first "\\n\\n", "\\nQuestion" or
    "Question:" (MUSE's `get_prefix_before_words_occur`; a bare "Question" inside an answer,
    e.g. "Question Time", is not cut). Reference = item["answer"].

Min-K% (privleak), Shi et al. 2024 "Detecting pretraining data from LLMs"
    token log-probs log p(x_t | x_<t) of every token after the first (BOS prepended, not
    scored); score = mean of the lowest floor(k·n) of them (at least one), k = 0.4.
    **Sign: higher score = more likely a member** (a larger mean log-prob). MUSE stores the
    negation (−mean, a "perplexity-like" number where lower = member).

AUC and privleak
    `auc(member, nonmember)` = P(member score > nonmember score) + ½ P(tie), the ROC AUC.
    MUSE's privleak key "forget_holdout_Min-40%" labels the *holdout* texts as the positive class
    and scores with −(−mean) = our Min-K% score, i.e. its AUC = `auc(holdout, forget)`
    = `muse_privleak_auc(forget, holdout)`: ≈0 for a model that memorised the forget set,
    ≈0.5 for the retrained model. privleak = (AUC − AUC_retrain) / AUC_retrain × 100, so a
    target that memorised the forget set scores ≈ −100 (MUSE's News target: −99.8), an
    under-unlearned model is negative and an over-unlearned one positive.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, Sequence

import numpy as np
import torch

from pareto.lm import context_length
from pareto.metrics.generation import encode_text, greedy_generate

__all__ = ["verbmem", "knowmem", "knowmem_prompt", "min_k_percent", "min_k_lowest", "token_logprobs",
           "auc", "muse_privleak_auc", "privleak_auc",
           "privleak", "rouge_l", "KNOWMEM_STOP_STRINGS"]

KNOWMEM_SHOT = "Question: {question}\nAnswer: {answer}\n\n"
KNOWMEM_QUERY = "Question: {question}\nAnswer: "
KNOWMEM_STOP_STRINGS = ("\n\n", "\nQuestion", "Question:")

Score = Literal["f1", "recall", "precision"]
_ROUGE_FIELD = {"f1": "fmeasure", "recall": "recall", "precision": "precision"}


@lru_cache(maxsize=2)
def _scorer(use_stemmer: bool):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


def rouge_l(generations: Sequence[str], references: Sequence[str], *, use_stemmer: bool = False,
            score: Score = "f1") -> np.ndarray:
    """Per-item ROUGE-L of each generation against its reference (MUSE defaults)."""
    if score not in _ROUGE_FIELD:
        raise ValueError(f"score must be one of {sorted(_ROUGE_FIELD)}, got {score!r}")
    if len(generations) != len(references):
        raise ValueError(f"{len(generations)} generations but {len(references)} references")
    scorer, field = _scorer(use_stemmer), _ROUGE_FIELD[score]
    return np.array([getattr(scorer.score(target=ref, prediction=gen)["rougeL"], field)
                     for gen, ref in zip(generations, references)], dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# generation metrics


def verbmem(model, tokenizer, items: Sequence[dict], *, max_new_tokens: int = 128,
            batch_size: int = 8, add_bos: bool = True, use_stemmer: bool = False,
            score: Score = "f1") -> tuple[np.ndarray, list[str], list[str]]:
    """(per-item ROUGE-L, generations, references) of greedy continuations of item["prompt"]."""
    generations = greedy_generate(model, tokenizer, [it["prompt"] for it in items],
                                  max_new_tokens=max_new_tokens, batch_size=batch_size,
                                  add_bos=add_bos)
    references = [tokenizer.decode(encode_text(tokenizer, it["gt"], add_bos)[:max_new_tokens],
                                   skip_special_tokens=True) for it in items]
    return rouge_l(generations, references, use_stemmer=use_stemmer, score=score), generations, references


def knowmem_prompt(question: str, icl: Sequence[dict]) -> str:
    """MUSE's few-shot QA prompt: every ICL pair as a shot, then the question."""
    shots = "".join(KNOWMEM_SHOT.format(question=ex["question"], answer=ex["answer"]) for ex in icl)
    return shots + KNOWMEM_QUERY.format(question=question)


def knowmem(model, tokenizer, qa: Sequence[dict], icl: Sequence[dict], *, max_new_tokens: int = 32,
            batch_size: int = 8, add_bos: bool = True, use_stemmer: bool = False,
            score: Score = "f1",
            stop_strings: Sequence[str] = KNOWMEM_STOP_STRINGS) -> tuple[np.ndarray, list[str]]:
    """(per-item ROUGE-L against item["answer"], generations) of few-shot greedy answers."""
    generations = greedy_generate(model, tokenizer, [knowmem_prompt(it["question"], icl) for it in qa],
                                  max_new_tokens=max_new_tokens, batch_size=batch_size,
                                  stop_strings=stop_strings, add_bos=add_bos)
    scores = rouge_l(generations, [it["answer"] for it in qa], use_stemmer=use_stemmer, score=score)
    return scores, generations


# ----------------------------------------------------------------------------------------------
# membership inference



def min_k_lowest(token_logprobs: np.ndarray, k: float) -> float:
    """Mean of the lowest floor(k·n) (at least 1) of n token log-probs."""
    n = len(token_logprobs)
    if n == 0:
        raise ValueError("no scored tokens (a text needs at least 2 tokens with BOS)")
    m = max(1, int(n * k))
    return float(np.mean(np.sort(np.asarray(token_logprobs, dtype=np.float64))[:m]))


@torch.no_grad()
def token_logprobs(model, tokenizer, texts: Sequence[str], *, max_length: int | None = None,
                   batch_size: int = 8, add_bos: bool = True) -> list[np.ndarray]:
    """log p(x_t | x_<t) for t = 1..n−1 of each text's ids (BOS prepended, first max_length ids).

    Right-padded batches sorted by length: positions 0..n−1 are those of the unpadded text,
    and causal attention keeps padding out of every real token's context. Log-softmax in float32.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    limit = max_length if max_length is not None else context_length(model)
    if limit is not None and limit < 2:
        raise ValueError(f"max_length must be >= 2, got {limit}")
    ids = [encode_text(tokenizer, t, add_bos)[:limit] for t in texts]
    for i, x in enumerate(ids):
        if len(x) < 2:
            raise ValueError(f"text {i} has {len(x)} token(s); Min-K% needs at least 2")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[np.ndarray | None] = [None] * len(ids)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):
                input_ids[r, :len(ids[i])] = torch.tensor(ids[i])
                mask[r, :len(ids[i])] = 1
            input_ids, mask = input_ids.to(device), mask.to(device)
            logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
            targets = input_ids[:, 1:]
            lp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
            lp = lp.cpu().double().numpy()
            for r, i in enumerate(chunk):
                out[i] = lp[r, :len(ids[i]) - 1]
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def min_k_percent(model, tokenizer, texts: Sequence[str], *, k: float = 0.4,
                  max_length: int | None = None, batch_size: int = 8,
                  add_bos: bool = True) -> np.ndarray:
    """Min-K% score of each text; higher = more likely a training member.

    max_length: token ids kept per text (BOS included); default the model's context length.
    MUSE does not truncate (its texts fit Llama-2's 4096).
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be in (0, 1], got {k}")
    return np.array([min_k_lowest(lp, k) for lp in token_logprobs(
        model, tokenizer, texts, max_length=max_length, batch_size=batch_size, add_bos=add_bos)],
        dtype=np.float64)


def auc(member_scores, nonmember_scores) -> float:
    """ROC AUC = P(member > nonmember) + ½ P(tie), via the Mann–Whitney U with mid-ranks."""
    from scipy.stats import rankdata

    pos = np.asarray(member_scores, dtype=np.float64).ravel()
    neg = np.asarray(nonmember_scores, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"auc needs both classes, got {pos.size} member and {neg.size} "
                         f"non-member scores")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("auc got a NaN or infinite score")
    ranks = rankdata(np.concatenate([pos, neg]))  # average ranks for ties
    u = ranks[:pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def muse_privleak_auc(forget_scores, holdout_scores) -> float:
    """MUSE's "forget_holdout_Min-40%" AUC: holdout is the positive class (see module doc)."""
    return auc(holdout_scores, forget_scores)


def privleak(auc_unlearned: float, auc_retrain: float) -> float:
    """(AUC − AUC_retrain) / AUC_retrain × 100 (MUSE; both AUCs in the same orientation)."""
    if not auc_retrain > 0:
        raise ValueError(f"auc_retrain must be > 0, got {auc_retrain}")
    return (auc_unlearned - auc_retrain) / auc_retrain * 100.0


# ----------------------------------------------------------------------------------------------
# registered metrics (MUSE-News splits: verbmem, knowmem_{forget,retain}[_icl], privleak_*)

from pareto.metrics._base import ItemScore, Metric, MetricValue, item_id, register_metric  # noqa: E402

VERBMEM_TOKENS, KNOWMEM_TOKENS = 128, 32
PRIVLEAK_K = 0.4


def privleak_auc(ctx) -> tuple[float, dict[str, np.ndarray]]:
    """MUSE's forget-vs-holdout Min-40% AUC of the context's model, and the per-text scores. The
    privleak metric and its Retrain reference (`pareto.prepare`, on the retain-only model) both
    call this. Texts are scored whole, as MUSE's code does, up to `privleak_limit` (the positions the
    model has learnt; a longer text is cut there: `privleak_cut` counts them), or over their first
    `settings.privleak_tokens` tokens when set (`eval.privleak_tokens`); BOS as the target was trained."""
    s = ctx.settings
    scores = {split: ctx.memo(("min_k", split), lambda split=split: min_k_percent(
        ctx.model, ctx.tokenizer, [r["text"] for r in ctx.split(f"privleak_{split}")], k=PRIVLEAK_K,
        max_length=privleak_limit(ctx), batch_size=s.batch_size, add_bos=s.add_bos)) for split in ("forget", "holdout")}
    return muse_privleak_auc(scores["forget"], scores["holdout"]), scores


def privleak_limit(ctx) -> int | None:
    """The tokens a privleak text is scored over: `settings.privleak_tokens`, else every position the
    model has learnt (its context; a target trained from scratch: its training window)."""
    s = ctx.settings
    return s.privleak_tokens or s.trained_positions or context_length(ctx.model)


def privleak_cut(ctx) -> int:
    """How many privleak texts are longer than the tokens they are scored over (`settings.privleak_tokens`,
    else the model's context: as token_logprobs cuts them)."""
    limit = privleak_limit(ctx)
    if limit is None:
        return 0
    texts = [r["text"] for split in ("forget", "holdout") for r in ctx.split(f"privleak_{split}")]
    return sum(len(encode_text(ctx.tokenizer, t, ctx.settings.add_bos)) > limit for t in texts)


def _knowmem(ctx, split: str) -> MetricValue:
    qa, icl = ctx.split(f"knowmem_{split}"), ctx.split(f"knowmem_{split}_icl")
    scores, gens = knowmem(ctx.model, ctx.tokenizer, qa, icl, max_new_tokens=KNOWMEM_TOKENS,
                           batch_size=ctx.settings.batch_size, add_bos=ctx.settings.add_bos)
    items = tuple(ItemScore(item_id(r, i, f"knowmem_{split}"), float(s), r["question"], g, r["answer"])
                  for i, (r, s, g) in enumerate(zip(qa, scores, gens)))
    return MetricValue(float(np.mean(scores)), items, {"rouge": "rougeL f1", "use_stemmer": False, "n_icl": len(icl),
                                                        "max_new_tokens": KNOWMEM_TOKENS, "n_items": len(qa),
                                                        "prompt": "MUSE few-shot", "add_bos": ctx.settings.add_bos})


@register_metric("verbmem_f", "min", needs=("verbmem",), data="text")
class VerbmemForget(Metric):
    def compute(self, ctx):
        rows = ctx.split("verbmem")
        scores, gens, refs = verbmem(ctx.model, ctx.tokenizer, rows, max_new_tokens=VERBMEM_TOKENS,
                                     batch_size=ctx.settings.batch_size, add_bos=ctx.settings.add_bos)
        items = tuple(ItemScore(item_id(r, i, "verbmem"), float(s), r["prompt"], g, ref)
                      for i, (r, s, g, ref) in enumerate(zip(rows, scores, gens, refs)))
        return MetricValue(float(np.mean(scores)), items, {"rouge": "rougeL f1", "use_stemmer": False,
                                                            "max_new_tokens": VERBMEM_TOKENS, "n_items": len(rows),
                                                            "add_bos": ctx.settings.add_bos})


@register_metric("knowmem_f", "min", needs=("knowmem_forget", "knowmem_forget_icl"), data="muse")
class KnowmemForget(Metric):
    def compute(self, ctx):
        return _knowmem(ctx, "forget")


@register_metric("knowmem_r", "max", needs=("knowmem_retain", "knowmem_retain_icl"), data="muse")
class KnowmemRetain(Metric):
    def compute(self, ctx):
        return _knowmem(ctx, "retain")


@register_metric("privleak", "zero", needs=("privleak_forget", "privleak_holdout"), data="muse", reference=True)
class PrivLeak(Metric):
    """(AUC − AUC_retrain)/AUC_retrain × 100 of Min-40% forget-vs-holdout; closest to 0 is best."""

    def compute(self, ctx):
        ref = ctx.need_reference("privleak_auc", "privleak", "Min-K% AUC")
        auc_value, scores = privleak_auc(ctx)
        items = tuple(ItemScore(item_id(r, i, f"privleak_{s}"), float(v)) for s in scores
                      for i, (r, v) in enumerate(zip(ctx.split(f"privleak_{s}"), scores[s])))
        cut = privleak_cut(ctx)
        departures = ["AUC_retrain is this sweep's own Retrain model's (MUSE's code uses its constant 0.4772)"]
        if cut:
            s = ctx.settings
            why = ("eval.privleak_tokens" if s.privleak_tokens else
                   "the window this from-scratch target was trained on" if s.trained_positions else
                   "the model's context length")
            departures.append(f"{cut} of {len(scores['forget']) + len(scores['holdout'])} texts scored over their "
                              f"first {privleak_limit(ctx)} tokens only ({why}; MUSE scores whole texts)")
        return MetricValue(privleak(auc_value, ref), items, {
            "membership": "Min-K%", "k": PRIVLEAK_K, "auc_positive": "holdout", "auc": auc_value, "auc_retrain": ref,
            "max_length": privleak_limit(ctx), "add_bos": ctx.settings.add_bos, "n_cut": cut,
            "n_forget": len(scores["forget"]), "n_holdout": len(scores["holdout"]), "departures": departures})
