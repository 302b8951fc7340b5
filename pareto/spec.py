"""Sweep specs: YAML → typed, frozen config objects, with every problem reported at once.

A spec is one experiment (see sweeps/quickstart.yaml). Problems are collected, not raised one
by one: each names the key path, the line in the file, what is wrong and how to fix it.
Components (combiner, forget objective, lr rule, optimizer) are chosen by registered name
only, and their parameters are checked by building each grid point once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from pareto._registry import did_you_mean
from pareto.core.optim import OPTIMIZERS
from pareto.search import ALGORITHMS, check_pairs, expand_grid, has_dist, parse_space, sample_random, trial_label

__all__ = ["SpecError", "SweepSpec", "load_spec", "parse_spec", "precision_warnings", "search_space", "trial_label",
           "expand_grid"]


class SpecError(Exception):
    """A spec with problems; `problems` lists every one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


DATA_SOURCES = ("embedded", "tofu", "custom", "muse_news", "cifar10", "cifar100", "image_folder")
#: Image-classification sources (pareto.vision, paper App. C): the classifier task, not the LM one.
VISION_SOURCES = ("cifar10", "cifar100", "image_folder")


@dataclass(frozen=True)
class DataSpec:
    source: str = "embedded"  # embedded | tofu | custom | muse_news (pareto.data.sources) | cifar10 | cifar100 |
    #                           image_folder (pareto.vision.data)
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
    add_bos: bool = True  # prepend the tokenizer's BOS to every prompt / chunk (recorded with the results)
    forget_class: str | None = None  # images: the class forgotten (default dog for cifar10, bed for cifar100)
    forget_images: int = 500  # images: how many train images of forget_class form the forget set (paper: 500)
    per_class: int | None = None  # images: only the first N train (and test) images of each class (CPU-sized runs)


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


DEFAULT_METRICS = ("loss_f_eval", "loss_r_eval", "rouge_f", "utility_r")


@dataclass(frozen=True)
class EvalSpec:
    metrics: tuple = DEFAULT_METRICS  # registered metric names (pareto.metrics.METRICS)
    max_new_tokens: int = 24
    retain_items: int = 40  # retain QA pairs scored (the forget set is scored whole)
    batch_size: int = 32
    every: int = 0  # also evaluate every N steps (each evaluation is reported to Ray Tune); 0: at the end only


@dataclass(frozen=True)
class SearchSpec:
    algorithm: str = "grid"  # grid | random | optuna (pareto.search)
    baseline: bool = True  # add a No-unlearn trial (the target model, 0 steps)
    space: dict = field(default_factory=dict)  # axis → list of options or a distribution
    num_samples: int = 10  # random / optuna: how many trials (besides the baseline)
    objectives: tuple = ()  # optuna: metrics to optimise, directions from the registry (2+: multi-objective)
    sampler: str = "tpe"  # optuna: tpe | nsga2
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


@dataclass(frozen=True)
class StorageSpec:
    root: str = "results"  # a local directory or a URI (s3://bucket/path, gs://…, file:///…)
    checkpoints: str = "none"  # none | last: keep each trial's state at its latest evaluation, so a retry continues there


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


SECTIONS = {f.name: f.type for f in dataclasses.fields(SweepSpec)}
SECTION_CLASSES = {"data": DataSpec, "target": TargetSpec, "unlearn": UnlearnSpec, "eval": EvalSpec,
                   "search": SearchSpec, "scheduler": SchedulerSpec, "resources": ResourcesSpec,
                   "storage": StorageSpec}


