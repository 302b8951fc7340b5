"""Sweep specs: YAML → typed, frozen config objects, with every problem reported at once.

A spec is one experiment (see sweeps/quickstart.yaml). Problems are collected, not raised one
by one: each names the key path, the line in the file, what is wrong and how to fix it.
Components (combiner, forget objective, lr rule, optimizer) are chosen by registered name
only, and their parameters are checked by building each grid point once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from pareto._registry import RegistryError, did_you_mean
from pareto.core.combiners import COMBINERS
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import OPTIMIZERS


class SpecError(Exception):
    """A spec with problems; `problems` lists every one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


DATA_SOURCES = ("embedded", "tofu", "custom", "muse_news")


@dataclass(frozen=True)
class DataSpec:
    source: str = "embedded"  # embedded | tofu | custom | muse_news (see pareto.data.sources)
    path: str | None = None  # tofu / muse_news: a local directory in the official layout, or a hub id
    forget: str = "forget10"  # tofu: forget01 | forget05 | forget10
    authors: int | None = None  # tofu: only the last N authors of `full` (CPU-sized runs)
    forget_fraction: float = 0.1  # tofu with `authors`: the last 10 % of them are forgotten
    forget_file: str | None = None  # custom
    retain_file: str | None = None  # custom
    articles: int | None = None  # muse_news: only the first N forget and N retain articles (CPU-sized runs)
    context: int | None = None  # muse_news: tokens per training chunk (default: the target's max_length)
    template: str = "plain"  # prompt template by name: plain | phi | llama2-chat (pareto.data.templates)
    add_bos: bool = True  # prepend the tokenizer's BOS to every prompt / chunk (recorded with the results)


@dataclass(frozen=True)
class TargetSpec:
    source: str = "embedded"  # embedded (built with its data) | train (finetune `train.base` on the data)
    embedded: dict = field(default_factory=dict)  # EmbeddedConfig overrides
    train: dict = field(default_factory=dict)  # TargetConfig fields (base, lr, epochs, …)
    retain_model: bool = False  # also build the retain-only "Retrain" reference (forget_quality, privleak)


@dataclass(frozen=True)
class UnlearnSpec:
    steps: int = 30
    batch_size: int = 8  # forget batch; the retain batch too unless retain_batch_size is set
    retain_batch_size: int | None = None
    optimizer: str = "adam"
    optimizer_args: dict = field(default_factory=dict)
    measure_after_every: int = 1  # re-measure both losses after the update every N steps (0: never)
    threads: int = 1  # torch threads per trial
    device: str = "auto"  # auto (cuda when the trial has a GPU, else cpu) | cpu | cuda
    dtype: str = "float32"  # float32 | bfloat16 (parameters, gradients and both buffers)


DEFAULT_METRICS = ("loss_f_eval", "loss_r_eval", "rouge_f", "utility_r")


@dataclass(frozen=True)
class EvalSpec:
    metrics: tuple = DEFAULT_METRICS  # registered metric names (pareto.metrics.METRICS)
    max_new_tokens: int = 24
    retain_items: int = 40  # retain QA pairs scored (the forget set is scored whole)
    batch_size: int = 32


@dataclass(frozen=True)
class SearchSpec:
    algorithm: str = "grid"
    baseline: bool = True  # add a No-unlearn trial (the target model, 0 steps)
    grid: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ResourcesSpec:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None


@dataclass(frozen=True)
class StorageSpec:
    root: str = "results"


@dataclass(frozen=True)
class SweepSpec:
    name: str
    data: DataSpec = DataSpec()
    target: TargetSpec = TargetSpec()
    unlearn: UnlearnSpec = UnlearnSpec()
    eval: EvalSpec = EvalSpec()
    search: SearchSpec = SearchSpec()
    resources: ResourcesSpec = ResourcesSpec()
    storage: StorageSpec = StorageSpec()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


