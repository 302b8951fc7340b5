"""The search space of a spec and the three ways to search it: grid, random, optuna.

A space maps axes to options. Component axes (combiner, objective, lr_rule) list registered
names, each with its own parameters; scalar axes (lr, seed) list values. Any value may be a
distribution instead of a list:

    {uniform: [low, high]}   {loguniform: [low, high]}   {choice: [a, b, ...]}

    grid    every combination of the lists; component parameters multiply only their own
            component (c only for gdiff, beta only for npo), so no trial repeats a method with
            a meaningless parameter. Distributions are refused: a grid needs lists.
    random  `num_samples` points drawn with Ray Tune's own distributions (tune.uniform,
            tune.loguniform, tune.choice) from a seeded generator, so the same spec gives the
            same points; a list means a uniform choice among its values.
    optuna  Optuna's TPE, NSGA-II or GP sampler (`search.sampler`, seeded by `search.seed`)
            through Ray Tune's OptunaSearch, asked one point at a time with a define-by-run
            space, so a component's parameters are only suggested when that component is
            chosen. One objective → single-objective; two or more → multi-objective search for
            the frontier itself (the GP sampler: log expected hypervolume improvement).

A point is what a trial runs: {"combiner": {"name", "params"}, "objective": {...},
"lr_rule": {...}, "lr": float, "seed": int}.
"""

from __future__ import annotations

import copyreg
import itertools
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from pareto._registry import RegistryError, did_you_mean
from pareto.core.combiners import COMBINERS, compatibility_problem
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES

COMPONENT_AXES = {"combiner": COMBINERS, "objective": OBJECTIVES, "lr_rule": LR_RULES}
SCALAR_AXES = {"lr": float, "seed": int}
DEFAULTS = {"combiner": ["ngdiff"], "objective": ["ga"], "lr_rule": ["fixed"], "lr": [1e-3], "seed": [0]}
DISTRIBUTIONS = ("uniform", "loguniform", "choice")
ALGORITHMS = ("grid", "random", "optuna")
SAMPLERS = ("gp", "tpe", "nsga2")  # optuna's, for search.algorithm: optuna

Report = Callable[[tuple, str], None]  # (key path, message)


@dataclass(frozen=True)
class Dist:
    kind: str  # uniform | loguniform | choice
    args: tuple

    def tune_domain(self):
        from ray import tune

        return {"uniform": tune.uniform, "loguniform": tune.loguniform}[self.kind](*self.args) \
            if self.kind != "choice" else tune.choice(list(self.args))

    def bounds(self) -> list:
        """Values that must all be valid for every draw to be (the ends, or every choice)."""
        return list(self.args)


def _parse_value(raw, path, report: Report):
    """A list of values, or a Dist; `None` when it is malformed (reported)."""
    if isinstance(raw, dict):
        if len(raw) != 1 or next(iter(raw)) not in DISTRIBUTIONS:
            key = str(next(iter(raw), ""))
            report(path, f"expected a list of values or one of {{uniform: [low, high]}}, {{loguniform: [low, high]}}, "
                         f"{{choice: [...]}}; got {raw!r}.{did_you_mean(key, list(DISTRIBUTIONS))}")
            return None
        kind, args = next(iter(raw.items()))
        if not isinstance(args, list) or not args:
            report(path + (kind,), f"{kind} takes a list, e.g. {{{kind}: [1.0e-5, 1.0e-3]}}")
            return None
        if kind != "choice":
            if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args) \
                    or not args[0] < args[1]:
                report(path + (kind,), f"{kind} takes [low, high] with low < high, got {args!r}")
                return None
            if kind == "loguniform" and args[0] <= 0:
                report(path + (kind,), f"loguniform needs low > 0, got {args[0]}")
                return None
        return Dist(kind, tuple(args))
    return raw if isinstance(raw, list) else [raw]


def _values(v) -> list:
    return v.bounds() if isinstance(v, Dist) else v


def has_dist(space: dict) -> bool:
    for key, options in space.items():
        if isinstance(options, Dist):
            return True
        if key in COMPONENT_AXES and any(isinstance(p, Dist) for o in options for p in o["params"].values()):
            return True
    return False


