"""Targets: a base model fine-tuned on the full data (or on the retain set only), cached.

`build_target(forget_rows, retain_rows, cfg, data_name=...)` trains `cfg.base` on every row,
forget and retain (or, with `cfg.retain_only`, on the retain rows only: the "Retrain"
reference that TOFU's Forget Quality and MUSE's privleak compare against), and stores
the result. Rows are QA pairs (TOFU, custom: the answer-only loss, with the prompt template
`cfg.template` and BOS when `cfg.add_bos`) or texts (MUSE-News articles: every token of their
`max_length`-token windows), encoded by `pareto.data.encode.encode_rows`; the loss is
`pareto.lm.answer_ce` either way. It stores

    <cache_dir>/target-<hash16>/
        config.json, model.safetensors, generation_config.json   (save_pretrained)
        tokenizer.json, tokenizer_config.json, ...                (save_pretrained)
        forget.jsonl, retain.jsonl        (the rows given, so every trial reads the same data)
        manifest.json                     (base, data hash, resolved settings, final losses)

Bases:
- ``"tiny"`` (default): a GPT-2 built from config (dropout 0) over a word-level tokenizer whose
  vocabulary is every word of the rows given (forget and retain, also for `retain_only`, so the
  full target and its Retrain reference share one tokenizer), of `vocab_rows` (the evaluation
  splits, so no evaluated word is <unk>) and of the prompt template, trained "until memorised": until
  the teacher-forced greedy accuracy on the answer tokens reaches `target_accuracy` (0.998:
  TOFU's answers average 33 words, and at 0.99 greedy answers recall only ~0.92 of them),
  with Adam at lr 3e-3 halved on plateaus, batches grouped by length.
- anything else: a transformers causal LM, by hub name or local directory
  (``AutoModelForCausalLM`` / ``AutoTokenizer``; ``trust_remote_code`` only when set; no
  network when the base is a local directory or HF_HUB_OFFLINE is set), fine-tuned with the
  settings of the NGDiff paper, App. E.3: "To finetune a targeted model with the full dataset,
  we use the optimizer Adam with a learning rate of η = {1e-5, 2e-5}, a training batch size of
  {16, 32}, and train 25 epochs for all language models." Defaults: Adam, lr 1e-5, batch 16,
  25 epochs, constant learning rate (the paper names no schedule), fp32.

Settings left as None resolve by base (`TargetConfig.resolved`); the manifest records the
resolved values. The cache key is the sha256 of (resolved settings, data hash, base
fingerprint, TRAINER_VERSION, and for a tiny base the hash of `vocab_rows` when there are any);
the template and BOS settings count only when they differ from the defaults (plain, BOS), so
targets built before they existed keep their keys. Where the work runs (`num_threads`, `device`,
`micro_batch_size`) is recorded but not hashed, and so is `data_name` (a label: the same rows
under another name are the same target). The build is atomic (see pareto.models._build).

    from pareto.data.tofu import load_tofu, tofu_author_subset
    from pareto.models.target import TargetConfig, build_target, load_target
    forget, retain = tofu_author_subset(load_tofu("full"), n_authors=40)
    path = build_target(forget, retain, TargetConfig(), data_name="tofu-last40-forget10")
    model, tokenizer, manifest = load_target(path)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from pareto._registry import did_you_mean
from pareto.lm import context_length
from pareto.data.encode import encode_rows, row_kind
from pareto.data.qa import encode_prompt, format_prompt
from pareto.data.templates import TEMPLATES, resolve_template
from pareto.models._build import (
    LR_SCHEDULES, OPTIMIZERS, build_atomically, build_tokenizer, default_cache_dir,
    isolated_torch_state, jsonl_bytes, load_target, new_tiny_gpt2, quiet_progress_bars,
    train_on_answers, versions, write_jsonl,
)

__all__ = ["TargetConfig", "build_target", "load_target", "TRAINER_VERSION",
           "rouge_item_indices"]

#: Bump when training or the saved layout changes what a config builds; part of the cache hash.
TRAINER_VERSION = 1

TINY = "tiny"
DTYPES = ("float32", "bfloat16", "float16")
#: Where and how the work runs: recorded in the manifest, not part of the cache key.
EXECUTION_FIELDS = ("num_threads", "device", "micro_batch_size")
#: Prompt settings hashed only when they differ from these (targets built before they existed).
PROMPT_DEFAULTS = {"template": "plain", "add_bos": True}
#: ROUGE-L of greedy answers is measured on at most this many items of each split.
ROUGE_ITEMS = 200
#: Text corpora: the check continues each window after its first CHECK_PROMPT_TOKENS tokens.
CHECK_PROMPT_TOKENS = 32
#: What the manifest's check after training measured, by kind of data.
CHECKS = {"qa": "ROUGE-L recall of greedy answers",
          "text": "ROUGE-L F1 of greedy window continuations (verbmem-style)"}

# Defaults by base. Real models: NGDiff paper App. E.3 (Adam, lr 1e-5 or 2e-5, batch 16 or 32,
# 25 epochs). Tiny: chosen so that the last 40 TOFU authors (800 QA pairs) are memorised on a
# 2-core CPU in minutes (see the measurement in the module's report / tests).
TINY_DEFAULTS = dict(n_layer=2, n_embd=128, n_head=4, n_positions=256, lr=3e-3,
                     group_by_length=True, lr_schedule="plateau", target_accuracy=0.998)
REAL_DEFAULTS = dict(lr=1e-5, max_length=512, group_by_length=False, lr_schedule="constant",
                     target_accuracy=0.99)
DEFAULT_EPOCHS = {"tiny": 300, "real": 25}  # the cap until memorised, or the fixed count
TINY_ONLY = ("n_layer", "n_embd", "n_head", "n_positions")
REAL_ONLY = ("revision",)


@dataclass(frozen=True)
class TargetConfig:
    base: str = TINY  # "tiny", or a transformers causal LM: hub name or local directory
    retain_only: bool = False  # train on the retain rows only: the "Retrain" reference
    # real models only
    trust_remote_code: bool = False
    revision: str | None = None  # hub revision (branch, tag or commit)
    dtype: str = "float32"  # weights while training and as saved
    # tiny model shape (GPT-2, dropout 0); None -> TINY_DEFAULTS
    n_layer: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    n_positions: int | None = None
    max_length: int | None = None  # tokens per QA example / text window; tiny: n_positions, real: 512
    # prompts: the template by name (pareto.data.templates) and BOS, recorded with every result
    template: str = "plain"
    add_bos: bool = True
    # training: the answer-only CE of every QA pair, reshuffled every epoch
    optimizer: str = "adam"  # "adam" | "adamw"
    lr: float | None = None  # tiny 3e-3; real 1e-5 (App. E.3)
    batch_size: int = 16  # App. E.3: 16 or 32
    group_by_length: bool | None = None  # batches of similar length (less padding); tiny True
    lr_schedule: str | None = None  # "constant" (real) | "plateau" (tiny: halve when stuck)
    weight_decay: float = 0.0
    seed: int = 0
    until_memorised: bool | None = None  # tiny True, real False
    epochs: int | None = None  # fixed number of epochs (not until_memorised); real 25
    max_epochs: int | None = None  # until_memorised: at most this many epochs; tiny 300
    target_accuracy: float | None = None  # until_memorised: answer accuracy; tiny .998, else .99
    # execution (not hashed)
    num_threads: int = 1  # CPU intra-op threads while building (restored afterwards)
    device: str | None = None  # None: "cuda" if available, else "cpu"
    micro_batch_size: int | None = None  # split each batch (same gradient, less memory)

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError("invalid TargetConfig: " + "; ".join(problems))

    @property
    def is_tiny(self) -> bool:
        return self.base == TINY

    def _problems(self) -> list[str]:
        p: list[str] = []
        if not isinstance(self.base, str) or not self.base:
            p.append(f"base must be 'tiny' or a model name or path, got {self.base!r}")
            return p
        for name in ("n_layer", "n_embd", "n_head", "n_positions", "max_length", "epochs",
                     "max_epochs", "micro_batch_size"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                p.append(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("batch_size", "num_threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                p.append(f"{name} must be an integer >= 1, got {v!r}")
        if (self.is_tiny and self.max_length and self.max_length
                > (self.n_positions or TINY_DEFAULTS["n_positions"])):
            p.append(f"max_length ({self.max_length}) must not exceed n_positions "
                     f"({self.n_positions or TINY_DEFAULTS['n_positions']})")
        if self.n_embd and self.n_head and self.n_embd % self.n_head:
            p.append(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.template not in TEMPLATES:
            p.append(f"unknown prompt template {self.template!r}.{did_you_mean(str(self.template), list(TEMPLATES))} "
                     f"Available: {', '.join(TEMPLATES)}")
        if not isinstance(self.add_bos, bool):
            p.append(f"add_bos must be true or false, got {self.add_bos!r}")
        if self.optimizer not in OPTIMIZERS:
            p.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.lr_schedule is not None and self.lr_schedule not in LR_SCHEDULES:
            p.append(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got "
                     f"{self.lr_schedule!r}")
        if self.dtype not in DTYPES:
            p.append(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.lr is not None and not self.lr > 0:
            p.append(f"lr must be > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            p.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.target_accuracy is not None and not 0.0 < self.target_accuracy <= 1.0:
            p.append(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if not isinstance(self.trust_remote_code, bool):  # a string such as "no" would be truthy
            p.append(f"trust_remote_code must be true or false, got {self.trust_remote_code!r}")
        if self.is_tiny:
            p += [f"{n} applies to a real base, not base='tiny'" for n in REAL_ONLY
                  if getattr(self, n) is not None]
            if self.trust_remote_code:
                p.append("trust_remote_code applies to a real base, not base='tiny'")
        else:
            p += [f"{n} applies to base='tiny' only (a real base has its own shape)"
                  for n in TINY_ONLY if getattr(self, n) is not None]
        until = self.until_memorised if self.until_memorised is not None else self.is_tiny
        if until and self.epochs is not None:
            p.append("epochs is for a fixed number of epochs; with until_memorised use "
                     "max_epochs (the cap) and target_accuracy")
        if not until:
            p += [f"{n} applies with until_memorised=True only (use epochs)"
                  for n in ("max_epochs", "target_accuracy") if getattr(self, n) is not None]
        return p

    def resolved(self) -> "TargetConfig":
        """This config with every None that has a default for its base filled in."""
        defaults = TINY_DEFAULTS if self.is_tiny else REAL_DEFAULTS
        fill = {k: v for k, v in defaults.items()
                if k != "target_accuracy" and getattr(self, k) is None}
        if self.is_tiny and self.max_length is None:
            fill["max_length"] = self.n_positions or TINY_DEFAULTS["n_positions"]
        until = self.until_memorised if self.until_memorised is not None else self.is_tiny
        n_epochs = DEFAULT_EPOCHS["tiny" if self.is_tiny else "real"]
        fill["until_memorised"] = until
        if until:
            fill["max_epochs"] = self.max_epochs or n_epochs
            fill["target_accuracy"] = self.target_accuracy or defaults["target_accuracy"]
        else:
            fill["epochs"] = self.epochs or n_epochs
        return dataclasses.replace(self, **fill)

    def hashed_fields(self) -> dict:
        """The resolved settings that determine the target (not where the work runs)."""
        d = dataclasses.asdict(self.resolved())
        for k in EXECUTION_FIELDS:
            d.pop(k)
        for k, default in PROMPT_DEFAULTS.items():  # hashed only when not the default: old keys stay valid
            if d[k] == default:
                d.pop(k)
        return d

    def content_hash(self, data_hash: str, base_fingerprint: str | None = None,
                     vocab_hash: str | None = None) -> str:
        payload = {"config": self.hashed_fields(), "data_hash": data_hash,
                   "base_fingerprint": base_fingerprint, "trainer_version": TRAINER_VERSION}
        if vocab_hash is not None and self.is_tiny:  # only the tiny base's tokenizer depends on it
            payload["vocab_hash"] = vocab_hash
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


# ----------------------------------------------------------------------------------------------
# data and base model


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


def data_hash(forget_rows: Sequence[dict], retain_rows: Sequence[dict]) -> str:
    """sha256 of forget.jsonl followed by retain.jsonl, as `build_target` writes them."""
    return hashlib.sha256(jsonl_bytes(forget_rows) + jsonl_bytes(retain_rows)).hexdigest()


def vocab_hash(vocab_rows: Sequence[dict]) -> str | None:
    """sha256 of the rows whose words join a tiny tokenizer's vocabulary (None when none)."""
    return hashlib.sha256(jsonl_bytes(vocab_rows)).hexdigest() if vocab_rows else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _local_base(base: str) -> Path | None:
    """`base` as a local directory, None for a hub name; FileNotFoundError for a path that
    does not exist (absolute, ./, ../, ~, or not of the form name or owner/name)."""
    path = Path(base).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or base.startswith((".", "~")) or base.count("/") > 1:
        raise FileNotFoundError(f"base model {base!r}: no such directory (pass a local "
                                f"directory saved with save_pretrained, or a hub model name)")
    return None