SECTIONS = {f.name: f.type for f in dataclasses.fields(SweepSpec)}
SECTION_CLASSES = {"data": DataSpec, "target": TargetSpec, "unlearn": UnlearnSpec, "eval": EvalSpec,
                   "search": SearchSpec, "resources": ResourcesSpec, "storage": StorageSpec}
GRID_KEYS = {"combiner": COMBINERS, "objective": OBJECTIVES, "lr_rule": LR_RULES}
GRID_DEFAULTS = {"combiner": ["ngdiff"], "objective": ["ga"], "lr_rule": ["fixed"], "lr": [1e-3], "seed": [0]}


# ---------------------------------------------------------------- YAML with line numbers
def _load_with_lines(text: str) -> tuple[Any, dict[tuple, int]]:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[tuple, int] = {}

    def walk(n, path):
        if n is None:
            return
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                lines[path + (k.value,)] = k.start_mark.line + 1
                walk(v, path + (k.value,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    walk(node, ())
    return yaml.safe_load(text), lines


class _Problems:
    def __init__(self, lines: dict[tuple, int]) -> None:
        self.lines, self.items = lines, []

    def add(self, path: tuple, message: str) -> None:
        line = next((self.lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in self.lines), None)
        where = ".".join(str(p) for p in path) or "(top level)"
        self.items.append(f"{where} (line {line}): {message}" if line else f"{where}: {message}")


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


# ---------------------------------------------------------------- the search grid
def _component_options(key: str, raw, path, problems) -> list[dict]:
    """Expand one grid axis of components: names or {name: {param: value | [values]}}."""
    registry = GRID_KEYS[key]
    entries = raw if isinstance(raw, list) else [raw]
    options = []
    for i, entry in enumerate(entries):
        where = path + (i,) if isinstance(raw, list) else path
        if isinstance(entry, str):
            name, params = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            name, params = next(iter(entry.items()))
            params = params or {}
            if not isinstance(params, dict):
                problems.add(where + (name,), f"parameters of {name!r} must be a mapping, got {params!r}")
                continue
        else:
            problems.add(where, f"expected a {key} name or {{name: {{param: value}}}}, got {entry!r}")
            continue
        if name not in registry:
            problems.add(where, f"unknown {registry.kind} {name!r}.{did_you_mean(str(name), registry.names())} "
                                f"Available: {', '.join(registry.names())}")
            continue
        axes = {k: (v if isinstance(v, list) else [v]) for k, v in params.items()}
        for combo in itertools.product(*axes.values()):
            point = dict(zip(axes, combo))
            try:
                registry.build(name, **point)
            except RegistryError as exc:
                problems.add(where + (name,), f"{exc}")
                break
            options.append({"name": name, "params": point})
    return options


def _scalar_axis(key, raw, path, problems, kind) -> list:
    values = raw if isinstance(raw, list) else [raw]
    out = []
    for i, v in enumerate(values):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if kind is int:
            ok = ok and float(v).is_integer()
        if not ok:
            problems.add(path + (i,), f"expected {'an integer' if kind is int else 'a number'}, got {v!r}")
        elif key == "lr" and not v > 0:
            problems.add(path + (i,), f"learning rate must be > 0, got {v}")
        else:
            out.append(kind(v))
    return out


def expand_grid(grid: dict, problems: _Problems | None = None, path: tuple = ("search", "grid")) -> list[dict]:
    """The trial points of a grid; component parameters multiply only their own component."""
    problems = problems or _Problems({})
    valid = list(GRID_DEFAULTS)
    axes = {}
    for key in grid:
        if key not in valid:
            problems.add(path + (key,), f"unknown grid axis {key!r}.{did_you_mean(str(key), valid)} Valid axes: {', '.join(valid)}")
    for key, default in GRID_DEFAULTS.items():
        raw = grid.get(key, default)
        if key in GRID_KEYS:
            axes[key] = _component_options(key, raw, path + (key,), problems)
        else:
            axes[key] = _scalar_axis(key, raw, path + (key,), problems, int if key == "seed" else float)
    points = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    for point in points:  # loss-weighting combiners need the forget task as a positive loss
        comb, obj = point["combiner"]["name"], point["objective"]["name"]
        if COMBINERS.get(comb).needs_positive_forget_loss and not OBJECTIVES.get(obj).positive_loss:
            problems.add(path + ("objective",), f"combiner {comb!r} weights tasks by log-loss and needs the forget "
                         f"task as a positive loss to minimise; objective {obj!r} gives a negative one. "
                         f"Pair {comb!r} with objective npo or simnpo only (a spec of its own).")
            break
    return points


def trial_label(point: dict) -> str:
    def comp(c):
        ps = ",".join(f"{k}={v}" for k, v in sorted(c["params"].items()))
        return f"{c['name']}({ps})" if ps else c["name"]

    if point.get("baseline"):
        return "no-unlearn"
    return f"{comp(point['combiner'])}/{comp(point['objective'])}/{comp(point['lr_rule'])}/lr={point['lr']:g}/seed={point['seed']}"


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
                node[leaf] = yaml.safe_load(value)
            except yaml.YAMLError:
                problems.append(f"--set {item!r}: the value is not valid YAML")
    if problems:
        raise SpecError(source, problems)
    return raw


def parse_spec(text: str, source: str = "<spec>", overrides: Sequence[str] = ()) -> tuple[SweepSpec, list[dict]]:
    """Parse and validate a spec; returns it and its trial points, or raises SpecError."""
    try:
        raw, lines = _load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}. Fix the syntax there."]) from None
    problems = _Problems(lines)
    if not isinstance(raw, dict):
        raise SpecError(source, ["a spec must be a YAML mapping with at least `name:`"])
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
    points = expand_grid(spec.search.grid or {}, problems)
    if problems.items:
        raise SpecError(source, problems.items)
    if spec.search.baseline:
        points = [{"baseline": True, "seed": 0}] + points
    return spec, points


def _check_values(spec: SweepSpec, problems: _Problems) -> None:
    u = spec.unlearn
    if u.steps < 0:
        problems.add(("unlearn", "steps"), f"steps must be ≥ 0, got {u.steps}")
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
    if u.dtype not in ("float32", "bfloat16"):
        problems.add(("unlearn", "dtype"), f"dtype must be float32 or bfloat16, got {u.dtype!r}")
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
    if t.source == "train":
        from pareto.models.target import TargetConfig

        names = [f.name for f in dataclasses.fields(TargetConfig)]
        for key in t.train:
            if key not in names:
                problems.add(("target", "train", key), f"unknown target setting {key!r}.{did_you_mean(key, names)} "
                                                       f"Valid: {', '.join(names)}")
    if spec.search.algorithm != "grid":
        problems.add(("search", "algorithm"), f"search algorithm {spec.search.algorithm!r} is not available yet; use 'grid'")
    from pareto.metrics import METRICS

    for i, name in enumerate(spec.eval.metrics):
        if name not in METRICS:
            problems.add(("eval", "metrics", i), f"unknown metric {name!r}.{did_you_mean(name, METRICS.names())} "
                                                 f"Available: {', '.join(METRICS.names())}")
    if spec.eval.max_new_tokens < 1 or spec.eval.retain_items < 1 or spec.eval.batch_size < 1:
        problems.add(("eval",), "max_new_tokens, retain_items and batch_size must be ≥ 1")
    if spec.resources.cpus_per_trial <= 0:
        problems.add(("resources", "cpus_per_trial"), "must be > 0")
    if spec.resources.gpus_per_trial < 0:
        problems.add(("resources", "gpus_per_trial"), "must be ≥ 0")


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> tuple[SweepSpec, list[dict]]:
    p = Path(path)
    if not p.is_file():
        raise SpecError(str(path), [f"no such spec file: {path}. Shipped specs are in sweeps/ (e.g. sweeps/quickstart.yaml)"])
    return parse_spec(p.read_text(), source=str(path), overrides=overrides)