# ---------------------------------------------------------------- YAML with line numbers
#: YAML 1.1 (PyYAML) reads a float only with a dot and a signed exponent: ``1e-4``, ``-1e-4`` and
#: ``3e+2`` stay strings there, so ``lr: [1e-4]`` would fail as "expected a number". Specs and
#: ``--set`` values are read with YAML 1.2's rule instead: the dot and the exponent's sign are optional.
_FLOAT = re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only: a tag is refused) with YAML 1.2's floats."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, _FLOAT if tag == "tag:yaml.org,2002:float" else rx) for tag, rx in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _load(text: str) -> Any:
    """One YAML document (a spec file, or one `--set` value) as plain data."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)


def _load_with_lines(text: str, where: str = "line") -> tuple[Any, dict[tuple, str]]:
    """The YAML document and, for every key path, where it is ("line 12", or "base.yaml line 3")."""
    node = yaml.compose(text, Loader=_Loader)
    lines: dict[tuple, str] = {}

    def walk(n, path):
        if n is None:
            return
        lines[path] = f"{where} {n.start_mark.line + 1}"
        if isinstance(n, yaml.MappingNode):
            first: dict = {}
            for k, v in n.value:
                if k.value in first:  # PyYAML keeps the last silently; a spec must not lose a section that way
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {k.value!r} is given twice (first at {where} {first[k.value]}): the second "
                        f"would silently replace the first. Keep one, or merge the two", k.start_mark)
                first[k.value] = k.start_mark.line + 1
                lines[path + (k.value,)] = f"{where} {k.start_mark.line + 1}"
                walk(v, path + (k.value,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    walk(node, ())
    return _load(text), lines


def _yaml_error(exc: yaml.YAMLError, source: str) -> SpecError:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.constructor.ConstructorError) and "for the tag" in problem:
        return SpecError(source, [f"YAML tag not allowed{where}: {problem}. A spec is plain data (mappings, lists, "
                                  f"strings, numbers): remove the tag"])
    if isinstance(exc, yaml.constructor.ConstructorError):
        return SpecError(source, [f"not valid YAML{where}: {problem}."])
    return SpecError(source, [f"not valid YAML{where}: {problem}. Fix the syntax there."])


def _merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _include(raw: dict, lines: dict, base_dir: Path | None, source: str) -> tuple[dict, dict]:
    """One level of `include: base.yaml` (relative to the spec's folder): the spec over its base."""
    inc = raw.pop("include")
    if not isinstance(inc, str):
        raise SpecError(source, [f"include ({lines.get(('include',), 'top level')}): expected one file name, got {inc!r}"])
    path = Path(inc) if Path(inc).is_absolute() or base_dir is None else base_dir / inc
    if not path.is_file():
        raise SpecError(source, [f"include ({lines.get(('include',))}): no such file {path}. Give a path relative to "
                                 f"the spec's folder, e.g. include: base.yaml"])
    try:
        base, base_lines = _load_with_lines(path.read_text(), f"{path.name} line")
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, str(path)) from None
    if not isinstance(base, dict):
        raise SpecError(source, [f"include: {path} must be a YAML mapping of spec sections"])
    if "include" in base:
        raise SpecError(source, [f"include: {path} includes another file; only one level of include is allowed. "
                                 f"Merge the two bases into one file."])
    return _merge(base, raw), {**base_lines, **lines}


class _Problems:
    def __init__(self, lines: dict[tuple, str]) -> None:
        self.lines, self.items = lines, []

    def add(self, path: tuple, message: str) -> None:
        line = next((self.lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in self.lines), None)
        where = ".".join(str(p) for p in path) or "(top level)"
        self.items.append(f"{where} ({line}): {message}" if line else f"{where}: {message}")


def _check_type(value, typ, path, problems) -> Any:
    """Check one scalar/dict field against its annotation string; return the coerced value."""
    t = str(typ)
    optional = "None" in t
    if value is None and optional:
        return None
    if "bool" in t:
        if isinstance(value, bool):
            return value
        problems.add(path, f"expected true or false, got {value!r}")
    elif "int" in t and "float" not in t:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.add(path, f"expected an integer, got {value!r}")
    elif "float" in t:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        problems.add(path, f"expected a number, got {value!r}")
    elif "tuple" in t:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        problems.add(path, f"expected a list of names, got {value!r}")
    elif "dict" in t:
        if isinstance(value, dict):
            return value
        problems.add(path, f"expected a mapping, got {value!r}")
    elif "str" in t:
        if isinstance(value, str):
            return value
        problems.add(path, f"expected a string, got {value!r}")
    return None


def _section(cls, raw, path, problems):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        problems.add(path, f"expected a mapping of {', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls()
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            problems.add(path + (key,), f"unknown key {key!r}.{did_you_mean(str(key), names)} Valid keys: {', '.join(names)}")
            continue
        f = next(f for f in dataclasses.fields(cls) if f.name == key)
        checked = _check_type(value, f.type, path + (key,), problems)
        if checked is not None or value is None:
            kwargs[key] = checked
    return cls(**kwargs)


# ---------------------------------------------------------------- entry points
def apply_overrides(raw: dict, overrides: Sequence[str], source: str) -> dict:
    """`--set dotted.key=value` (value parsed as YAML) on the raw spec mapping."""
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {item!r}: expected dotted.key=value, e.g. --set unlearn.steps=50")
            continue
        node = raw
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"--set {item!r}: {part!r} is not a section")
                break
        else:
            try:
                node[leaf] = _load(value)
            except yaml.YAMLError:
                problems.append(f"--set {item!r}: the value is not valid YAML")
    if problems:
        raise SpecError(source, problems)
    return raw