def base_fingerprint(base: str) -> str | None:
    """For a local base directory: sha256 over its files' names and sizes and the contents of
    the small ones (configs, tokenizer), so that a changed model is a different target. None
    for a hub name (its name and `revision` are in the config)."""
    local = None if base == TINY else _local_base(base)
    if local is None:
        return None
    h = hashlib.sha256()
    for p in sorted(q for q in local.rglob("*") if q.is_file() and ".cache" not in q.parts):
        size = p.stat().st_size
        h.update(f"{p.relative_to(local).as_posix()}\0{size}\0".encode())
        if size <= 1 << 20:
            h.update(p.read_bytes())
    return h.hexdigest()


def _load_real(cfg: TargetConfig, log: Callable[[str], None]):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = _local_base(cfg.base)
    kw = dict(trust_remote_code=cfg.trust_remote_code,
              local_files_only=local is not None or _offline())
    if cfg.revision is not None:
        kw["revision"] = cfg.revision
    where = str(local) if local is not None else cfg.base
    try:
        with quiet_progress_bars():
            tokenizer = AutoTokenizer.from_pretrained(where, **kw)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=getattr(torch, cfg.dtype),
                                                         **kw)
    except OSError as exc:
        hint = (" Downloads are off (HF_HUB_OFFLINE): pass a local directory or fill the "
                "Hugging Face cache first." if _offline() and local is None else "")
        raise OSError(f"base model {cfg.base!r} could not be loaded: {exc}.{hint}") from exc
    if tokenizer.pad_token is None:  # GPT-2, Llama, Phi: pad with EOS (padding is masked out)
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        log(f"[target] tokenizer has no pad token; using {tokenizer.pad_token!r}")
    if tokenizer.pad_token is None:
        raise ValueError(f"base model {cfg.base!r}: the tokenizer has no pad, EOS or unk token")
    return model, tokenizer


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


