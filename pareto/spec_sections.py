"""The typed sections of a sweep spec (`pareto.spec` parses YAML into them), each checking its own
values: `section.check(add)` reports through the spec's problem list, `add(key_path, message)`.

What depends on the data source (its keys, the target it goes with, the task's settings, which
metrics fit) is checked by the source (pareto.sources); the search space and scheduler by
pareto.search; several workers per trial by pareto.resources; LoRA's keys by pareto.memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

from pareto._registry import did_you_mean
from pareto.core.optim import OPTIMIZERS
from pareto.sources._base import QA_METRICS

Add = Callable[[tuple, str], None]


@dataclass(frozen=True)
class DataSpec:
    source: str = "embedded"  # a registered data source (pareto.sources): embedded | tofu | custom | muse_news |
    #                           cifar10 | cifar100 | image_folder; each declares which keys below it reads
    path: str | None = None  # tofu / muse_news: a local directory in the official layout, or a hub id; images:
    #                          an ImageFolder directory (train/<class>/*.jpg, test/<class>/*.jpg) or a .tar of one
    forget: str = "forget10"  # tofu: forget01 | forget05 | forget10
    authors: int | None = None  # tofu: only the last N authors of `full` (CPU-sized runs)
    forget_fraction: float = 0.1  # tofu with `authors`: the last 10 % of them are forgotten
    forget_file: str | None = None  # custom
    retain_file: str | None = None  # custom
    articles: int | None = None  # muse_news: only the first N forget and N retain articles (CPU-sized runs)
    context: int | None = None  # muse_news: tokens per training chunk (default: the target's max_length)
    template: str = "plain"  # prompt template by name: plain | phi | llama2-chat (pareto.data.templates)
    add_bos: bool | None = None  # BOS before every prompt / chunk; left out: what the field's reference code does
    #                              for the tokenizer (pareto.models.target_base.reference_bos); recorded with results
    forget_class: str | None = None  # images: the class forgotten (default dog for cifar10, bed for cifar100)
    forget_images: int = 500  # images: how many train images of forget_class form the forget set (paper: 500)
    per_class: int | None = None  # images: only the first N train (and test) images of each class (CPU-sized runs)

    def check(self, add: Add) -> None:
        """Values whatever the source (which keys a source reads, and their meaning: pareto.sources)."""
        from pareto.data.templates import TEMPLATES

        if self.template not in TEMPLATES:
            add(("data", "template"), f"unknown prompt template {self.template!r}.{did_you_mean(self.template, list(TEMPLATES))} "
                                      f"Available: {', '.join(TEMPLATES)}")
        for key in ("articles", "context"):
            v = getattr(self, key)
            if v is not None and v < 1:
                add(("data", key), f"{key} must be ≥ 1, got {v}")
        if not 0 < self.forget_fraction < 1:
            add(("data", "forget_fraction"), f"must be in (0, 1), got {self.forget_fraction}")


@dataclass(frozen=True)
class TargetSpec:
    source: str = "embedded"  # embedded (built with its data) | train (finetune `train.base` on the data)
    embedded: dict = field(default_factory=dict)  # EmbeddedConfig overrides
    train: dict = field(default_factory=dict)  # TargetConfig fields (base, lr, epochs, …)
    retain_model: bool = False  # also build the retain-only "Retrain" reference (forget_quality, privleak)


@dataclass(frozen=True)
class UnlearnSpec:
    steps: int = 30
    epochs: float | None = None  # instead of steps: passes over the forget set (steps = ceil(epochs·|F| / batch_size))
    batch_size: int = 8  # forget batch; the retain batch too unless retain_batch_size is set
    retain_batch_size: int | None = None
    optimizer: str = "adam"
    optimizer_args: dict = field(default_factory=dict)
    measure_after_every: int = 1  # re-measure both losses after the update every N steps (0: never)
    threads: int | None = None  # torch threads per trial (default: the trial's CPU share, resources.cpus_per_trial)
    device: str = "auto"  # auto (cuda when the trial has a GPU, else cpu) | cpu | cuda
    dtype: str = "float32"  # float32 | bfloat16 (parameters, gradients and both buffers)
    autocast: str | None = None  # bfloat16: forward passes under torch.autocast, fp32 master weights (dtype float32)
    grad_dtype: str = "param"  # param | float32: g_R and g_F (then d) in fp32 buffers with bf16 parameters
    grad_accum: int = 1  # micro-batches per forget and per retain batch, accumulated exactly
    gradient_checkpointing: bool = False  # recompute activations in the backward (transformers models)
    lora: dict | None = None  # LoRA adapters via peft: {r, alpha, dropout, target_modules}; the target stays frozen
    deterministic: bool = False  # GPU: deterministic kernels, no TF32 (docs/reliability.md); CPU is deterministic anyway
    batchnorm: str = "batch"  # image classifiers: batch (train-mode statistics) | frozen (the target's running ones)
    parallel: str | None = None  # ddp | fsdp: one trial on resources.workers_per_trial torch.distributed workers
    #                              (None: one process, as before); ddp copies the model, fsdp shards it

    def check(self, add: Add) -> None:
        """The values of the unlearning settings on their own (the task checks which it allows; LoRA's
        keys: pareto.memory; parallel: pareto.resources)."""
        if self.steps < 0:
            add(("unlearn", "steps"), f"steps must be ≥ 0, got {self.steps}")
        if self.epochs is not None and not self.epochs > 0:
            add(("unlearn", "epochs"), f"epochs must be > 0, got {self.epochs}")
        for key in ("batch_size", "retain_batch_size", "threads"):
            v = getattr(self, key)
            if v is not None and v < 1:
                add(("unlearn", key), f"{key} must be ≥ 1, got {v}")
        if self.measure_after_every < 0:
            add(("unlearn", "measure_after_every"), "must be ≥ 0 (0 turns the after-step measurement off)")
        if self.optimizer not in OPTIMIZERS:
            add(("unlearn", "optimizer"), f"unknown optimizer {self.optimizer!r}.{did_you_mean(self.optimizer, OPTIMIZERS.names())} "
                                          f"Available: {', '.join(OPTIMIZERS.names())}")
        for key, allowed in (("device", ("auto", "cpu", "cuda")), ("batchnorm", ("batch", "frozen")),
                             ("dtype", ("float32", "bfloat16")), ("grad_dtype", ("param", "float32"))):
            if getattr(self, key) not in allowed:
                add(("unlearn", key), f"{key} must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {getattr(self, key)!r}")
        if self.autocast not in (None, "bfloat16"):
            add(("unlearn", "autocast"), f"autocast must be bfloat16 or null, got {self.autocast!r}")
        elif self.autocast and self.dtype != "float32":
            add(("unlearn", "autocast"), "autocast keeps fp32 master weights: it needs unlearn.dtype float32 "
                                         "(dtype bfloat16 is pure bf16 already)")
        if not isinstance(self.grad_accum, int) or self.grad_accum < 1:
            add(("unlearn", "grad_accum"), f"grad_accum must be an integer ≥ 1, got {self.grad_accum!r}")
        elif self.batch_size >= 1 and self.grad_accum > min(self.batch_size, self.retain_batch_size or self.batch_size):
            add(("unlearn", "grad_accum"), f"grad_accum {self.grad_accum} is more micro-batches than a batch has "
                                           "examples; lower it or raise unlearn.batch_size")
        if self.lora is not None:
            from pareto.memory import check_lora

            check_lora(self.lora, add)


DEFAULT_METRICS = QA_METRICS  # the question/answer sources' (the embedded default's)


@dataclass(frozen=True)
class EvalSpec:
    metrics: tuple = DEFAULT_METRICS  # registered metric names (pareto.metrics.METRICS); left out: the data
    #                                   source's defaults (pareto.sources; QA data: these)
    max_new_tokens: int = 24
    retain_items: int = 40  # retain QA pairs scored (the forget set is scored whole)
    batch_size: int = 32
    every: int = 0  # also evaluate every N steps (each evaluation is reported to Ray Tune); 0: at the end only
    keep_checkpoints: bool = False  # keep the weights at every evaluation (LoRA: the adapters), in the results'
    #                                 checkpoints/<trial>/step<K>/, for `pareto export` and `pareto mix`
    privleak_tokens: int | None = None  # privleak: score each text's first N tokens; None: whole texts, as MUSE's
    #                                     code, up to the positions the model has learnt (its context; a tiny target
    #                                     trained from scratch: its window); a text cut there says so
    robustness: dict | None = None  # {relearn_steps (K or [K, …]), relearn_lr, quantize: int8 | int4, paraphrase}:
    #                                 the forget metrics again after each attack on a copy of the final model, once
    #                                 at the end (pareto.metrics.robustness, docs/robustness.md); None: nothing extra

    def check(self, add: Add) -> None:
        """Metric names (which data they fit: pareto.sources) and the evaluation's sizes."""
        from pareto.metrics import METRICS

        for i, name in enumerate(self.metrics):
            if name not in METRICS:
                add(("eval", "metrics", i), f"unknown metric {name!r}.{did_you_mean(name, METRICS.names())} "
                                            f"Available: {', '.join(METRICS.names())}")
        if self.max_new_tokens < 1 or self.retain_items < 1 or self.batch_size < 1:
            add(("eval",), "max_new_tokens, retain_items and batch_size must be ≥ 1")
        if self.privleak_tokens is not None and (not isinstance(self.privleak_tokens, int) or self.privleak_tokens < 2):
            add(("eval", "privleak_tokens"), f"must be an integer ≥ 2 or null (whole texts), got {self.privleak_tokens!r}")
        if self.every < 0:
            add(("eval", "every"), f"must be ≥ 0 (0: evaluate at the end only), got {self.every}")
        if not isinstance(self.keep_checkpoints, bool):
            add(("eval", "keep_checkpoints"), f"must be true or false, got {self.keep_checkpoints!r}")
        from pareto.metrics.robustness import check_robustness

        check_robustness(self.robustness, add, self.metrics)


