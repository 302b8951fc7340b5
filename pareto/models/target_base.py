"""The base model a target starts from: a new tiny GPT-2 over a word-level tokenizer, or a
transformers causal LM with its tokenizer, by hub name or from a local directory (no network
when the base is a local directory or HF_HUB_OFFLINE is set); and the fingerprint of a local
base directory, part of the target's cache key (pareto.models.target).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

import torch

from pareto.data.qa import format_prompt
from pareto.data.templates import resolve_template
from pareto.models._build import build_tokenizer, new_tiny_gpt2, quiet_progress_bars
from pareto.models.target import TINY, TargetConfig

__all__ = ["base_fingerprint", "base_model", "reference_bos"]


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


def reference_bos(cfg: TargetConfig, download: bool = False) -> bool | None:
    """Whether the field's reference code puts a BOS before each example for this base: TOFU's and
    open-unlearning's code (and MUSE's) call the tokenizer with its special tokens, so an example
    starts with BOS exactly when the tokenizer adds one itself — Llama's tokenizers do, GPT-2's and
    Phi's add nothing. The word-level tokenizer of `base: tiny` is pareto's own, with no reference:
    BOS, as pareto has always trained it. None when the tokenizer cannot be loaded here: not cached
    (and `download` off: checks such as `pareto validate` never reach the network), or offline; the
    build that needs it downloads it first (`download`) or reports that it cannot.

    `data.add_bos: true | false` overrides this (docs/metrics.md, "Conventions")."""
    if cfg.is_tiny:
        return True
    from transformers import AutoTokenizer

    try:
        local = _local_base(cfg.base)
        kw = dict(trust_remote_code=cfg.trust_remote_code,
                  local_files_only=local is not None or _offline() or not download)
        if cfg.revision is not None:
            kw["revision"] = cfg.revision
        with quiet_progress_bars():
            tokenizer = AutoTokenizer.from_pretrained(str(local) if local is not None else cfg.base, **kw)
    except (OSError, ValueError):
        return None
    bos = tokenizer.bos_token_id
    return bos is not None and list(tokenizer("a")["input_ids"][:1]) == [bos]


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


def base_model(cfg: TargetConfig, forget_rows: Sequence[dict], retain_rows: Sequence[dict],
               vocab_rows: Sequence[dict], log: Callable[[str], None]):
    """(model, tokenizer) that a build of `cfg` trains: for a tiny base a new GPT-2 over a
    word-level tokenizer of the words of every row and of the prompt template, else `cfg.base`."""
    if cfg.is_tiny:
        tokenizer = build_tokenizer([*forget_rows, *retain_rows, *vocab_rows],
                                    extra_texts=[format_prompt("", resolve_template(cfg.template))])
        tokenizer.model_max_length = cfg.n_positions
        model = new_tiny_gpt2(tokenizer, n_layer=cfg.n_layer, n_embd=cfg.n_embd,
                              n_head=cfg.n_head, n_positions=cfg.n_positions)
    else:
        model, tokenizer = _load_real(cfg, log)
    return model, tokenizer