def parse_spec(text: str, source: str = "<spec>", overrides: Sequence[str] = (),
               base_dir: Path | None = None) -> tuple[SweepSpec, list[dict]]:
    """Parse and validate a spec; returns it and the points known before it runs (every point of a
    grid or a random search; the baseline only for optuna, which asks as it goes), or raises
    SpecError listing every problem."""
    try:
        raw, lines = _load_with_lines(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    if not isinstance(raw, dict):
        raise SpecError(source, ["a spec must be a YAML mapping with at least `name:`"])
    if "include" in raw:
        raw, lines = _include(raw, lines, base_dir, source)
    problems = _Problems(lines)
    raw = apply_overrides(raw, overrides, source)
    for key in raw:
        if key not in SECTIONS:
            problems.add((key,), f"unknown section {key!r}.{did_you_mean(str(key), list(SECTIONS))} Valid sections: {', '.join(SECTIONS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add(("name",), "every spec needs `name:` (a short identifier, used in the results path)")
        name = "unnamed"
    elif not all(ch.isalnum() or ch in "-_." for ch in name) or name.startswith("."):
        problems.add(("name",), f"name {name!r} may only hold letters, digits, '-', '_' and '.', so it cannot escape the results root")
    sections = {k: _section(cls, raw.get(k), (k,), problems) for k, cls in SECTION_CLASSES.items()}
    spec = SweepSpec(name=name, **sections)
    _check_values(spec, problems)
    space = parse_space(spec.search.space or {}, ("search", "space"), problems.add)
    points = _points(spec, space, problems) if not problems.items else []
    if problems.items:
        raise SpecError(source, problems.items)
    if spec.search.baseline:
        points = [{"baseline": True, "seed": 0}] + points
    return spec, points


def search_space(spec: SweepSpec) -> dict:
    """The parsed search space of a validated spec (for optuna's define-by-run)."""
    problems = _Problems({})
    space = parse_space(spec.search.space or {}, ("search", "space"), problems.add)
    if problems.items:
        raise SpecError(spec.name, problems.items)
    return space


def _points(spec: SweepSpec, space: dict, problems: _Problems) -> list[dict]:
    s = spec.search
    check_pairs(space, problems.add, ("search", "space"))
    if s.algorithm == "grid":
        if has_dist(space):
            problems.add(("search", "space"), "a grid needs lists of values; distributions (uniform, loguniform, "
                                              "choice) need search.algorithm: random or optuna")
            return []
        return expand_grid(space)
    if s.algorithm == "random":
        return sample_random(space, s.num_samples, s.seed)
    return []  # optuna suggests its points while the sweep runs


def _check_values(spec: SweepSpec, problems: _Problems) -> None:
    u = spec.unlearn
    if u.steps < 0:
        problems.add(("unlearn", "steps"), f"steps must be ≥ 0, got {u.steps}")
    if u.epochs is not None and not u.epochs > 0:
        problems.add(("unlearn", "epochs"), f"epochs must be > 0, got {u.epochs}")
    for key in ("batch_size", "retain_batch_size", "threads"):
        v = getattr(u, key)
        if v is not None and v < 1:
            problems.add(("unlearn", key), f"{key} must be ≥ 1, got {v}")
    if u.measure_after_every < 0:
        problems.add(("unlearn", "measure_after_every"), "must be ≥ 0 (0 turns the after-step measurement off)")
    if u.optimizer not in OPTIMIZERS:
        problems.add(("unlearn", "optimizer"), f"unknown optimizer {u.optimizer!r}.{did_you_mean(u.optimizer, OPTIMIZERS.names())} Available: {', '.join(OPTIMIZERS.names())}")
    if u.device not in ("auto", "cpu", "cuda"):
        problems.add(("unlearn", "device"), f"device must be auto, cpu or cuda, got {u.device!r}")
    if u.batchnorm not in ("batch", "frozen"):
        problems.add(("unlearn", "batchnorm"), f"batchnorm must be batch or frozen, got {u.batchnorm!r}")
    elif u.batchnorm != "batch" and spec.data.source not in VISION_SOURCES:
        problems.add(("unlearn", "batchnorm"), "unlearn.batchnorm applies to image classifiers only (data.source "
                                               "cifar10, cifar100, image_folder)")
    if u.dtype not in ("float32", "bfloat16"):
        problems.add(("unlearn", "dtype"), f"dtype must be float32 or bfloat16, got {u.dtype!r}")
    if u.autocast not in (None, "bfloat16"):
        problems.add(("unlearn", "autocast"), f"autocast must be bfloat16 or null, got {u.autocast!r}")
    elif u.autocast and u.dtype != "float32":
        problems.add(("unlearn", "autocast"), "autocast keeps fp32 master weights: it needs unlearn.dtype float32 "
                                              "(dtype bfloat16 is pure bf16 already)")
    if u.grad_dtype not in ("param", "float32"):
        problems.add(("unlearn", "grad_dtype"), f"grad_dtype must be param or float32, got {u.grad_dtype!r}")
    if not isinstance(u.grad_accum, int) or u.grad_accum < 1:
        problems.add(("unlearn", "grad_accum"), f"grad_accum must be an integer ≥ 1, got {u.grad_accum!r}")
    elif u.batch_size >= 1 and u.grad_accum > min(u.batch_size, u.retain_batch_size or u.batch_size):
        problems.add(("unlearn", "grad_accum"), f"grad_accum {u.grad_accum} is more micro-batches than a batch has "
                                                "examples; lower it or raise unlearn.batch_size")
    if u.lora is not None:
        from pareto.memory import LORA_KEYS

        if not isinstance(u.lora, dict):
            problems.add(("unlearn", "lora"), f"lora must be a mapping such as {{r: 16, alpha: 32}}, got {u.lora!r}")
        else:
            for k in u.lora:
                if k not in LORA_KEYS:
                    problems.add(("unlearn", "lora", k), f"unknown LoRA setting {k!r}.{did_you_mean(str(k), list(LORA_KEYS))} "
                                                         f"Available: {', '.join(LORA_KEYS)}")
            if not (isinstance(u.lora.get("r", 16), int) and u.lora.get("r", 16) >= 1):
                problems.add(("unlearn", "lora", "r"), f"r must be an integer ≥ 1, got {u.lora.get('r')!r}")
            if spec.data.source in VISION_SOURCES:
                problems.add(("unlearn", "lora"), "LoRA is for transformers language models; the image classifiers "
                                                  "train every parameter (remove unlearn.lora)")
    d, t = spec.data, spec.target
    if d.source not in DATA_SOURCES:
        problems.add(("data", "source"), f"unknown data source {d.source!r}.{did_you_mean(d.source, list(DATA_SOURCES))} "
                                         f"Available: {', '.join(DATA_SOURCES)}")
    if t.source not in ("embedded", "train"):
        problems.add(("target", "source"), f"target source must be 'embedded' or 'train', got {t.source!r}")
    elif (t.source == "embedded") != (d.source == "embedded"):
        problems.add(("target", "source"), "the embedded target goes with the embedded data: use data.source: embedded "
                                           "with target.source: embedded, or target.source: train for other data")
    if d.source == "custom":
        for key in ("forget_file", "retain_file"):
            value = getattr(d, key)
            if not value:
                problems.add(("data", key), f"data.source custom needs data.{key} (a JSON, JSONL or Parquet file)")
            elif not Path(value).is_file():
                problems.add(("data", key), f"no such file: {value}")
    if d.source == "tofu":
        if d.forget not in ("forget01", "forget05", "forget10"):
            problems.add(("data", "forget"), f"TOFU forget split must be forget01, forget05 or forget10, got {d.forget!r}")
        if d.authors is not None and d.authors < 2:
            problems.add(("data", "authors"), f"authors must be ≥ 2, got {d.authors}")
        if d.path and ("/" not in d.path or d.path.startswith((".", "/"))) and not Path(d.path).is_dir():
            problems.add(("data", "path"), f"no such directory: {d.path} (give a local TOFU directory or a hub id like locuslab/TOFU)")
    _check_data_pairs(spec, problems)
    _check_vision_data(spec, problems)
    from pareto.data.templates import TEMPLATES

    if d.template not in TEMPLATES:
        problems.add(("data", "template"), f"unknown prompt template {d.template!r}.{did_you_mean(d.template, list(TEMPLATES))} "
                                           f"Available: {', '.join(TEMPLATES)}")
    for key in ("articles", "context"):
        v = getattr(d, key)
        if v is not None and v < 1:
            problems.add(("data", key), f"{key} must be ≥ 1, got {v}")
    if not 0 < d.forget_fraction < 1:
        problems.add(("data", "forget_fraction"), f"must be in (0, 1), got {d.forget_fraction}")
    if t.source == "train" and d.source in VISION_SOURCES:
        _check_vision_target(t.train, problems)
    elif t.source == "train":
        from pareto.models.target import TargetConfig

        names = [f.name for f in dataclasses.fields(TargetConfig)]
        for key in t.train:
            if key not in names:
                problems.add(("target", "train", key), f"unknown target setting {key!r}.{did_you_mean(key, names)} "
                                                       f"Valid: {', '.join(names)}")
    from pareto.metrics import METRICS

    _check_search(spec, problems, METRICS)

    for i, name in enumerate(spec.eval.metrics):
        if name not in METRICS:
            problems.add(("eval", "metrics", i), f"unknown metric {name!r}.{did_you_mean(name, METRICS.names())} "
                                                 f"Available: {', '.join(METRICS.names())}")
    if spec.eval.max_new_tokens < 1 or spec.eval.retain_items < 1 or spec.eval.batch_size < 1:
        problems.add(("eval",), "max_new_tokens, retain_items and batch_size must be ≥ 1")
    if spec.eval.every < 0:
        problems.add(("eval", "every"), f"must be ≥ 0 (0: evaluate at the end only), got {spec.eval.every}")
    if spec.storage.checkpoints not in ("none", "last"):
        problems.add(("storage", "checkpoints"), f"checkpoints must be none or last, got {spec.storage.checkpoints!r}")
    if spec.resources.max_failures < -1:
        problems.add(("resources", "max_failures"), "must be ≥ 0, or -1 for unlimited retries")
    if spec.resources.max_concurrent is not None and spec.resources.max_concurrent < 1:
        problems.add(("resources", "max_concurrent"), "must be ≥ 1 (or left out: as many as fit)")
    if spec.resources.cpus_per_trial <= 0:
        problems.add(("resources", "cpus_per_trial"), "must be > 0")
    if spec.resources.gpus_per_trial < 0:
        problems.add(("resources", "gpus_per_trial"), "must be ≥ 0")
    _check_parallel(spec, problems)


PARALLEL_MODES = ("ddp", "fsdp")


def _check_parallel(spec: SweepSpec, problems: _Problems) -> None:
    """Multi-worker trials: unlearn.parallel (ddp | fsdp) with resources.workers_per_trial workers,
    each with one GPU (NCCL) or none (gloo), and a batch that splits evenly over the workers."""
    u, r = spec.unlearn, spec.resources
    n = r.workers_per_trial
    if u.parallel is not None and u.parallel not in PARALLEL_MODES:
        hint = did_you_mean(u.parallel, list(PARALLEL_MODES))
        problems.add(("unlearn", "parallel"), f"unknown parallel mode {u.parallel!r}.{hint} "
                                              "Available: ddp (each worker holds the whole model), fsdp (the model "
                                              "sharded over the workers); leave it out for one process per trial")
    if n is None:
        given = any(p.startswith("resources.workers_per_trial") for p in problems.items)  # not an integer
        if u.parallel is not None and not given:
            problems.add(("unlearn", "parallel"), f"unlearn.parallel: {u.parallel} needs resources.workers_per_trial, "
                                                  "the torch.distributed workers of one trial, e.g. "
                                                  "resources.workers_per_trial: 2 (or drop unlearn.parallel: one "
                                                  "process per trial)")
        return
    if n < 1:
        problems.add(("resources", "workers_per_trial"), f"workers_per_trial must be an integer ≥ 1, got {n}")
        return
    if n > 1 and u.parallel is None:
        problems.add(("resources", "workers_per_trial"), f"resources.workers_per_trial: {n} needs unlearn.parallel to "
                                                         "say how the workers share the model, e.g. unlearn.parallel: "
                                                         "ddp (each holds the whole model) or fsdp (shards it)")
    if r.gpus_per_trial > 0 and r.gpus_per_trial != n:
        problems.add(("resources", "gpus_per_trial"), f"gpus_per_trial is {r.gpus_per_trial:g} with {n} worker(s) per "
                                                      f"trial: set resources.gpus_per_trial: {n} (one GPU per worker; "
                                                      "NCCL cannot put two ranks of a trial on one GPU) or 0 (CPU "
                                                      "workers, gloo)")
    if u.parallel == "fsdp" and spec.data.source in VISION_SOURCES:
        problems.add(("unlearn", "parallel"), "FSDP wraps transformer blocks; use parallel: ddp for image classifiers")
    accum = u.grad_accum if isinstance(u.grad_accum, int) and u.grad_accum >= 1 else 1
    for key in ("batch_size", "retain_batch_size"):
        b = getattr(u, key)
        if b is None or b < 1 or accum > b:  # reported above (batch_size, grad_accum)
            continue
        if b % n:
            fit = -(-b // n) * n
            problems.add(("unlearn", key), f"{key} {b} does not split evenly over resources.workers_per_trial {n} "
                                           f"(each worker takes {key}/{n} examples of every batch): set unlearn.{key} "
                                           f"to a multiple of {n}, e.g. {max(fit, n * accum)}")
        elif b // n < accum:
            problems.add(("unlearn", key), f"each of the {n} workers gets {b // n} example(s) of {key} {b}, fewer "
                                           f"than unlearn.grad_accum {accum} micro-batches: raise unlearn.{key} to "
                                           f"at least {n * accum} or lower unlearn.grad_accum to {b // n}")


#: Metrics that read QA rows (TOFU's, or your own with the fields they name) and MUSE's text metrics.
QA_METRICS = ("rouge_f", "utility_r", "prob_f", "prob_r", "truth_ratio_f", "truth_ratio_r", "forget_quality",
              "model_utility")
MUSE_METRICS = ("verbmem_f", "knowmem_f", "knowmem_r", "privleak")
VISION_METRICS = ("forget_acc", "retain_acc", "test_forget_acc", "test_retain_acc")  # image classifiers
GENERIC_METRICS = ("loss_f_eval", "loss_r_eval")  # every task
REFERENCE_METRICS = ("forget_quality", "privleak")  # compare with the retain-only model


def _check_data_pairs(spec: SweepSpec, problems: _Problems) -> None:
    """Settings that only mean something together: data source × metrics, template × target."""
    d, t, metrics = spec.data, spec.target, spec.eval.metrics
    if d.source == "embedded" and (d.template != "plain" or not d.add_bos):
        problems.add(("data", "template"), "the embedded target is trained with the plain template and BOS; "
                                           "another template or add_bos: false needs target.source: train")
    for key in ("template", "add_bos", "max_length"):
        if key in t.train:
            home = "data.context" if key == "max_length" else f"data.{key}"
            problems.add(("target", "train", key), f"set {key} once, as {home}: the data, the target and every "
                                                   f"trial share it")
    if d.source != "muse_news" and d.articles is not None:
        problems.add(("data", "articles"), "data.articles applies to data.source muse_news only")
    fits_of = {**{m: "question/answer data (TOFU, custom, embedded)" for m in QA_METRICS},
               **{m: "MUSE-News text data" for m in MUSE_METRICS},
               **{m: "image data (cifar10, cifar100, image_folder)" for m in VISION_METRICS}}
    if d.source in VISION_SOURCES:
        wrong = QA_METRICS + MUSE_METRICS
    else:
        wrong = VISION_METRICS + (MUSE_METRICS if d.source != "muse_news" else QA_METRICS)
    for i, name in enumerate(metrics):
        if name in wrong:
            hint = (f"; image data's metrics: {', '.join(VISION_METRICS + GENERIC_METRICS)}"
                    if d.source in VISION_SOURCES else "")
            problems.add(("eval", "metrics", i), f"{name} is for {fits_of[name]}, not data.source {d.source}{hint}")
        if name in REFERENCE_METRICS and not t.retain_model:
            problems.add(("eval", "metrics", i), f"{name} compares with the retain-only model: set "
                                                 f"target.retain_model: true (or drop {name})")
    if d.source == "muse_news" and d.path and ("/" not in d.path or d.path.startswith((".", "/"))) \
            and not Path(d.path).is_dir():
        problems.add(("data", "path"), f"no such directory: {d.path} (give a local MUSE-News directory or a hub "
                                       f"id like muse-bench/MUSE-News)")


def _check_vision_target(train: dict, problems: _Problems) -> None:
    """target.train of an image source: VisionTargetConfig's fields, values checked by building it."""
    from pareto.vision.train import VisionTargetConfig

    names = [f.name for f in dataclasses.fields(VisionTargetConfig)]
    bad = [key for key in train if key not in names]
    for key in bad:
        problems.add(("target", "train", key), f"unknown classifier setting {key!r}.{did_you_mean(key, names)} "
                                               f"Valid for image data: {', '.join(names)}")
    if not bad:
        try:
            VisionTargetConfig(**train)
        except (TypeError, ValueError) as exc:
            problems.add(("target", "train"), str(exc))


def _check_vision_data(spec: SweepSpec, problems: _Problems) -> None:
    """Image sources: the folder (exists, ImageFolder layout), the forget class (a class of the data)
    and the forget count (no more than the class has); image-only keys on other sources."""
    d, defaults = spec.data, DataSpec()
    if d.source not in VISION_SOURCES:
        for key in ("forget_class", "forget_images", "per_class"):
            if getattr(d, key) != getattr(defaults, key):
                problems.add(("data", key), f"data.{key} applies to image data only (data.source cifar10, cifar100, "
                                            f"image_folder), not {d.source}")
        return
    from pareto.vision.data import DEFAULT_FORGET_CLASS, DataLayoutError, class_counts

    for key in ("template", "add_bos"):
        if getattr(d, key) != getattr(defaults, key):
            problems.add(("data", key), f"data.{key} is a prompt setting; image data has no prompts. Drop it")
    if d.forget != defaults.forget or d.authors is not None:
        problems.add(("data",), "data.forget / data.authors are TOFU settings; image data forgets "
                                "data.forget_images images of data.forget_class")
    if spec.target.retain_model:
        problems.add(("target", "retain_model"), "the retain-only reference serves forget_quality and privleak (TOFU, "
                                                 "MUSE); image data has no such metric. Drop target.retain_model")
    if d.forget_images < 1:
        problems.add(("data", "forget_images"), f"forget_images must be ≥ 1, got {d.forget_images}")
    if d.per_class is not None and d.per_class < 1:
        problems.add(("data", "per_class"), f"per_class must be ≥ 1, got {d.per_class}")
    if d.source == "image_folder" and not d.path:
        problems.add(("data", "path"), "data.source image_folder needs data.path: a directory with train/<class>/*.jpg "
                                       "and test/<class>/*.jpg (or a .tar of one)")
        return
    forget_class = d.forget_class or DEFAULT_FORGET_CLASS.get(d.source)
    if forget_class is None:
        problems.add(("data", "forget_class"), "image_folder data needs data.forget_class: the class folder to forget")
        return
    try:
        classes, counts = class_counts(d.source, d.path)
    except (DataLayoutError, OSError) as exc:
        problems.add(("data", "path"), str(exc))
        return
    if forget_class not in classes:
        problems.add(("data", "forget_class"), f"unknown class {forget_class!r}.{did_you_mean(forget_class, list(classes))} "
                                               f"The data's classes: {', '.join(classes)}")
        return
    have = min(counts[forget_class], d.per_class or counts[forget_class])
    if d.forget_images > have:
        problems.add(("data", "forget_images"), f"forget_images is {d.forget_images} but class {forget_class!r} has "
                                                f"{have} train images{' (per_class)' if d.per_class else ''}; set "
                                                f"data.forget_images to at most {have}")


def _check_search(spec: SweepSpec, problems: _Problems, metrics) -> None:
    s, sch = spec.search, spec.scheduler
    if s.algorithm not in ALGORITHMS:
        problems.add(("search", "algorithm"), f"unknown search algorithm {s.algorithm!r}."
                     f"{did_you_mean(s.algorithm, list(ALGORITHMS))} Available: {', '.join(ALGORITHMS)}")
    if s.num_samples < 1:
        problems.add(("search", "num_samples"), f"must be ≥ 1, got {s.num_samples}")
    if s.algorithm == "optuna":
        if not s.objectives:
            problems.add(("search", "objectives"), "optuna needs the metrics to optimise, e.g. objectives: "
                                                   "[rouge_f, utility_r] (two or more: multi-objective)")
        if s.sampler not in ("tpe", "nsga2"):
            problems.add(("search", "sampler"), f"optuna sampler must be tpe or nsga2, got {s.sampler!r}")
    elif s.objectives:
        problems.add(("search", "objectives"), f"objectives steer optuna only; search.algorithm is {s.algorithm!r}")
    for i, name in enumerate(s.objectives):
        if name not in spec.eval.metrics:
            hint = "add it to eval.metrics" if name in metrics else f"{did_you_mean(name, metrics.names())}".strip()
            problems.add(("search", "objectives", i), f"objective {name!r} is not among eval.metrics; {hint}")
    if len(set(s.objectives)) != len(s.objectives):
        problems.add(("search", "objectives"), "each objective once")
    if sch.name not in ("none", "asha"):
        problems.add(("scheduler", "name"), f"unknown scheduler {sch.name!r}.{did_you_mean(sch.name, ['none', 'asha'])} "
                                            "Available: none, asha")
    if sch.name == "asha":
        if not sch.metric:
            problems.add(("scheduler", "metric"), "asha compares trials on one metric: set scheduler.metric (e.g. utility_r)")
        elif sch.metric not in spec.eval.metrics:
            problems.add(("scheduler", "metric"), f"{sch.metric!r} is not among eval.metrics; add it there")
        if spec.eval.every < 1:
            problems.add(("eval", "every"), "asha stops trials at evaluation points: set eval.every (steps between "
                                            "evaluations), e.g. a quarter of unlearn.steps")
        if sch.grace_period < 1 or sch.reduction_factor <= 1:
            problems.add(("scheduler",), "grace_period must be ≥ 1 and reduction_factor > 1")


def total_steps(unlearn: dict, n_forget: int) -> int:
    """Unlearning steps of a trial: `steps`, or ceil(epochs · |forget| / batch_size) when epochs is set."""
    if unlearn.get("epochs"):
        import math

        return math.ceil(unlearn["epochs"] * n_forget / unlearn["batch_size"])
    return int(unlearn["steps"])


#: Typical size of a transformer weight (initialised N(0, 0.02) and not far from it after finetuning).
TYPICAL_WEIGHT = 0.02
#: Below this learning rate, pure-bf16 training loses a sizeable share of its updates to rounding.
BF16_MIN_LR = TYPICAL_WEIGHT * 2 ** -8  # ≈ 7.8e-5


def precision_warnings(spec: SweepSpec, points: Sequence[dict]) -> list[str]:
    """Warnings for a spec whose updates mostly round away: unlearn.dtype bfloat16 (pure bf16
    parameters, no fp32 master weights) with a small learning rate.

    bf16 has an 8-bit significand (7 bits stored): at a weight w with 2^e ≤ |w| < 2^(e+1) its unit
    in the last place is 2^(e-7), and an update smaller than half of it, 2^(e-8) — between |w|·2^-9
    and |w|·2^-8 — is rounded away: w + Δ == w. Adam's first steps move every weight by ≈ lr
    (m̂/√v̂ ≈ ±1), so a weight moves only if |w| < 2^ceil(log2(lr) + 8), about lr·2^8 to lr·2^9.
    With weights of typical size 0.02 (N(0, 0.02)) that is fewer than half of them below
    lr ≈ 2^-15 ≈ 3e-5, and ≈ 16 % at lr 1e-5 (only |w| < 2^-8 ≈ 0.004 move; issue 16 measured
    ~16 %, tests/test_precision.py measures it on a Linear stack). The warning fires below
    lr = 0.02·2^-8 ≈ 7.8e-5 (BF16_MIN_LR), where a sizeable share is lost (≈ 44 % at 5e-5). With
    SGD the step is lr·|d_i|, usually far smaller than lr, so it warns with the same threshold,
    which is lenient there: an SGD run can lose most of its updates at larger rates too.

    This is a rule of thumb on the spec alone (typical weights, Adam-sized steps). Every trial
    records the measured fraction in the results column `first_step_changed_frac`: of the
    parameter entries the first optimizer step meant to change (non-zero update), the share it
    did change. The fix keeps fp32 master weights and runs the matmuls in bf16:
    `unlearn.dtype: float32` with `unlearn.autocast: bfloat16`.

    `points` are the spec's known points (parse_spec's second value); an optuna search's
    learning rates come from its search space (the low end of a distribution). `pareto validate`
    prints these as `warning:` lines, as `pareto sweep` does before it runs.
    """
    u = spec.unlearn
    if u.dtype != "bfloat16":
        return []
    lrs = [p["lr"] for p in points if "lr" in p]
    space_lr = (spec.search.space or {}).get("lr")  # optuna draws as it goes: its space says how low it may go
    if isinstance(space_lr, dict) and len(space_lr) == 1:
        kind, args = next(iter(space_lr.items()))
        lrs += list(args)[:1] if kind in ("uniform", "loguniform") else list(args)
    lrs = [float(lr) for lr in lrs if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0]
    if not lrs or min(lrs) >= BF16_MIN_LR:
        return []
    lr = min(lrs)
    import math

    # A weight keeps an update of lr when half its ulp, 2^(floor(log2|w|) - 8), is below lr: when
    # |w| < 2^ceil(log2(lr) + 8). For w ~ N(0, 0.02) that is P(|z| < 2^ceil(log2(lr) + 8) / 0.02).
    below = 2.0 ** math.ceil(math.log2(lr) + 8)
    kept = math.erf(below / TYPICAL_WEIGHT / math.sqrt(2))
    step = "an Adam step moves each weight by ≈ lr" if u.optimizer in ("adam", "adamw") else \
        f"a {u.optimizer} step moves each weight by lr·|d|, less than lr"
    extra = " (grad_dtype float32 does not help: the parameters stay bf16)" if u.grad_dtype == "float32" else ""
    return [f"unlearn.dtype bfloat16 keeps the parameters in bf16 with no fp32 master weights{extra}, and the "
            f"smallest learning rate here is {lr:.3g}: {step}, and an update below half a bf16 unit in the last "
            f"place (|w|·2^-9 … |w|·2^-8) rounds away, so with weights of typical size 0.02 only about "
            f"{kept:.0%} of the entries change on the first step (a rule of thumb for lr < {BF16_MIN_LR:.2g}; each "
            f"trial records the measured share as first_step_changed_frac). Keep fp32 master weights and bf16 "
            f"matmuls instead: --set unlearn.dtype=float32 --set unlearn.autocast=bfloat16"]


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> tuple[SweepSpec, list[dict]]:
    p = Path(path)
    if not p.is_file():
        raise SpecError(str(path), [f"no such spec file: {path}. Shipped specs are in sweeps/ (e.g. sweeps/quickstart.yaml)"])
    return parse_spec(p.read_text(), source=str(path), overrides=overrides, base_dir=p.parent)
