"""Sweep specs: YAML → typed, frozen config objects, with every problem reported at once.

A spec is one experiment (see sweeps/quickstart.yaml). Problems are collected, not raised one
by one: each names the key path, the line in the file, what is wrong and how to fix it.
Components (combiner, forget objective, lr rule, optimizer) are chosen by registered name
only, and their parameters are checked by building each grid point once.

This module parses: YAML with line numbers, `include:`, `--set` overrides, each key's type, and
the problem list. The checks of values live with what they check: each section
(pareto.spec_sections), the data source and its task (pareto.sources), the search
(pareto.search), several workers per trial (pareto.resources), LoRA (pareto.memory).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Sequence

import yaml

from pareto._registry import did_you_mean
from pareto.precision import precision_warnings
from pareto.search import check_pairs, check_search, expand_grid, has_dist, parse_space, sample_random, trial_label
from pareto.spec_sections import (DEFAULT_METRICS, DataSpec, EvalSpec, ResourcesSpec, SchedulerSpec, SearchSpec,
                                  StorageSpec, SweepSpec, TargetSpec, UnlearnSpec)

__all__ = ["DEFAULT_METRICS", "DataSpec", "EvalSpec", "ResourcesSpec", "SchedulerSpec", "SearchSpec", "SpecError",
           "StorageSpec", "SweepSpec", "TargetSpec", "UnlearnSpec", "expand_grid", "load_spec", "parse_spec",
           "precision_warnings", "search_space", "total_steps", "trial_label"]


class SpecError(Exception):
    """A spec with problems; `problems` lists every one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))



#: A spec's sections and their typed classes (pareto.spec_sections); `name` is the one plain key.
SECTION_CLASSES = {name: cls for name, cls in typing.get_type_hints(SweepSpec).items() if name != "name"}
SECTIONS = ("name", *SECTION_CLASSES)


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
    """Check one scalar/dict field against its annotation (`int | None`, `tuple`, …); return the coerced value."""
    args = typing.get_args(typ) if typing.get_origin(typ) in (typing.Union, types.UnionType) else (typ,)
    if value is None and type(None) in args:
        return None
    kind = next(a for a in args if a is not type(None))
    kind = typing.get_origin(kind) or kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        problems.add(path, f"expected true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.add(path, f"expected an integer, got {value!r}")
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        problems.add(path, f"expected a number, got {value!r}")
    elif kind is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        problems.add(path, f"expected a list of names, got {value!r}")
    elif kind is dict:
        if isinstance(value, dict):
            return value
        problems.add(path, f"expected a mapping, got {value!r}")
    elif kind is str:
        if isinstance(value, str):
            return value
        problems.add(path, f"expected a string, got {value!r}")
    else:
        raise TypeError(f"a spec field of type {typ} has no check: add one to _check_type")
    return None


def _section(cls, raw, path, problems):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        problems.add(path, f"expected a mapping of {', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls()
    names = [f.name for f in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            problems.add(path + (key,), f"unknown key {key!r}.{did_you_mean(str(key), names)} Valid keys: {', '.join(names)}")
            continue
        checked = _check_type(value, hints[key], path + (key,), problems)
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
    if "metrics" not in (raw.get("eval") if isinstance(raw.get("eval"), dict) else {}):
        sections["eval"] = dataclasses.replace(sections["eval"], metrics=_default_metrics(sections["data"].source))
    spec = SweepSpec(name=name, **sections)
    _check_values(spec, problems)
    space = parse_space(spec.search.space or {}, ("search", "space"), problems.add)
    points = _points(spec, space, problems) if not problems.items else []
    if problems.items:
        raise SpecError(source, problems.items)
    if spec.search.baseline:
        points = [{"baseline": True, "seed": 0}] + points
    return spec, points


def _default_metrics(source: str) -> tuple:
    """The data source's own default eval.metrics (its data's metrics; QA sources: DEFAULT_METRICS)."""
    from pareto.sources import SOURCES

    return SOURCES.get(source).metrics if source in SOURCES else DEFAULT_METRICS


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
    """Every check of values, each by the owner of the setting."""
    from pareto.resources import check_parallel
    from pareto.sources import check_data

    for name in SECTION_CLASSES:
        section = getattr(spec, name)
        if hasattr(section, "check"):
            section.check(problems.add)
    check_data(spec, dataclasses.asdict(DataSpec()), problems.add)
    check_search(spec, problems.add)
    check_parallel(spec, problems.add, problems.items)


def total_steps(unlearn: dict, n_forget: int) -> int:
    """Unlearning steps of a trial: `steps`, or ceil(epochs · |forget| / batch_size) when epochs is set."""
    if unlearn.get("epochs"):
        import math

        return math.ceil(unlearn["epochs"] * n_forget / unlearn["batch_size"])
    return int(unlearn["steps"])



def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> tuple[SweepSpec, list[dict]]:
    p = Path(path)
    if not p.is_file():
        raise SpecError(str(path), [f"no such spec file: {path}. Shipped specs are in sweeps/ (e.g. sweeps/quickstart.yaml)"])
    return parse_spec(p.read_text(), source=str(path), overrides=overrides, base_dir=p.parent)