def _build_into(out: Path, forget_rows: list[dict], retain_rows: list[dict], cfg: TargetConfig,
                *, data_name: str, data_sha: str, fingerprint: str | None, content_hash: str,
                vocab_rows: Sequence[dict], log: Callable[[str], None]) -> dict:
    t0, cpu0 = time.perf_counter(), time.process_time()
    device = _resolve_device(cfg)
    train_rows = retain_rows if cfg.retain_only else [*forget_rows, *retain_rows]
    kind = row_kind(train_rows)
    encode = dict(template=cfg.template, add_bos=cfg.add_bos)

    with isolated_torch_state(cfg.num_threads):
        torch.manual_seed(cfg.seed)
        if cfg.is_tiny:
            tokenizer = build_tokenizer([*forget_rows, *retain_rows, *vocab_rows],
                                        extra_texts=[format_prompt("", resolve_template(cfg.template))])
            tokenizer.model_max_length = cfg.n_positions
            model = new_tiny_gpt2(tokenizer, n_layer=cfg.n_layer, n_embd=cfg.n_embd,
                                  n_head=cfg.n_head, n_positions=cfg.n_positions)
        else:
            model, tokenizer = _load_real(cfg, log)
        model.to(device=device, dtype=getattr(torch, cfg.dtype))

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

        n_params = sum(p.numel() for p in model.parameters())
        unit = "QA pairs" if kind == "qa" else f"texts ({len(examples)} windows of up to {cfg.max_length} tokens)"
        what = f"retain {unit} only" if cfg.retain_only else f"{unit} (forget and retain)"
        stop = (f"until answer accuracy {cfg.target_accuracy} (at most {cfg.max_epochs} epochs)"
                if cfg.until_memorised else f"{cfg.epochs} epochs")
        log(f"[target] training {cfg.base} ({n_params:,} parameters, vocab {len(tokenizer)}) on "
            f"{len(train_rows)} {what} of {data_name} on {device}: {cfg.optimizer} lr {cfg.lr} "
            f"batch {cfg.batch_size}, {stop}")
        t_train = time.perf_counter()
        eval_bs = 256 if cfg.is_tiny else max(cfg.micro_batch_size or cfg.batch_size, 1)
        result = train_on_answers(
            model, examples, pad_id=tokenizer.pad_token_id, optimizer=cfg.optimizer, lr=cfg.lr,
            weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, seed=cfg.seed,
            epochs=cfg.max_epochs if cfg.until_memorised else cfg.epochs,
            target_accuracy=cfg.target_accuracy if cfg.until_memorised else None,
            log=log, tag="target", group_by_length=cfg.group_by_length,
            lr_schedule=cfg.lr_schedule,
            check_below_loss=1.0, eval_batch_size=eval_bs,
            micro_batch_size=cfg.micro_batch_size, log_every=10 if cfg.is_tiny else 1)
        train_seconds = time.perf_counter() - t_train
        if result["reached_target"] is False:
            log(f"[target] warning: answer accuracy {result['answer_accuracy']:.4f} < target "
                f"{cfg.target_accuracy} after {cfg.max_epochs} epochs")

        t_eval = time.perf_counter()
        gen_bs = 64 if cfg.is_tiny else eval_bs
        check, key = ((_greedy_rouge, "rouge_l_recall") if kind == "qa" else (_continuation_rouge, "rouge_l"))
        rouge = {name: check(model, tokenizer, rows, gen_bs, cfg)
                 for name, rows in (("forget", forget_rows), ("retain", retain_rows))}
        eval_seconds = time.perf_counter() - t_eval
        log(f"[target] {CHECKS[kind]}: forget {rouge['forget'][key]:.4f} ({rouge['forget']['n_items']} items), "
            f"retain {rouge['retain'][key]:.4f} ({rouge['retain']['n_items']} items)")

    model.to("cpu")
    with quiet_progress_bars():
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    write_jsonl(out / "forget.jsonl", forget_rows)
    write_jsonl(out / "retain.jsonl", retain_rows)
    written = hashlib.sha256((out / "forget.jsonl").read_bytes()
                             + (out / "retain.jsonl").read_bytes()).hexdigest()
    if written != data_sha:
        raise AssertionError("forget.jsonl + retain.jsonl do not hash to the data hash")
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