@dataclass(frozen=True)
class SearchSpec:
    algorithm: str = "grid"  # grid | random | optuna (pareto.search)
    baseline: bool = True  # add a No-unlearn trial (the target model, 0 steps)
    space: dict = field(default_factory=dict)  # axis → list of options or a distribution
    num_samples: int = 10  # random / optuna: how many trials (besides the baseline)
    objectives: tuple = ()  # optuna: metrics to optimise, directions from the registry (2+: multi-objective)
    sampler: str = "tpe"  # optuna: gp | tpe | nsga2
    seed: int = 0  # random / optuna: the sampler's seed (the same seed draws the same points)


@dataclass(frozen=True)
class SchedulerSpec:
    name: str = "none"  # none | asha (stops poor trials early at evaluation points; needs eval.every)
    metric: str | None = None  # asha: the metric it compares trials on (its direction from the registry)
    grace_period: int = 1  # asha: evaluations every trial gets before it can be stopped
    reduction_factor: float = 3.0  # asha: keep the best 1/reduction_factor at each rung


@dataclass(frozen=True)
class ResourcesSpec:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions share a GPU between trials (e.g. 0.25: four per GPU)
    max_concurrent: int | None = None
    max_failures: int = 1  # retries of a trial whose worker died (from the start); -1: unlimited
    workers_per_trial: int | None = None  # torch.distributed workers of one trial (with unlearn.parallel); each
    #                                       gets cpus_per_trial/N CPUs and, on GPUs, one GPU (gpus_per_trial = N)

    def check(self, add: Add) -> None:
        """The numbers on their own (several workers per trial: pareto.resources.check_parallel)."""
        if self.max_failures < -1:
            add(("resources", "max_failures"), "must be ≥ 0, or -1 for unlimited retries")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            add(("resources", "max_concurrent"), "must be ≥ 1 (or left out: as many as fit)")
        if self.cpus_per_trial <= 0:
            add(("resources", "cpus_per_trial"), "must be > 0")
        if self.gpus_per_trial < 0:
            add(("resources", "gpus_per_trial"), "must be ≥ 0")


@dataclass(frozen=True)
class StorageSpec:
    root: str = "results"  # a local directory or a URI (s3://bucket/path, gs://…, file:///…)
    checkpoints: str = "none"  # none | last: keep each trial's state at its latest evaluation, so a retry continues there

    def check(self, add: Add) -> None:
        if self.checkpoints not in ("none", "last"):
            add(("storage", "checkpoints"), f"checkpoints must be none or last, got {self.checkpoints!r}")


@dataclass(frozen=True)
class SweepSpec:
    name: str
    data: DataSpec = DataSpec()
    target: TargetSpec = TargetSpec()
    unlearn: UnlearnSpec = UnlearnSpec()
    eval: EvalSpec = EvalSpec()
    search: SearchSpec = SearchSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    resources: ResourcesSpec = ResourcesSpec()
    storage: StorageSpec = StorageSpec()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
