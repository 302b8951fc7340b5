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

A stand-in for pretraining knowledge (`pretrain`: evaluation splits of the data, TOFU's
real_authors and world_facts): learned first, until `target_accuracy` on them (or for `epochs`),
then kept in the training rows beside forget and retain (`pretrain_mix`, default) or not; the
Retrain reference learns it the same way. Model Utility scores these very splits, so it then
measures what survives of what the target was taught besides TOFU (docs/tofu_cpu.md). Hashed,
with the stand-in's rows, only when set.

Settings left as None resolve by base (`TargetConfig.resolved`); the manifest records the
resolved values. The cache key is the sha256 of (resolved settings, data hash, base
fingerprint, TRAINER_VERSION, and for a tiny base the hash of `vocab_rows` when there are any);
the template and BOS settings count only when they differ from the defaults (plain, BOS), so
targets built before they existed keep their keys. Where the work runs (`num_threads`, `device`,
`micro_batch_size`) is recorded but not hashed, and so is `data_name` (a label: the same rows
under another name are the same target). The build is atomic (see pareto.models._build).

This module holds the target's definition and cache key (`TargetConfig`, `data_hash`,
`vocab_hash`); the base model it starts from (hub name or local directory, its fingerprint,
its tokenizer) is in pareto.models.target_base, the build itself (`build_target`,
`target_path`, the check after training) in pareto.models.target_build.

    from pareto.data.tofu import load_tofu, tofu_author_subset
    from pareto.models._build import load_target
    from pareto.models.target import TargetConfig
    from pareto.models.target_build import build_target
    forget, retain = tofu_author_subset(load_tofu("full"), n_authors=40)
    path = build_target(forget, retain, TargetConfig(), data_name="tofu-last40-forget10")
    model, tokenizer, manifest = load_target(path)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

from pareto._registry import did_you_mean
from pareto.data.templates import TEMPLATES
from pareto.models._build import LR_SCHEDULES, OPTIMIZERS
from pareto.models.cache import jsonl_bytes

__all__ = ["TargetConfig", "TRAINER_VERSION", "data_hash", "vocab_hash", "pretrain_hash"]

#: Bump when training or the saved layout changes what a config builds; part of the cache hash.
TRAINER_VERSION = 1

TINY = "tiny"
DTYPES = ("float32", "bfloat16", "float16")
#: Where and how the work runs: recorded in the manifest, not part of the cache key.
EXECUTION_FIELDS = ("num_threads", "device", "micro_batch_size")
#: Prompt settings hashed only when they differ from these (targets built before they existed).
PROMPT_DEFAULTS = {"template": "plain", "add_bos": True}
#: The pretraining stand-in's settings: hashed only when `pretrain` names splits (old keys stay valid).
PRETRAIN_FIELDS = ("pretrain", "pretrain_mix")

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
    # a stand-in for pretraining knowledge: evaluation splits of the data (TOFU: real_authors,
    # world_facts) learned first (until target_accuracy on them, or `epochs`), then kept in the
    # training rows with the forget/retain rows when pretrain_mix (else forget/retain only).
    # The Retrain twin learns them the same way. Model Utility scores these very questions.
    pretrain: tuple[str, ...] | None = None
    pretrain_mix: bool = True
    # execution (not hashed)
    num_threads: int = 1  # CPU intra-op threads while building (restored afterwards)
    device: str | None = None  # None: "cuda" if available, else "cpu"
    micro_batch_size: int | None = None  # split each batch (same gradient, less memory)

    def __post_init__(self) -> None:
        if isinstance(self.pretrain, (list, tuple, str)):  # from YAML/JSON; a lone name is one split
            object.__setattr__(self, "pretrain", (self.pretrain,) if isinstance(self.pretrain, str)
                               else tuple(self.pretrain) or None)
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
        if self.pretrain is None:
            pass
        elif not isinstance(self.pretrain, tuple) or not all(isinstance(n, str) and n for n in self.pretrain):
            p.append(f"pretrain must be a list of evaluation split names (TOFU: real_authors, "
                     f"world_facts), got {self.pretrain!r}")
        elif len(set(self.pretrain)) < len(self.pretrain):
            p.append(f"pretrain names a split twice: {list(self.pretrain)}")
        elif set(self.pretrain) & {"forget", "retain"}:
            p.append("pretrain names evaluation splits beyond forget and retain (TOFU: real_authors, "
                     f"world_facts), got {list(self.pretrain)}")
        if not isinstance(self.pretrain_mix, bool):
            p.append(f"pretrain_mix must be true or false, got {self.pretrain_mix!r}")
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
        if not self.pretrain:  # no stand-in: hashed as before these settings existed
            for k in PRETRAIN_FIELDS:
                d.pop(k)
        else:
            d["pretrain"] = list(self.pretrain)
        return d

    def content_hash(self, data_hash: str, base_fingerprint: str | None = None,
                     vocab_hash: str | None = None, pretrain_hash: str | None = None) -> str:
        payload = {"config": self.hashed_fields(), "data_hash": data_hash,
                   "base_fingerprint": base_fingerprint, "trainer_version": TRAINER_VERSION}
        if self.pretrain:  # the stand-in's rows (for any base: a real one has no vocab hash)
            payload["pretrain_hash"] = pretrain_hash
        if vocab_hash is not None and self.is_tiny:  # only the tiny base's tokenizer depends on it
            payload["vocab_hash"] = vocab_hash
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def data_hash(forget_rows: Sequence[dict], retain_rows: Sequence[dict]) -> str:
    """sha256 of forget.jsonl followed by retain.jsonl, as `build_target` writes them."""
    return hashlib.sha256(jsonl_bytes(forget_rows) + jsonl_bytes(retain_rows)).hexdigest()


def vocab_hash(vocab_rows: Sequence[dict]) -> str | None:
    """sha256 of the rows whose words join a tiny tokenizer's vocabulary (None when none)."""
    return hashlib.sha256(jsonl_bytes(vocab_rows)).hexdigest() if vocab_rows else None


def pretrain_hash(pretrain_rows: dict[str, Sequence[dict]], names: Sequence[str]) -> str | None:
    """sha256 of the stand-in's rows, split by split in the order `names` gives (None when none)."""
    if not names:
        return None
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\n" + jsonl_bytes(pretrain_rows[name]))
    return h.hexdigest()
