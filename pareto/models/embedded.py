"""The embedded default target: a tiny GPT-2 that has memorised synthetic authors, built offline.

`build_embedded_target(cfg)` generates the authors (pareto.data.synthetic), builds a word-level
tokenizer on them, trains a small `GPT2LMHeadModel` on every QA pair (retain and forget) with the
answer-only loss until greedy next-token accuracy on the answer tokens reaches
`cfg.target_accuracy`, and stores

    <cache_dir>/embedded-<hash16>/
        config.json, model.safetensors, generation_config.json   (save_pretrained)
        tokenizer.json, tokenizer_config.json                     (save_pretrained)
        forget.jsonl, retain.jsonl                                (TOFU field names)
        manifest.json                                             (what made it, how it went)

The hash covers the config, GENERATOR_VERSION and TRAINER_VERSION, so a target is built once
per machine and then shared read-only. A build is written to a temporary directory beside the
final one and renamed into place, manifest last: an interrupted build leaves no target, and of
two concurrent builders the second to finish discards its copy and uses the first's.

    from pareto.models.embedded import build_embedded_target, load_target
    model, tokenizer, manifest = load_target(build_embedded_target())
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from pareto.data.qa import Encoded, encode_qa
from pareto.data.synthetic import GENERATOR_VERSION, generate_authors, split_by_author
from pareto.models._build import (  # noqa: F401  (re-exported: the public names of this module)
    SPECIAL_TOKENS, TEXT_FIELDS, answer_accuracy, build_tokenizer, isolated_torch_state, load_target,
    new_tiny_gpt2, quiet_progress_bars, train_on_answers,
)
from pareto.models.cache import (  # noqa: F401  (re-exported)
    build_atomically, default_cache_dir, publish, sha256_files, versions, write_jsonl,
)

#: Bump when training or the saved layout changes what a config builds; part of the cache hash.
TRAINER_VERSION = 1


@dataclass(frozen=True)
class EmbeddedConfig:
    # data (pareto.data.synthetic)
    n_authors: int = 20
    qa_per_author: int = 10
    data_seed: int = 0
    forget_fraction: float = 0.1
    # model (GPT-2, dropout 0)
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 64
    # training (AdamW on the answer-only CE of every QA pair, retain and forget)
    train_seed: int = 0
    max_epochs: int = 200
    lr: float = 3e-3
    batch_size: int = 16
    weight_decay: float = 0.0
    target_accuracy: float = 0.99  # greedy next-token accuracy on answer tokens = "memorised"

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_authors", "qa_per_author", "n_layer", "n_embd", "n_head",
                     "n_positions", "max_epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % max(self.n_head, 1):
            problems.append(f"n_embd ({self.n_embd}) must be divisible by n_head "
                            f"({self.n_head})")
        if not 0.0 < self.forget_fraction < 1.0:
            problems.append(f"forget_fraction must be in (0, 1), got {self.forget_fraction}")
        if not 0.0 < self.target_accuracy <= 1.0:
            problems.append(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if problems:
            raise ValueError("invalid EmbeddedConfig: " + "; ".join(problems))

    def content_hash(self) -> str:
        """sha256 of what determines the target: every field, GENERATOR_ and TRAINER_VERSION."""
        payload = {"config": dataclasses.asdict(self), "generator_version": GENERATOR_VERSION,
                   "trainer_version": TRAINER_VERSION}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


# ----------------------------------------------------------------------------------------------
# model and training (the shared pieces live in pareto.models._build)


def _new_model(cfg: EmbeddedConfig, tokenizer):
    return new_tiny_gpt2(tokenizer, n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head,
                         n_positions=cfg.n_positions)


def _train(model, examples: list[Encoded], cfg: EmbeddedConfig, pad_id: int,
           log: Callable[[str], None]) -> dict:
    """AdamW on the answer-only CE until answer accuracy >= target (checked after each epoch)."""
    result = train_on_answers(
        model, examples, pad_id=pad_id, optimizer="adamw", lr=cfg.lr,
        weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, seed=cfg.train_seed,
        epochs=cfg.max_epochs, target_accuracy=cfg.target_accuracy, log=log, tag="embedded",
        eval_batch_size=max(len(examples), 1))
    result.pop("history")
    return result


# ----------------------------------------------------------------------------------------------
# the cached target


def _build_into(out: Path, cfg: EmbeddedConfig, num_threads: int,
                log: Callable[[str], None]) -> dict:
    t0 = time.perf_counter()
    rows = generate_authors(cfg.n_authors, cfg.qa_per_author, cfg.data_seed)
    forget, retain = split_by_author(rows, cfg.forget_fraction)
    tokenizer = build_tokenizer(rows)
    tokenizer.model_max_length = cfg.n_positions

    examples = [encode_qa(tokenizer, r["question"], r["answer"], max_length=10**9) for r in rows]
    longest = max(len(e.input_ids) for e in examples)
    if longest > cfg.n_positions:
        raise ValueError(f"n_positions={cfg.n_positions} is shorter than the longest QA "
                         f"example ({longest} tokens)")
    if any(tokenizer.unk_token_id in e.input_ids for e in examples):
        raise AssertionError("the embedded tokenizer maps a word of the data to <unk>")

    with isolated_torch_state(num_threads):
        torch.manual_seed(cfg.train_seed)
        model = _new_model(cfg, tokenizer)
        n_params = sum(p.numel() for p in model.parameters())
        log(f"[embedded] training {n_params:,} parameters on {len(rows)} QA pairs "
            f"({cfg.n_authors} authors, vocab {len(tokenizer)}), target answer accuracy "
            f"{cfg.target_accuracy}")
        result = _train(model, examples, cfg, tokenizer.pad_token_id, log)
    if not result["reached_target"]:
        log(f"[embedded] warning: answer accuracy {result['answer_accuracy']:.4f} < target "
            f"{cfg.target_accuracy} after {cfg.max_epochs} epochs")

    with quiet_progress_bars():
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    write_jsonl(out / "forget.jsonl", forget)
    write_jsonl(out / "retain.jsonl", retain)
    manifest = {
        "kind": "embedded",
        "hash": cfg.content_hash(),
        "config": dataclasses.asdict(cfg),
        "generator_version": GENERATOR_VERSION,
        "trainer_version": TRAINER_VERSION,
        "data_hash": sha256_files([out / "forget.jsonl", out / "retain.jsonl"]),
        "n_rows": len(rows), "n_forget": len(forget), "n_retain": len(retain),
        "n_authors_forget": len({r["author"] for r in forget}),
        "vocab_size": len(tokenizer),
        "n_params": n_params,
        **result,
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "num_threads": num_threads,
        "versions": versions(),
    }
    # written last: a directory with a manifest is a complete target
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _publish(tmp: Path, final: Path, log: Callable[[str], None]) -> Path:
    """Rename the finished `tmp` to `final`; if another builder got there first, keep theirs."""
    return publish(tmp, final, log, "embedded")


def build_embedded_target(cfg: EmbeddedConfig = EmbeddedConfig(),
                          cache_dir: str | Path | None = None,
                          log: Callable[[str], None] = print, *,
                          num_threads: int = 1) -> Path:
    """Directory of the target built from `cfg`: `<cache_dir>/embedded-<hash16>`, built if absent.

    cache_dir defaults to $PARETO_CACHE or ~/.cache/pareto. Training runs with `num_threads`
    intra-op threads (the caller's setting and RNG state are restored); one thread is the
    fastest for the default model (per-op overhead dominates). The thread count is not part of
    the hash: it changes float summation order at most, and is recorded in the manifest.
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / f"embedded-{cfg.content_hash()[:16]}"
    path, manifest = build_atomically(final, lambda tmp: _build_into(tmp, cfg, num_threads, log),
                                      log, "embedded")
    if manifest is not None:
        log(f"[embedded] done in {manifest['wall_seconds']:.1f}s: {manifest['epochs']} epochs, "
            f"answer accuracy {manifest['answer_accuracy']:.4f}, loss "
            f"{manifest['final_train_loss']:.4f}")
    return path