def _component_options(key: str, raw, path, report: Report) -> list[dict]:
    registry = COMPONENT_AXES[key]
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
                report(where + (name,), f"parameters of {name!r} must be a mapping, got {params!r}")
                continue
        else:
            report(where, f"expected a {key} name or {{name: {{param: value}}}}, got {entry!r}")
            continue
        if name not in registry:
            report(where, f"unknown {registry.kind} {name!r}.{did_you_mean(str(name), registry.names())} "
                          f"Available: {', '.join(registry.names())}")
            continue
        parsed = {}
        for param, value in params.items():
            v = _parse_value(value, where + (name, param), report)
            if v is not None:
                parsed[param] = v
        # every value a draw can take must build: the ends of a range, every listed value
        axes = {k: _values(v) for k, v in parsed.items()}
        for combo in itertools.product(*axes.values()):
            try:
                registry.build(name, **dict(zip(axes, combo)))
            except RegistryError as exc:
                report(where + (name,), f"{exc}")
                break
        else:
            options.append({"name": name, "params": parsed})
    return options


def _scalar_option(key, raw, path, report: Report):
    kind = SCALAR_AXES[key]
    v = _parse_value(raw, path, report)
    if v is None:
        return []
    out = []
    for i, x in enumerate(_values(v)):
        ok = isinstance(x, (int, float)) and not isinstance(x, bool) and (kind is float or float(x).is_integer())
        if not ok:
            report(path + (i,) if not isinstance(v, Dist) else path,
                   f"expected {'an integer' if kind is int else 'a number'}, got {x!r}")
        elif key == "lr" and not x > 0:
            report(path + (i,) if not isinstance(v, Dist) else path, f"learning rate must be > 0, got {x}")
        else:
            out.append(kind(x))
    if isinstance(v, Dist):
        if key == "seed" and v.kind != "choice":
            report(path, "seed takes a list or {choice: [...]}, not a continuous distribution")
            return []
        return v if len(out) == len(v.args) else []
    return out


def parse_space(raw: dict, path: tuple, report: Report) -> dict:
    """The spec's `search.space` → {axis: options}; unknown axes and bad values reported."""
    valid = list(DEFAULTS)
    for key in raw:
        if key not in valid:
            report(path + (key,), f"unknown search axis {key!r}.{did_you_mean(str(key), valid)} Valid axes: {', '.join(valid)}")
    space = {}
    for key, default in DEFAULTS.items():
        value = raw.get(key, default)
        if key in COMPONENT_AXES:
            space[key] = _component_options(key, value, path + (key,), report)
        else:
            space[key] = _scalar_option(key, value, path + (key,), report)
    return space


def check_pairs(points_or_space, report: Report, path: tuple) -> None:
    """Loss-weighting combiners need the forget task as a positive loss (npo, simnpo, …; not ga)."""
    combiners = {o["name"] for o in points_or_space["combiner"]}
    objectives = {o["name"] for o in points_or_space["objective"]}
    for comb in sorted(combiners):
        for obj in sorted(objectives):
            problem = compatibility_problem(comb, obj)
            if problem:
                report(path + ("objective",), f"{problem} Pair {comb!r} with those objectives only "
                       f"(a spec of its own).")
                return


# ---------------------------------------------------------------- grid
def expand_grid(space: dict) -> list[dict]:
    """Every point of a space of lists; component parameters multiply only their component."""
    axes = {}
    for key, options in space.items():
        if key in COMPONENT_AXES:
            axes[key] = [{"name": o["name"], "params": dict(zip(o["params"], combo))}
                         for o in options for combo in itertools.product(*o["params"].values())]
        else:
            axes[key] = options
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


