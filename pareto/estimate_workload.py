"""What a spec trains and evaluates, for `pareto.estimate`: the target's builds (rows, token lengths,
epochs) and the trials' data, with a factory for a randomly initialised model of the target's
shape; nothing is built, cached or downloaded. A source that cannot be priced here says why
(`DataSource.not_estimated`)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Callable, Sequence

import torch

from pareto.sources import source_of
from pareto.spec import SweepSpec


class NotEstimated(Exception):
    """Why this spec's work cannot be priced on this machine (the message says)."""



#: The tiny tokenizer's pieces (pareto.models._build._pre_tokenizer: whitespace-separated words,
#: then 's and every other punctuation character on its own), in plain Python: counting them over
#: every row is ~10x faster than running the tokenizer, and gives the same vocabulary and lengths.
_PIECES = re.compile(r"'s\b|[^\w\s]|\w+")
#: Rows per batch for timing the trials' steps; a larger batch is scaled from it by its rows.
STEP_BATCH = 8


def _pieces(text: str) -> list[str]:
    return _PIECES.findall(text)


@dataclass
class Build:
    what: str
    cached: bool
    lengths: list[int]  # tokens of each example trained on ([] for a real base: not estimated)
    unit: str
    epochs: int
    until: bool
    train: dict  # optimizer, lr, weight_decay, batch_size, seed, group_by_length, micro_batch_size
    eval_batch_size: int
    threads: int


@dataclass
class Workload:
    """What the spec trains and evaluates. For a tiny base: the vocabulary size and every
    example's length from the rows' pieces, and a model factory with that vocabulary over a
    tokenizer of the rows the trials' measurement uses (padded with filler words to that size)."""

    builds: list[Build]
    new_model: Callable | None  # () -> a randomly initialised model of the target's shape; None: not estimated
    tokenizer: object
    forget: list[dict]
    retain: list[dict]
    eval_splits: dict  # split -> rows, as a trial evaluates them
    settings: object  # EvalSettings of the trials
    reason: str = ""  # why new_model is None


def workload(spec: SweepSpec) -> Workload:
    d = spec.data
    if torch.cuda.is_available():  # the measurement below runs on the CPU only
        raise NotEstimated("a GPU machine: not estimated yet (the short measurement runs on the CPU)")
    why = source_of(d.source).not_estimated(asdict(d))
    if why:
        raise NotEstimated(why)
    if spec.target.source == "embedded":
        return _embedded_workload(spec)
    return _trained_workload(spec)


