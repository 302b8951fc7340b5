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
import os
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch

from pareto.data.qa import IGNORE, Encoded, collate, encode_qa, format_prompt
from pareto.data.synthetic import GENERATOR_VERSION, generate_authors, split_by_author
from pareto.lm import answer_ce

#: Bump when training or the saved layout changes what a config builds; part of the cache hash.
TRAINER_VERSION = 1

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0..3, in this order
TEXT_FIELDS = ("question", "answer", "paraphrased_answer", "paraphrased_question")


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
# tokenizer


def _pre_tokenizer():
    from tokenizers import Regex, pre_tokenizers

    # words on whitespace, then the possessive 's and every other punctuation character on its
    # own: "Jardine's father?" -> Jardine | 's | father | ?
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                    pre_tokenizers.Split(Regex(r"'s\b|[^\w\s]"), "isolated")])


def _row_texts(rows: Iterable[dict]) -> Iterator[str]:
    for r in rows:
        for f in TEXT_FIELDS:
            if f in r:
                yield r[f]
        yield from r.get("perturbed_answer", [])


def build_tokenizer(rows: Sequence[dict], extra_texts: Iterable[str] = ()):
    """Word-level `PreTrainedTokenizerFast` whose vocabulary is every word of `rows` (questions,
    answers, paraphrases, perturbed answers), of `extra_texts` and of the QA prompt template.

    Ids: <pad>=0, <unk>=1, <s>=2, </s>=3, then the words sorted. Decoding rejoins tokens with
    single spaces and drops the space before . , ? ! and 's (the WordPiece decoder's clean-up),
    which reproduces the synthetic data exactly; other text may come back spaced differently
    ("Question : ...", "don ' t").
    """
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    pre = _pre_tokenizer()
    words: set[str] = set()
    texts = [format_prompt("")]  # "Question", ":", "Answer"
    for text in [*texts, *_row_texts(rows), *extra_texts]:
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS,
                                             *sorted(words - set(SPECIAL_TOKENS))])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", clean_up_tokenization_spaces=False,
    )


# ----------------------------------------------------------------------------------------------
# model and training


def _new_model(cfg: EmbeddedConfig, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=cfg.n_positions, n_embd=cfg.n_embd,
        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, summary_first_dropout=0.0, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


@torch.no_grad()
def answer_accuracy(model, batch: dict) -> tuple[float, float]:
    """(greedy next-token accuracy, mean CE) over the answer tokens of `batch` (teacher forced)."""
    was_training = model.training
    model.eval()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    model.train(was_training)
    logits, targets = logits[:, :-1].float(), batch["labels"][:, 1:]
    mask = targets != IGNORE
    correct = (logits.argmax(-1) == targets) & mask
    ce = torch.nn.functional.cross_entropy(logits[mask], targets[mask])
    return correct.sum().item() / max(mask.sum().item(), 1), ce.item()


def _train(model, examples: list[Encoded], cfg: EmbeddedConfig, pad_id: int,
           log: Callable[[str], None]) -> dict:
    """AdamW on the answer-only CE until answer accuracy >= target (checked after each epoch)."""
    full = collate(examples, pad_id)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    shuffle = torch.Generator().manual_seed(cfg.train_seed)
    n = len(examples)
    model.train()
    acc = ce = float("nan")
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        order = torch.randperm(n, generator=shuffle).tolist()
        for start in range(0, n, cfg.batch_size):
            batch = collate([examples[i] for i in order[start:start + cfg.batch_size]], pad_id)
            loss = answer_ce(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        acc, ce = answer_accuracy(model, full)
        done = acc >= cfg.target_accuracy
        if done or epoch == 1 or epoch % 10 == 0 or epoch == cfg.max_epochs:
            log(f"[embedded] epoch {epoch:4d}  answer loss {ce:.4f}  answer accuracy {acc:.4f}")
        if done:
            break
    model.eval()
    return {"epochs": epoch, "final_train_loss": ce, "answer_accuracy": acc,
            "reached_target": acc >= cfg.target_accuracy}


@contextmanager
def _isolated_torch_state(num_threads: int):
    """Set intra-op threads and fork the CPU RNG; restore both afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def _quiet_progress_bars():
    """No transformers progress bars (save/load of a tiny model); the setting is restored."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


# ----------------------------------------------------------------------------------------------
# the cached target


def default_cache_dir() -> Path:
    env = os.environ.get("PARETO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pareto"


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _sha256_files(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def _build_into(out: Path, cfg: EmbeddedConfig, num_threads: int,
                log: Callable[[str], None]) -> dict:
    import transformers

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

    with _isolated_torch_state(num_threads):
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

    with _quiet_progress_bars():
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    _write_jsonl(out / "forget.jsonl", forget)
    _write_jsonl(out / "retain.jsonl", retain)
    manifest = {
        "kind": "embedded",
        "hash": cfg.content_hash(),
        "config": dataclasses.asdict(cfg),
        "generator_version": GENERATOR_VERSION,
        "trainer_version": TRAINER_VERSION,
        "data_hash": _sha256_files([out / "forget.jsonl", out / "retain.jsonl"]),
        "n_rows": len(rows), "n_forget": len(forget), "n_retain": len(retain),
        "n_authors_forget": len({r["author"] for r in forget}),
        "vocab_size": len(tokenizer),
        "n_params": n_params,
        **result,
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "num_threads": num_threads,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__},
    }
    # written last: a directory with a manifest is a complete target
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _publish(tmp: Path, final: Path, log: Callable[[str], None]) -> Path:
    """Rename the finished `tmp` to `final`; if another builder got there first, keep theirs."""
    for _ in range(3):
        try:
            os.rename(tmp, final)  # atomic; fails if `final` exists and is not empty
            return final
        except OSError:
            if (final / "manifest.json").is_file():
                shutil.rmtree(tmp, ignore_errors=True)
                log(f"[embedded] {final} was built concurrently; using that one")
                return final
            if not final.exists():
                raise
            # an incomplete directory (not made by a builder, which renames complete targets
            # only): move it aside and try again
            broken = final.with_name(f".{final.name}.broken-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(final, broken)
            except FileNotFoundError:
                continue
            shutil.rmtree(broken, ignore_errors=True)
            log(f"[embedded] replaced an incomplete directory at {final}")
    raise RuntimeError(f"could not move the built target {tmp} to {final}")


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
    if (final / "manifest.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        log(f"[embedded] building {final}")
        manifest = _build_into(tmp, cfg, num_threads, log)
        path = _publish(tmp, final, log)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"[embedded] done in {manifest['wall_seconds']:.1f}s: {manifest['epochs']} epochs, "
        f"answer accuracy {manifest['answer_accuracy']:.4f}, loss "
        f"{manifest['final_train_loss']:.4f}")
    return path


def load_target(path: str | Path):
    """(model in eval mode, tokenizer, manifest) of a target directory."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{path} is not a complete target (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    with _quiet_progress_bars():
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    model.eval()
    return model, tokenizer, manifest