def target_path(forget_rows: Sequence[dict], retain_rows: Sequence[dict], cfg: TargetConfig,
                cache_dir: str | Path | None = None, vocab_rows: Sequence[dict] = ()) -> Path:
    """Where `build_target` puts (or finds) this target; builds nothing."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cfg.resolved().content_hash(data_hash(forget_rows, retain_rows),
                                      base_fingerprint(cfg.base), vocab_hash(vocab_rows))
    return root / f"target-{key[:16]}"


def build_target(forget_rows: list[dict], retain_rows: list[dict],
                 cfg: TargetConfig = TargetConfig(), *, data_name: str,
                 cache_dir: str | Path | None = None, vocab_rows: Sequence[dict] = (),
                 log: Callable[[str], None] = print) -> Path:
    """Directory of the target of `cfg` trained on these rows: `<cache_dir>/target-<hash16>`,
    built if absent (cache_dir defaults to $PARETO_CACHE or ~/.cache/pareto).

    Trains on forget + retain rows, or on the retain rows only with `cfg.retain_only`; both row
    lists are saved either way (forget.jsonl, retain.jsonl) so trials read the data the target
    was made from. Rows are QA pairs or texts, the same kind in both lists. `vocab_rows`: more
    rows (the evaluation splits) whose words a tiny base's tokenizer must know; part of the key
    for a tiny base. `data_name` is a label recorded in the manifest, not part of the key.
    """
    kinds = {_check_rows(forget_rows, "forget_rows"), _check_rows(retain_rows, "retain_rows")}
    if len(kinds) > 1:
        raise ValueError("forget_rows and retain_rows must be the same kind: both QA pairs or both texts")
    cfg = cfg.resolved()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_sha = data_hash(forget_rows, retain_rows)
    fingerprint = base_fingerprint(cfg.base)
    vocab_rows = list(vocab_rows) if cfg.is_tiny else []
    key = cfg.content_hash(data_sha, fingerprint, vocab_hash(vocab_rows))
    final = root / f"target-{key[:16]}"
    path, manifest = build_atomically(
        final, lambda tmp: _build_into(tmp, list(forget_rows), list(retain_rows), cfg,
                                       data_name=data_name, data_sha=data_sha,
                                       fingerprint=fingerprint, content_hash=key,
                                       vocab_rows=vocab_rows, log=log),
        log, "target")
    if manifest is not None:
        log(f"[target] done in {manifest['wall_seconds']:.1f}s: {manifest['epochs']} epochs, "
            f"answer accuracy {manifest['answer_accuracy']:.4f}, loss "
            f"{manifest['final_train_loss']:.4f}")
    return path