def _embedded_workload(spec: SweepSpec) -> Workload:
    from pareto.data.synthetic import generate_authors, split_by_author
    from pareto.models.cache import default_cache_dir
    from pareto.models.embedded import EmbeddedConfig

    cfg = EmbeddedConfig(**spec.target.embedded)
    rows = generate_authors(cfg.n_authors, cfg.qa_per_author, cfg.data_seed)
    forget, retain = split_by_author(rows, cfg.forget_fraction)
    cached = (default_cache_dir() / f"embedded-{cfg.content_hash()[:16]}" / "manifest.json").is_file()
    prompt = dict(template="plain", add_bos=True, max_length=10**9)  # as the embedded build encodes
    build = Build("target", cached, _qa_lengths(rows, **prompt), "QA pairs", cfg.max_epochs, True,
                   dict(optimizer="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                        seed=cfg.train_seed, group_by_length=False, micro_batch_size=None),
                   eval_batch_size=len(rows), threads=1)  # build_embedded_target's default
    shape = dict(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, n_positions=cfg.n_positions)
    return _tiny_workload(spec, [build], rows, shape, forget, retain, {}, {"max_length": None})


def _trained_workload(spec: SweepSpec) -> Workload:
    from pareto.data.encode import row_kind
    from pareto.sources import load_data
    from pareto.models.target_build import pretrain_splits, target_path
    from pareto.prepare import target_config

    data = load_data(asdict(spec.data))
    cfg = target_config(spec).resolved()
    vocab_rows = [r for rows in data.eval_splits.values() for r in rows]
    refs = [("target", cfg)] + ([("Retrain reference", replace(cfg, retain_only=True))]
                                if spec.target.retain_model else [])
    cached = {what: (target_path(data.forget, data.retain, c, vocab_rows=vocab_rows,
                                 eval_splits=data.eval_splits) / "manifest.json").is_file()
              for what, c in refs}
    epochs = cfg.max_epochs if cfg.until_memorised else cfg.epochs
    train = dict(optimizer=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                 seed=cfg.seed, group_by_length=cfg.group_by_length, micro_batch_size=cfg.micro_batch_size)
    if not cfg.is_tiny or row_kind(data.forget) != "qa":
        reason = (f"base model {cfg.base} is not loaded to estimate" if not cfg.is_tiny
                  else "text data: not estimated yet")
        builds = [Build(what, cached[what], [], "rows", epochs, cfg.until_memorised, train, 0, 1) for what, _ in refs]
        return Workload(builds, None, None, data.forget, data.retain, {}, None, reason=reason)
    prompt = dict(template=cfg.template, add_bos=cfg.add_bos, max_length=cfg.max_length)
    stand_in = _qa_lengths([r for rows in pretrain_splits(cfg, data.eval_splits).values() for r in rows], **prompt)
    mixed = stand_in if cfg.pretrain_mix else []  # the stand-in stays in the rows of the second phase
    builds = []
    for what, c in refs:  # target.train.pretrain: a first phase on the stand-in alone, then the data (+ stand-in)
        if stand_in:
            builds.append(Build(f"{what} (stand-in phase)", cached[what], stand_in, "stand-in QA pairs", epochs,
                                cfg.until_memorised, train, eval_batch_size=256, threads=cfg.num_threads))
        builds.append(Build(what, cached[what], _qa_lengths(data.retain if c.retain_only else
                                                             [*data.forget, *data.retain], **prompt) + mixed,
                            "QA pairs" + (" with the stand-in" if mixed else ""), epochs, cfg.until_memorised,
                            train, eval_batch_size=256, threads=cfg.num_threads))
    shape = dict(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, n_positions=cfg.n_positions)
    return _tiny_workload(spec, builds, [*data.forget, *data.retain, *vocab_rows], shape, data.forget, data.retain,
                          data.eval_splits, asdict(cfg))


def _qa_lengths(rows: Sequence[dict], *, template: str, add_bos: bool, max_length: int) -> list[int]:
    """Tokens of each QA example as `encode_qa` makes it: [BOS] prompt, answer, EOS; cut at max_length."""
    from pareto.data.qa import format_prompt
    from pareto.data.templates import resolve_template

    fmt = resolve_template(template)
    return [min(add_bos + len(_pieces(format_prompt(r["question"], fmt))) + len(_pieces(r["answer"])) + 1, max_length)
            for r in rows]


def _tiny_workload(spec: SweepSpec, builds: list[Build], vocab_rows: Sequence[dict], shape: dict,
                   forget: list[dict], retain: list[dict], eval_splits: dict, config: dict) -> Workload:
    """The tiny base's vocabulary counted over `vocab_rows` (every text field, as build_tokenizer
    reads them); the measurement's tokenizer knows the words of the rows it encodes, and filler
    words bring it to that size, so the model's output layer is the real one."""
    from pareto.data.qa import format_prompt
    from pareto.data.templates import resolve_template
    from pareto.models._build import SPECIAL_TOKENS, _row_texts, build_tokenizer, new_tiny_gpt2

    template = format_prompt("", resolve_template(spec.data.template))
    words = {w for text in [template, *_row_texts(vocab_rows)] for w in _pieces(text)}
    vocab = len(words | set(SPECIAL_TOKENS))
    splits = _trial_splits(spec, forget, retain, eval_splits)
    measured = [*spread(forget, 4 * STEP_BATCH), *spread(retain, 4 * STEP_BATCH),
                *(r for rows in splits.values() for r in spread(rows, spec.eval.batch_size))]
    tokenizer = build_tokenizer(measured, extra_texts=[template])
    filler = " ".join(f"zzfiller{i}" for i in range(max(vocab - len(tokenizer), 0)))
    tokenizer = build_tokenizer(measured, extra_texts=[template, filler])
    return Workload(builds, lambda: new_tiny_gpt2(tokenizer, **shape), tokenizer, forget, retain, splits,
                     _trial_settings(spec, config))


def spread(rows: Sequence[dict], n: int) -> list[dict]:
    """At most `n` of `rows`, evenly spread."""
    return list(rows[:: max(1, len(rows) // n)][:n])


def _trial_splits(spec: SweepSpec, forget: list[dict], retain: list[dict], eval_splits: dict) -> dict:
    """The splits a trial evaluates, as trainables/unlearn.py's lm_target picks them."""
    extra = dict(eval_splits)
    return {"forget": forget, "retain": spread(extra.pop("retain", retain), spec.eval.retain_items), **extra}


def _trial_settings(spec: SweepSpec, config: dict):
    from pareto.metrics import eval_settings

    manifest = {"template": spec.data.template, "add_bos": config.get("add_bos", True), "config": config}
    return eval_settings(manifest, max_new_tokens=spec.eval.max_new_tokens, batch_size=spec.eval.batch_size)
