"""Building a target (pareto.models.target): train the base model (pareto.models.target_base)
on the rows, check what it memorised (ROUGE-L of greedy answers or window continuations), and
store it with its rows and manifest under `<cache_dir>/target-<hash16>/`, atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from pareto.lm import context_length
from pareto.data.encode import encode_rows, row_kind
from pareto.data.qa import encode_prompt
from pareto.data.templates import resolve_template
from pareto.models._build import answer_metrics, isolated_torch_state, quiet_progress_bars, train_on_answers
from pareto.models.cache import build_atomically, default_cache_dir, versions, write_jsonl
from pareto.models.target import TRAINER_VERSION, TargetConfig, data_hash, pretrain_hash, vocab_hash
from pareto.models.target_base import base_fingerprint, base_model

__all__ = ["build_target", "target_path", "rouge_item_indices", "pretrain_splits"]

#: ROUGE-L of greedy answers is measured on at most this many items of each split.
ROUGE_ITEMS = 200
#: Text corpora: the check continues each window after its first CHECK_PROMPT_TOKENS tokens.
CHECK_PROMPT_TOKENS = 32
#: What the manifest's check after training measured, by kind of data.
CHECKS = {"qa": "ROUGE-L recall of greedy answers",
          "text": "ROUGE-L F1 of greedy window continuations (verbmem-style)"}


def _check_rows(rows: Sequence[dict], name: str) -> str:
    """"qa" or "text": every row a QA pair with non-empty question and answer, or a non-empty text."""
    if not rows:
        raise ValueError(f"{name}: no rows")
    texts = "text" in rows[0] and "question" not in rows[0]  # the first row says which kind is meant
    fields = ("text",) if texts else ("question", "answer")
    for i, r in enumerate(rows):
        for f in fields:
            if not isinstance(r.get(f), str) or not r[f]:
                raise ValueError(f"{name} row {i}: field {f!r} must be a non-empty string, got "
                                 f"{r.get(f)!r}")
    return row_kind(rows, name)


# ----------------------------------------------------------------------------------------------
# evaluation


def rouge_item_indices(n: int, k: int = ROUGE_ITEMS) -> list[int]:
    """At most `k` indices of `n` items, evenly spread and deterministic (all when n <= k)."""
    if n <= k:
        return list(range(n))
    return [i * n // k for i in range(k)]



def _greedy_rouge(model, tokenizer, rows: Sequence[dict], batch_size: int, cfg: TargetConfig) -> dict:
    """Mean ROUGE-L recall of greedy answers to the questions of (up to ROUGE_ITEMS of) `rows`
    against their answers (prompts with the target's template and BOS), and how many items and
    tokens that took."""
    from pareto.metrics.generation import greedy_answers
    from pareto.metrics.rouge import rouge_l_recall

    fmt = resolve_template(cfg.template)
    items = [rows[i] for i in rouge_item_indices(len(rows))]
    longest_answer = max(len(tokenizer(" " + r["answer"], add_special_tokens=False)["input_ids"])
                         for r in items)
    longest_prompt = max(len(encode_prompt(tokenizer, r["question"], add_bos=cfg.add_bos, template=fmt))
                         for r in items)
    max_new = longest_answer + 8
    n_ctx = context_length(model)
    if n_ctx is not None:
        max_new = max(1, min(max_new, n_ctx - longest_prompt))
    answers = greedy_answers(model, tokenizer, [r["question"] for r in items],
                             max_new_tokens=max_new, batch_size=batch_size, add_bos=cfg.add_bos,
                             template=fmt)
    scores = rouge_l_recall(answers, [r["answer"] for r in items])
    return {"rouge_l_recall": sum(scores) / len(scores), "n_items": len(items),
            "full_recall": sum(s == 1.0 for s in scores),
            "max_new_tokens": max_new}


def _continuation_rouge(model, tokenizer, rows: Sequence[dict], batch_size: int, cfg: TargetConfig) -> dict:
    """Text corpora: a verbmem-style check on the training windows of `rows`. Each window is cut
    after its first CHECK_PROMPT_TOKENS text tokens; the greedy continuation of L tokens
    (L = 128 as MUSE's verbmem, or less where no window is that long) is scored against the
    window's next L tokens by ROUGE-L F1 without stemming (MUSE's verbmem definition,
    pareto.metrics.muse.rouge_l), on up to ROUGE_ITEMS windows that have L tokens after the cut."""
    from pareto.metrics.generation import greedy_generate
    from pareto.metrics.muse import VERBMEM_TOKENS, rouge_l

    windows = encode_rows(tokenizer, rows, max_length=cfg.max_length, add_bos=cfg.add_bos)
    longest = max(len(w.input_ids) for w in windows)
    cut = min(CHECK_PROMPT_TOKENS + windows[0].prompt_len, longest - 1)  # BOS stays in the prompt
    n_new = min(VERBMEM_TOKENS, longest - cut)
    windows = [w for w in windows if len(w.input_ids) >= cut + n_new]
    items = [windows[i] for i in rouge_item_indices(len(windows))]
    generations = greedy_generate(model, tokenizer, [w.input_ids[:cut] for w in items],
                                  max_new_tokens=n_new, batch_size=batch_size)
    references = [tokenizer.decode(w.input_ids[cut:cut + n_new], skip_special_tokens=True) for w in items]
    scores = rouge_l(generations, references)
    return {"rouge_l": float(scores.mean()), "n_items": len(items), "full_recall": int((scores == 1.0).sum()),
            "max_new_tokens": n_new}


# ----------------------------------------------------------------------------------------------
# build


def _resolve_device(cfg: TargetConfig) -> str:
    return cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _training_examples(tokenizer, train_rows: list[dict], kind: str, cfg: TargetConfig, encode: dict,
                       log: Callable[[str], None]):
    """The encoded training examples (QA pairs, or windows of the texts) and how many QA pairs
    were truncated to `cfg.max_length`."""
    n_truncated = 0
    if kind == "qa":
        examples = encode_rows(tokenizer, train_rows, max_length=10**9, **encode)
        longest = max(len(e.input_ids) for e in examples)
        if cfg.is_tiny and longest > cfg.n_positions:
            raise ValueError(f"n_positions={cfg.n_positions} is shorter than the longest QA "
                             f"example ({longest} tokens)")
        n_truncated = sum(len(e.input_ids) > cfg.max_length for e in examples)
        if n_truncated:
            log(f"[target] warning: {n_truncated} of {len(examples)} QA examples are longer than "
                f"max_length={cfg.max_length} tokens and are truncated")
            examples = encode_rows(tokenizer, train_rows, max_length=cfg.max_length, **encode)
    else:  # texts: windows of max_length tokens, none truncated
        examples = encode_rows(tokenizer, train_rows, max_length=cfg.max_length, **encode)
    if cfg.is_tiny and any(tokenizer.unk_token_id in e.input_ids for e in examples):
        raise AssertionError("the word-level tokenizer maps a word of the data to <unk>")
    return examples, n_truncated


def _train(model, tokenizer, examples, train_rows: list[dict], kind: str, cfg: TargetConfig, *,
           device: str, data_name: str, eval_bs: int, log: Callable[[str], None], what: str | None = None):
    """Train `model` on `examples` as `cfg` says: (number of parameters, train_on_answers's result,
    seconds). `what`: the rows' description in the log (default: forget and retain, or retain only)."""
    n_params = sum(p.numel() for p in model.parameters())
    unit = "QA pairs" if kind == "qa" else f"texts ({len(examples)} windows of up to {cfg.max_length} tokens)"
    if what is None:
        what = f"retain {unit} only" if cfg.retain_only else f"{unit} (forget and retain)"
    else:
        what = f"{unit} ({what})"
    stop = (f"until answer accuracy {cfg.target_accuracy} (at most {cfg.max_epochs} epochs)"
            if cfg.until_memorised else f"{cfg.epochs} epochs")
    log(f"[target] training {cfg.base} ({n_params:,} parameters, vocab {len(tokenizer)}) on "
        f"{len(train_rows)} {what} of {data_name} on {device}: {cfg.optimizer} lr {cfg.lr} "
        f"batch {cfg.batch_size}, {stop}")
    t_train = time.perf_counter()
    result = train_on_answers(
        model, examples, pad_id=tokenizer.pad_token_id, optimizer=cfg.optimizer, lr=cfg.lr,
        weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, seed=cfg.seed,
        epochs=cfg.max_epochs if cfg.until_memorised else cfg.epochs,
        target_accuracy=cfg.target_accuracy if cfg.until_memorised else None,
        log=log, tag="target", group_by_length=cfg.group_by_length,
        lr_schedule=cfg.lr_schedule,
        # with a stand-in the accuracy is measured after every epoch, so that a target accuracy
        # well below memorisation stops where it is reached (targets without one: as before)
        check_below_loss=None if cfg.pretrain else 1.0, eval_batch_size=eval_bs,
        micro_batch_size=cfg.micro_batch_size, log_every=10 if cfg.is_tiny else 1)
    train_seconds = time.perf_counter() - t_train
    if result["reached_target"] is False:
        log(f"[target] warning: answer accuracy {result['answer_accuracy']:.4f} < target "
            f"{cfg.target_accuracy} after {cfg.max_epochs} epochs")
    return n_params, result, train_seconds


def _check(model, tokenizer, forget_rows: list[dict], retain_rows: list[dict], kind: str, gen_bs: int,
           cfg: TargetConfig, log: Callable[[str], None]):
    """The check after training on each split: (results by split, the result's key, seconds)."""
    t_eval = time.perf_counter()
    check, key = ((_greedy_rouge, "rouge_l_recall") if kind == "qa" else (_continuation_rouge, "rouge_l"))
    rouge = {name: check(model, tokenizer, rows, gen_bs, cfg)
             for name, rows in (("forget", forget_rows), ("retain", retain_rows))}
    eval_seconds = time.perf_counter() - t_eval
    log(f"[target] {CHECKS[kind]}: forget {rouge['forget'][key]:.4f} ({rouge['forget']['n_items']} items), "
        f"retain {rouge['retain'][key]:.4f} ({rouge['retain']['n_items']} items)")
    return rouge, key, eval_seconds


def _save(out: Path, model, tokenizer, forget_rows: list[dict], retain_rows: list[dict], data_sha: str) -> None:
    """The model, tokenizer and rows into `out` (not the manifest)."""
    with quiet_progress_bars():
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    write_jsonl(out / "forget.jsonl", forget_rows)
    write_jsonl(out / "retain.jsonl", retain_rows)
    written = hashlib.sha256((out / "forget.jsonl").read_bytes()
                             + (out / "retain.jsonl").read_bytes()).hexdigest()
    if written != data_sha:
        raise AssertionError("forget.jsonl + retain.jsonl do not hash to the data hash")


def _pretrain(model, tokenizer, stand_in: dict[str, list[dict]], kind: str, cfg: TargetConfig, encode: dict,
              *, device: str, data_name: str, eval_bs: int, log: Callable[[str], None]):
    """The stand-in's first phase: its rows alone, until `target_accuracy` on them (at most
    `max_epochs`) or for `epochs`. (its examples, the manifest's record of the phase, seconds)"""
    rows = [r for name in cfg.pretrain for r in stand_in[name]]
    examples, n_truncated = _training_examples(tokenizer, rows, kind, cfg, encode, log)
    _, result, seconds = _train(model, tokenizer, examples, rows, kind, cfg, device=device,
                                data_name=data_name, eval_bs=eval_bs, log=log,
                                what="pretraining stand-in: " + ", ".join(cfg.pretrain))
    record = {"splits": list(cfg.pretrain), "mix": cfg.pretrain_mix,
              "n_rows": {name: len(stand_in[name]) for name in cfg.pretrain}, "n_truncated": n_truncated,
              "hash": pretrain_hash(stand_in, cfg.pretrain), **result, "train_seconds": round(seconds, 3)}
    model.train()
    return examples, record, seconds


def _build_into(out: Path, forget_rows: list[dict], retain_rows: list[dict], cfg: TargetConfig,
                *, data_name: str, data_sha: str, fingerprint: str | None, content_hash: str,
                vocab_rows: Sequence[dict], log: Callable[[str], None],
                stand_in: dict[str, list[dict]] | None = None) -> dict:
    t0, cpu0 = time.perf_counter(), time.process_time()
    device = _resolve_device(cfg)
    train_rows = retain_rows if cfg.retain_only else [*forget_rows, *retain_rows]
    kind = row_kind(train_rows)
    encode = dict(template=cfg.template, add_bos=cfg.add_bos)
    stand_in = stand_in or {}
    pretrain_record, pretrain_seconds = None, 0.0

    with isolated_torch_state(cfg.num_threads):
        torch.manual_seed(cfg.seed)
        model, tokenizer = base_model(cfg, forget_rows, retain_rows,
                                      [*vocab_rows, *(r for rows in stand_in.values() for r in rows)], log)
        model.to(device=device, dtype=getattr(torch, cfg.dtype))
        eval_bs = 256 if cfg.is_tiny else max(cfg.micro_batch_size or cfg.batch_size, 1)

        if cfg.pretrain:
            pre_examples, pretrain_record, pretrain_seconds = _pretrain(
                model, tokenizer, stand_in, kind, cfg, encode, device=device, data_name=data_name,
                eval_bs=eval_bs, log=log)
        examples, n_truncated = _training_examples(tokenizer, train_rows, kind, cfg, encode, log)
        phase_rows, phase_examples, what = train_rows, examples, None
        if cfg.pretrain and cfg.pretrain_mix:
            phase_rows = [*train_rows, *(r for name in cfg.pretrain for r in stand_in[name])]
            phase_examples = [*examples, *pre_examples]
            what = ("retain only" if cfg.retain_only else "forget and retain") + " with the stand-in"

        n_params, result, train_seconds = _train(model, tokenizer, phase_examples, phase_rows, kind, cfg,
                                                 device=device, data_name=data_name, eval_bs=eval_bs,
                                                 log=log, what=what)
        if cfg.pretrain:
            # what survives of the stand-in, and the forget/retain rows' own fit (the phase's
            # result covers the stand-in too when it is mixed in)
            acc, ce = answer_metrics(model, pre_examples, tokenizer.pad_token_id, batch_size=eval_bs)
            pretrain_record.update(after_build={"answer_accuracy": acc, "answer_loss": ce})
            for name, rows in (("forget", forget_rows), ("retain", retain_rows)):
                ex = encode_rows(tokenizer, rows, max_length=cfg.max_length, **encode)
                acc, ce = answer_metrics(model, ex, tokenizer.pad_token_id, batch_size=eval_bs)
                pretrain_record["after_build"][name] = {"answer_accuracy": acc, "answer_loss": ce}
            log(f"[target] after the build: stand-in answer loss "
                f"{pretrain_record['after_build']['answer_loss']:.4f} accuracy "
                f"{pretrain_record['after_build']['answer_accuracy']:.4f}; retain answer loss "
                f"{pretrain_record['after_build']['retain']['answer_loss']:.4f}, forget "
                f"{pretrain_record['after_build']['forget']['answer_loss']:.4f}")
        train_seconds += pretrain_seconds

        gen_bs = 64 if cfg.is_tiny else eval_bs
        rouge, key, eval_seconds = _check(model, tokenizer, forget_rows, retain_rows, kind, gen_bs,
                                          cfg, log)

    model.to("cpu")
    _save(out, model, tokenizer, forget_rows, retain_rows, data_sha)
    history = result.pop("history")
    manifest = {
        "kind": "target",
        "hash": content_hash,
        "base": cfg.base,
        "base_fingerprint": fingerprint,
        "data_name": data_name,
        "data_hash": data_sha,
        "retain_only": cfg.retain_only,
        "trained_on": "retain" if cfg.retain_only else "forget+retain",
        "config": dataclasses.asdict(cfg),
        "template": cfg.template,
        "add_bos": cfg.add_bos,
        "data_kind": kind,
        "trainer_version": TRAINER_VERSION,
        "n_rows": len(forget_rows) + len(retain_rows), "n_forget": len(forget_rows),
        "n_retain": len(retain_rows), "n_train": len(train_rows), "n_examples": len(examples),
        # what a trial batches: QA pairs, or the windows of the forget texts (unlearn.epochs counts these)
        "n_forget_examples": len(forget_rows) if kind == "qa" else len(
            encode_rows(tokenizer, forget_rows, max_length=cfg.max_length, **encode)),
        "n_truncated": n_truncated,
        "vocab_size": len(tokenizer),
        "vocab_rows": len(vocab_rows) if cfg.is_tiny else 0,
        "vocab_hash": vocab_hash(vocab_rows) if cfg.is_tiny else None,
        # the pretraining stand-in (None without one): its splits, first phase and what survives
        "pretrain": (None if pretrain_record is None
                     else {**pretrain_record, "history": pretrain_record.pop("history")}),
        "n_params": n_params,
        **result,
        "check": CHECKS[kind],
        key: {k: v[key] for k, v in rouge.items()},
        "rouge_items": {k: v["n_items"] for k, v in rouge.items()},
        "rouge_full_recall_items": {k: v["full_recall"] for k, v in rouge.items()},
        "rouge_max_new_tokens": {k: v["max_new_tokens"] for k, v in rouge.items()},
        "history": history,
        "device": device,
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "cpu_seconds": round(time.process_time() - cpu0, 3),  # this process, all threads: a shared machine inflates only wall
        "versions": versions(),
    }
    # written last: a directory with a manifest is a complete target
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def pretrain_splits(cfg: TargetConfig, eval_splits: dict | None, kind: str | None = None) -> dict[str, list[dict]]:
    """The rows of the stand-in splits `cfg.pretrain` names, from the data's evaluation splits
    (`eval_splits`: name -> rows); an unknown name is an error that names the ones there are."""
    if not cfg.pretrain:
        return {}
    eval_splits = eval_splits or {}
    known = [n for n in eval_splits if n not in ("forget", "retain")]
    unknown = [n for n in cfg.pretrain if n not in known]
    if unknown:
        raise ValueError(f"target.train.pretrain: unknown evaluation split {unknown[0]!r}; this data has "
                         f"{', '.join(known) if known else 'none'}")
    out = {}
    for name in cfg.pretrain:
        k = _check_rows(eval_splits[name], f"pretrain split {name!r}")
        if kind is not None and k != kind:
            raise ValueError(f"target.train.pretrain: split {name!r} holds {k} rows, the data {kind} rows")
        out[name] = [{"question": r["question"], "answer": r["answer"]} if k == "qa" else {"text": r["text"]}
                     for r in eval_splits[name]]
    return out


def target_path(forget_rows: Sequence[dict], retain_rows: Sequence[dict], cfg: TargetConfig,
                cache_dir: str | Path | None = None, vocab_rows: Sequence[dict] = (),
                eval_splits: dict | None = None) -> Path:
    """Where `build_target` puts (or finds) this target; builds nothing."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stand_in = pretrain_splits(cfg, eval_splits)
    key = cfg.resolved().content_hash(data_hash(forget_rows, retain_rows),
                                      base_fingerprint(cfg.base), vocab_hash(vocab_rows),
                                      pretrain_hash(stand_in, cfg.pretrain))
    return root / f"target-{key[:16]}"


def build_target(forget_rows: list[dict], retain_rows: list[dict],
                 cfg: TargetConfig = TargetConfig(), *, data_name: str,
                 cache_dir: str | Path | None = None, vocab_rows: Sequence[dict] = (),
                 eval_splits: dict | None = None, log: Callable[[str], None] = print) -> Path:
    """Directory of the target of `cfg` trained on these rows: `<cache_dir>/target-<hash16>`,
    built if absent (cache_dir defaults to $PARETO_CACHE or ~/.cache/pareto).

    Trains on forget + retain rows, or on the retain rows only with `cfg.retain_only`; both row
    lists are saved either way (forget.jsonl, retain.jsonl) so trials read the data the target
    was made from. Rows are QA pairs or texts, the same kind in both lists. `vocab_rows`: more
    rows (the evaluation splits) whose words a tiny base's tokenizer must know; part of the key
    for a tiny base. `eval_splits` (name -> rows): where the stand-in splits `cfg.pretrain` names
    are found (their question and answer only are trained on; their rows are part of the key).
    `data_name` is a label recorded in the manifest, not part of the key.
    """
    kinds = {_check_rows(forget_rows, "forget_rows"), _check_rows(retain_rows, "retain_rows")}
    if len(kinds) > 1:
        raise ValueError("forget_rows and retain_rows must be the same kind: both QA pairs or both texts")
    cfg = cfg.resolved()
    stand_in = pretrain_splits(cfg, eval_splits, kinds.pop())
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_sha = data_hash(forget_rows, retain_rows)
    fingerprint = base_fingerprint(cfg.base)
    vocab_rows = list(vocab_rows) if cfg.is_tiny else []
    key = cfg.content_hash(data_sha, fingerprint, vocab_hash(vocab_rows), pretrain_hash(stand_in, cfg.pretrain))
    final = root / f"target-{key[:16]}"
    path, manifest = build_atomically(
        final, lambda tmp: _build_into(tmp, list(forget_rows), list(retain_rows), cfg,
                                       data_name=data_name, data_sha=data_sha,
                                       fingerprint=fingerprint, content_hash=key,
                                       vocab_rows=vocab_rows, log=log, stand_in=stand_in),
        log, "target")
    if manifest is not None:
        log(f"[target] done in {manifest['wall_seconds']:.1f}s: {manifest['epochs']} epochs, "
            f"answer accuracy {manifest['answer_accuracy']:.4f}, loss "
            f"{manifest['final_train_loss']:.4f}")
    return path