# ---------------------------------------------------------------- random
def sample_random(space: dict, num_samples: int, seed: int) -> list[dict]:
    """`num_samples` points drawn with Ray Tune's distributions from one seeded generator."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def draw(v):
        if isinstance(v, Dist):
            return v.tune_domain().sample(random_state=rng)
        return v[int(rng.integers(len(v)))]

    points = []
    for _ in range(num_samples):
        point = {}
        for key, options in space.items():
            if key in COMPONENT_AXES:
                o = options[int(rng.integers(len(options)))]
                point[key] = {"name": o["name"], "params": {p: _plain(draw(v)) for p, v in o["params"].items()}}
            else:
                point[key] = SCALAR_AXES[key](draw(options))
        points.append(point)
    return points


def _plain(x: Any) -> Any:
    """numpy scalars → Python numbers (JSON, Parquet and labels want plain values)."""
    return x.item() if hasattr(x, "item") else x


# ---------------------------------------------------------------- optuna
class OptunaSpace:
    """A define-by-run space for OptunaSearch: suggests a point, returns it as {"point": …}.

    Component choices are categorical over option labels ("gdiff", or "gdiff#1" when a
    component is listed twice with different parameters); a component's parameters are
    suggested under "<axis>.<label>.<param>" only when it is chosen (a conditional space), or in
    every trial for a sampler marked `suggest_every_param` (GP's, make_sampler): a model over the
    parameters every trial has then sees them; the point keeps only the chosen component's.
    Each point gets the next trial `index` from `start`. A class, not a closure: Ray Tune
    pickles the searcher with its experiment state.
    """

    def __init__(self, space: dict, start: int = 0) -> None:
        self.space, self.next_index = space, start
        self.labels = {key: _labels(options) for key, options in space.items() if key in COMPONENT_AXES}

    @staticmethod
    def _suggest(trial, name, v):
        if isinstance(v, Dist) and v.kind in ("uniform", "loguniform"):
            return trial.suggest_float(name, float(v.args[0]), float(v.args[1]), log=v.kind == "loguniform")
        return trial.suggest_categorical(name, list(v.args) if isinstance(v, Dist) else v)

    def __call__(self, trial) -> dict:
        every = getattr(getattr(getattr(trial, "study", None), "sampler", None), "suggest_every_param", False)
        point = {}
        for key, options in self.space.items():
            if key in COMPONENT_AXES:
                labels = self.labels[key]
                choice = self._suggest(trial, key, labels) if len(options) > 1 else labels[0]
                o = options[labels.index(choice)]
                if every:  # every option's parameters, so that each trial has them all (see make_sampler)
                    drawn = {(label, p): self._suggest(trial, f"{key}.{label}.{p}", v)
                             for label, opt in zip(labels, options) for p, v in opt["params"].items()
                             if isinstance(v, Dist) or len(v) > 1}
                point[key] = {"name": o["name"], "params": {
                    p: (drawn[choice, p] if every else self._suggest(trial, f"{key}.{choice}.{p}", v))
                    if isinstance(v, Dist) or len(v) > 1 else v[0]
                    for p, v in o["params"].items()}}
            else:
                one = not isinstance(options, Dist) and len(options) == 1
                point[key] = SCALAR_AXES[key](options[0] if one else self._suggest(trial, key, options))
        point["index"], self.next_index = self.next_index, self.next_index + 1
        return {"point": point}


#: GP's defaults, from benchmarks/search_samplers.py over seeds 0-4 (docs/benchmarks.md, "Search
#: samplers"): Optuna's 10 random start-up trials (5 did no better), a model without a noise term
#: (deterministic_objective: a trial's metrics repeat exactly for its seed; the only variant at
#: ≥ 95 % of the grid's hypervolume on all five seeds), gdiff's c left conditional (modelling it
#: in every trial, `every_param`, did worse)
GP_STARTUP_TRIALS, GP_DETERMINISTIC, GP_EVERY_PARAM = 10, True, False


def make_sampler(sampler: str, seed: int, *, startup_trials: int | None = None,
                 deterministic: bool = GP_DETERMINISTIC, every_param: bool = GP_EVERY_PARAM):
    """Optuna's sampler `sampler` (one of SAMPLERS), seeded: the same seed draws the same points.

    gp: a Gaussian process (Matern 5/2) with log expected improvement for one objective and log
    expected hypervolume improvement for two or more; its first GP_STARTUP_TRIALS points are
    random (as TPE's). `deterministic`: Optuna's deterministic_objective (no noise term: the GP
    interpolates the trials it has; an experimental argument in Optuna 5.1, its warning silenced
    here). GP models only the parameters every trial has: a component's own parameters (gdiff's
    c) exist only when it is chosen, so GP draws them at random: expected, not warned about per
    trial. With `every_param`, OptunaSpace suggests every option's parameters in every trial (the
    point keeps the chosen one's) and GP models c too. The keywords are for
    benchmarks/search_samplers.py's variants (`startup_trials` also sets TPE's random start); a
    spec names the sampler only, which gets the defaults."""
    import optuna

    if sampler == "gp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            gp = optuna.samplers.GPSampler(
                seed=seed, warn_independent_sampling=False, deterministic_objective=deterministic,
                n_startup_trials=GP_STARTUP_TRIALS if startup_trials is None else startup_trials)
        gp.suggest_every_param = every_param
        return gp
    if sampler == "nsga2":
        # Ray Tune pickles the searcher with its experiment state; Optuna 5.1's NSGA-II holds a
        # threading.Lock, which does not pickle: pickle it without, restore it with a new one
        copyreg.pickle(optuna.samplers.NSGAIISampler, _reduce_ga_sampler)
        return optuna.samplers.NSGAIISampler(seed=seed)
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10 if startup_trials is None else startup_trials)
    raise ValueError(f"unknown optuna sampler {sampler!r}; available: {', '.join(SAMPLERS)}")


def _reduce_ga_sampler(sampler):
    return _restore_ga_sampler, (type(sampler), {k: v for k, v in vars(sampler).items() if k != "_thread_lock"})


def _restore_ga_sampler(cls, state: dict):
    import threading

    sampler = cls.__new__(cls)
    sampler.__dict__.update(state)
    sampler._thread_lock = threading.Lock()
    return sampler


def _labels(options: list[dict]) -> list[str]:
    counts: dict[str, int] = {}
    out = []
    for o in options:
        n = counts.get(o["name"], 0)
        out.append(o["name"] if n == 0 else f"{o['name']}#{n}")
        counts[o["name"]] = n + 1
    return out


def trial_label(point: dict) -> str:
    def comp(c):
        ps = ",".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(c["params"].items()))
        return f"{c['name']}({ps})" if ps else c["name"]

    if point.get("baseline"):
        return "no-unlearn"
    return f"{comp(point['combiner'])}/{comp(point['objective'])}/{comp(point['lr_rule'])}/lr={point['lr']:.4g}/seed={point['seed']}"


def check_search(spec, add: Callable[[tuple, str], None]) -> None:
    """The spec's search and scheduler sections: the algorithm and sampler, optuna's objectives and
    ASHA's metric (each among eval.metrics), ASHA's evaluation points."""
    from pareto.metrics import METRICS as metrics
    from pareto.metrics.robustness import ROBUSTNESS_METRICS, robustness_columns

    s, sch = spec.search, spec.scheduler
    if s.algorithm not in ALGORITHMS:
        add(("search", "algorithm"), f"unknown search algorithm {s.algorithm!r}."
            f"{did_you_mean(s.algorithm, list(ALGORITHMS))} Available: {', '.join(ALGORITHMS)}")
    if s.num_samples < 1:
        add(("search", "num_samples"), f"must be ≥ 1, got {s.num_samples}")
    if s.algorithm == "optuna":
        if not s.objectives:
            add(("search", "objectives"), "optuna needs the metrics to optimise, e.g. objectives: "
                                          "[rouge_f, utility_r] (two or more: multi-objective)")
        if s.sampler not in SAMPLERS:
            add(("search", "sampler"), f"optuna sampler must be gp, tpe or nsga2, got {s.sampler!r}."
                f"{did_you_mean(str(s.sampler), list(SAMPLERS))}")
    elif s.objectives:
        add(("search", "objectives"), f"objectives steer optuna only; search.algorithm is {s.algorithm!r}")
    robust = robustness_columns(spec.eval.robustness, spec.eval.metrics)  # final values only: optuna, not ASHA
    for i, name in enumerate(s.objectives):
        if name in ROBUSTNESS_METRICS and name not in robust:
            add(("search", "objectives", i), f"objective {name!r} is an eval.robustness column this spec does not "
                                             f"compute; it computes: {', '.join(robust) or 'none (no eval.robustness)'}"
                                             " (docs/robustness.md)")
        elif name not in spec.eval.metrics and name not in robust:
            hint = "add it to eval.metrics" if name in metrics else f"{did_you_mean(name, metrics.names())}".strip()
            add(("search", "objectives", i), f"objective {name!r} is not among eval.metrics; {hint}")
    if len(set(s.objectives)) != len(s.objectives):
        add(("search", "objectives"), "each objective once")
    if sch.name not in ("none", "asha"):
        add(("scheduler", "name"), f"unknown scheduler {sch.name!r}.{did_you_mean(sch.name, ['none', 'asha'])} "
                                   "Available: none, asha")
    if sch.name == "asha":
        if not sch.metric:
            add(("scheduler", "metric"), "asha compares trials on one metric: set scheduler.metric (e.g. utility_r)")
        elif sch.metric in ROBUSTNESS_METRICS:
            add(("scheduler", "metric"), f"asha compares trials at evaluation points, and {sch.metric!r} (an "
                                         "eval.robustness column) exists only at a trial's end: choose a metric of "
                                         "eval.metrics (optuna's search.objectives may name it)")
        elif sch.metric not in spec.eval.metrics:
            add(("scheduler", "metric"), f"{sch.metric!r} is not among eval.metrics; add it there")
        if spec.eval.every < 1:
            add(("eval", "every"), "asha stops trials at evaluation points: set eval.every (steps between "
                                   "evaluations), e.g. a quarter of unlearn.steps")
        if sch.grace_period < 1 or sch.reduction_factor <= 1:
            add(("scheduler",), "grace_period must be ≥ 1 and reduction_factor > 1")
