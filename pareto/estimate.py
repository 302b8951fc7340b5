"""What a spec will cost on this machine, before it runs: `estimate(spec, points)`.

    from pareto.spec import load_spec
    from pareto.estimate import estimate
    spec, points = load_spec("sweeps/quickstart.yaml")
    print(estimate(spec, points))      # 1-3 lines; .lines() gives them as a list

Counts come from the spec and the data: rows trained on, the epoch cap (or the fixed epochs),
trials, steps per trial (`pareto.spec.total_steps`), evaluations per trial. Times come from a
short measurement now, on this machine, with the spec's model shape on the data's real token
lengths and a randomly initialised model (nothing is built or cached): a few training batches of
the target build and one forward of its accuracy check, a few unlearning steps of each distinct
(objective, lr rule) of the trials, one evaluation of at most one batch per split, and
`eval.robustness`'s attacks (their evaluations on one batch, the quantisation, two relearning
steps), each scaled by the counts. A model that never emits EOS generates to `eval.max_new_tokens`, so the
evaluation estimate leans high. A busy machine gives a slower measurement: that is the point.

A target already in the cache costs 0. A build "until memorised" is an upper bound at the epoch
cap (the build stops as soon as the answers are memorised, usually far earlier). Trials run
`resources.cpus_per_trial` CPUs each on a local Ray, so their wall time divides by the number
that fit side by side.

Not estimated (the reason is in the lines): data that is not on this machine (a hub id: it is
not downloaded to estimate), a real base model that is not built yet (it is not downloaded or
loaded to estimate) and the trials of a real base, MUSE-News, image data, and any run on a
machine with a GPU (the measurement runs on the CPU).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

from pareto.models.clock import format_duration
from pareto.estimate_workload import STEP_BATCH, Build, NotEstimated, Workload, spread, workload
from pareto.sources import source_of
from pareto.spec import SweepSpec, total_steps

__all__ = ["Estimate", "BuildEstimate", "TrialsEstimate", "estimate", "format_duration"]

#: Ray's start-up and the trial workers' first imports of torch and transformers, paid once per
#: sweep and once per worker (docs/benchmarks.md, "Sweeps": ≈ 10 s and ≈ 4 s of one core), and
#: the driver's own imports, target check, frontier and Ray's shut-down (≈ 5 s, measured around
#: `pareto sweep sweeps/quickstart.yaml`: 42.6 s in all, 36 s by its own count).
RAY_START_S, WORKER_START_S, DRIVER_S = 10.0, 4.0, 5.0
#: Two trials side by side on two cores run 1.36-1.70x as fast as one after another, not 2x (the
#: driver shares the cores; docs/benchmarks.md, "Sweeps").
PARALLEL_EFFICIENCY = 0.8
#: Per trial besides its steps and evaluations: loading the target, Tune's bookkeeping, the
#: results' Parquet parts (0.59 s measured, docs/benchmarks.md) and encoding the rows.
TRIAL_OVERHEAD_S = 1.0


@dataclass(frozen=True)
class BuildEstimate:
    what: str  # "target" or "Retrain reference"
    seconds: float | None = None  # None: not estimated (see reason); 0 when cached
    cached: bool = False
    rows: int | None = None  # examples trained on
    unit: str = "QA pairs"
    epochs: int | None = None  # the cap (until_memorised) or the fixed number
    until_memorised: bool = False
    epoch_seconds: float | None = None  # training + the accuracy check
    reason: str = ""

    def line(self) -> str:
        if self.cached:
            return f"{self.what}: cached (0s)"
        if self.seconds is None:
            return f"{self.what}: not estimated ({self.reason})"
        if self.until_memorised:
            return (f"{self.what} build ≤ {format_duration(self.seconds)} ({self.rows} {self.unit}, ≤ {self.epochs} "
                    f"epochs of ~{format_duration(self.epoch_seconds)}; it stops once memorised)")
        return (f"{self.what} build ≈ {format_duration(self.seconds)} ({self.rows} {self.unit}, {self.epochs} "
                f"epochs of ~{format_duration(self.epoch_seconds)})")


@dataclass(frozen=True)
class TrialsEstimate:
    n_trials: int  # the baseline included
    n_baseline: int  # trials with no unlearning steps (the No-unlearn baseline)
    steps: int | None  # unlearning steps of every other trial
    evaluations: int  # per trial
    parallel: int  # trials side by side
    step_seconds: float | None = None  # mean over the trials' (objective, lr rule)
    eval_seconds: float | None = None
    seconds: float | None = None  # wall time of all trials
    reason: str = ""
    robustness_seconds: float = 0.0  # eval.robustness's attacks, once per trial (0: no such section)

    def line(self) -> str:
        head = f"{self.n_trials} trials"
        if self.seconds is None:
            steps = f"{self.steps} steps each" if self.steps is not None else "steps unknown"
            return f"{head} ({steps}): not estimated ({self.reason})"
        evals = f"{self.evaluations} evaluations" if self.evaluations > 1 else "1 evaluation"
        attacks = (f" + robustness attacks of ~{format_duration(self.robustness_seconds)}"
                   if self.robustness_seconds else "")
        return (f"{head} ≈ {format_duration(self.seconds)} ({self.parallel} at a time; {self.steps} steps of "
                f"~{format_duration(self.step_seconds)} + {evals} of ~{format_duration(self.eval_seconds)}"
                f"{attacks} each)")


@dataclass(frozen=True)
class Estimate:
    machine: str  # "2 CPUs, no GPU, load 1.9"
    builds: tuple[BuildEstimate, ...]
    trials: TrialsEstimate

    @property
    def seconds(self) -> float | None:
        """The whole run (builds, then trials), None when a part is not estimated."""
        parts = [b.seconds for b in self.builds] + [self.trials.seconds]
        return None if any(p is None for p in parts) else sum(parts)

    @property
    def upper_bound(self) -> bool:
        return any(b.until_memorised and not b.cached for b in self.builds)

    def lines(self) -> list[str]:
        builds = ", ".join(b.line() for b in self.builds)
        out = [f"estimate on this machine ({self.machine}): {builds}", self.trials.line()]
        if self.seconds is not None:
            bound = "at most " if self.upper_bound else "about "
            out[-1] += f" — {bound}{format_duration(self.seconds)} in all"
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def estimate(spec: SweepSpec, points: Sequence[dict], *, unless_cached: bool = False) -> Estimate | None:
    """The estimate of running `spec` over `points` (as `pareto.spec.load_spec` returns them);
    `unless_cached`: None, without measuring anything, when every target it needs is cached."""
    n_trials = len(points) if spec.search.algorithm != "optuna" else spec.search.num_samples + spec.search.baseline
    n_baseline = sum(bool(p.get("baseline")) for p in points)
    parallel = _parallel(spec)
    try:
        work = workload(spec)
    except (NotEstimated, OSError, ValueError) as exc:  # data that cannot be read says so in the line
        if unless_cached:  # whether it is cached is unknown too: nothing useful to say
            return None
        steps = _steps_without_data(spec)
        trials = TrialsEstimate(n_trials, n_baseline, steps, _evaluations(spec, steps or 0), parallel,
                                reason="as the target")
        reason = str(exc) if isinstance(exc, NotEstimated) else f"the data could not be read: {exc}"
        return Estimate(_machine(), (BuildEstimate("target", reason=reason),), trials)
    if unless_cached and all(b.cached for b in work.builds):
        return None
    builds = _build_estimates(work)
    return Estimate(_machine(), builds, _trials_estimate(spec, points, work, n_trials, n_baseline, parallel))


#: A run estimated to take longer than this on a machine without a GPU gets `long_run_hint`.
LONG_RUN_SECONDS = 3600


def long_run_hint(spec: SweepSpec, est: Estimate) -> str | None:
    """For a run estimated at hours on a CPU: where it belongs, and the laptop-sized variant."""
    if est.seconds is None or est.seconds < LONG_RUN_SECONDS or torch.cuda.is_available():
        return None
    smaller = source_of(spec.data.source).smaller_hint(asdict(spec.data))
    bound = " at the epoch cap (builds stop once memorised, often far earlier)" if est.upper_bound else ""
    return (f"that can be hours on this CPU{bound}: run it on a GPU (a Ray cluster: --address, docs/cluster.md)"
            f"{smaller}. Targets are cached, so a build is paid once")


# ---------------------------------------------------------------------------------------------
# counts


def _steps_without_data(spec: SweepSpec) -> int | None:
    """Steps per trial when the data is not read: known for `steps`, and for a source that knows its
    forget set's size (TOFU's published sizes)."""
    unlearn = asdict(spec.unlearn)
    if not unlearn.get("epochs"):
        return total_steps(unlearn, 0)
    n_forget = source_of(spec.data.source).forget_rows(asdict(spec.data))
    return None if n_forget is None else total_steps(unlearn, n_forget)


def _evaluations(spec: SweepSpec, steps: int) -> int:
    """Evaluations of a trial of `steps` steps: every `eval.every` steps before the last, and the last."""
    every = spec.eval.every
    return 1 + ((steps - 1) // every if every and steps > 0 else 0)


def _parallel(spec: SweepSpec) -> int:
    """Trials side by side on a local Ray: as many as fit in this machine's CPUs."""
    fit = max(1, int((os.cpu_count() or 1) // spec.resources.cpus_per_trial))
    return min(fit, spec.resources.max_concurrent or fit)


def _machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count() or 1} CPUs, {gpu}, load {os.getloadavg()[0]:.1f}"


# ---------------------------------------------------------------------------------------------
# measurements


def _timed(work: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    work()
    return time.perf_counter() - t0


def _build_estimates(work: Workload) -> tuple[BuildEstimate, ...]:
    """Every build of the spec; builds of one shape share one measurement of the rates."""
    rates = None
    out = []
    for b in work.builds:
        base = dict(what=b.what, cached=b.cached, unit=b.unit, epochs=b.epochs, until_memorised=b.until,
                    rows=len(b.lengths) or None)
        if b.cached:
            out.append(BuildEstimate(seconds=0.0, **base))
            continue
        if work.new_model is None:
            out.append(BuildEstimate(reason=work.reason, **base))
            continue
        try:
            rates = rates or _build_rates(b, work)
        except Exception as exc:  # an estimate must never stop the run it estimates
            out.append(BuildEstimate(reason=f"the measurement failed: {type(exc).__name__}: {exc}", **base))
            continue
        epoch = _epoch_seconds(b, *rates)
        out.append(BuildEstimate(seconds=epoch * b.epochs, epoch_seconds=epoch, **base))
    return tuple(out)


def _epoch_tokens(b: Build) -> tuple[list[list[int]], list[int], list[int]]:
    """An epoch's training batches (as train_on_answers cuts epoch 1), their padded tokens, and
    the padded tokens of the accuracy check's length-sorted chunks."""
    from pareto.models._build import epoch_batches

    t = b.train
    batches = epoch_batches(b.lengths, t["batch_size"], torch.Generator().manual_seed(t["seed"]),
                            t["group_by_length"])
    order = sorted(b.lengths)
    chunks = [order[s:s + b.eval_batch_size] for s in range(0, len(order), b.eval_batch_size)]
    return batches, [len(i) * max(b.lengths[j] for j in i) for i in batches], [len(c) * c[-1] for c in chunks]


def _epoch_seconds(b: Build, train_rate: float, check_rate: float) -> float:
    """Training tokens and check tokens of an epoch at the measured rates. The check runs after
    every epoch once the loss is low, so the bound at the cap counts it every epoch."""
    _, tokens, check_tokens = _epoch_tokens(b)
    return train_rate * sum(tokens) + check_rate * sum(check_tokens)


def _build_rates(b: Build, work: Workload) -> tuple[float, float]:
    """Seconds per padded token of training (three of the epoch's batches of typical size, after
    one untimed batch that pays the first-call set-up) and of the accuracy check (one chunk of
    at most 64 examples of median length), on random tokens of the real lengths."""
    from pareto.data.qa import IGNORE, Encoded
    from pareto.models._build import _batch_loss_backward, answer_metrics, isolated_torch_state, make_optimizer

    t, pad_id = b.train, work.tokenizer.pad_token_id
    batches, tokens, _ = _epoch_tokens(b)
    typical = sorted(range(len(batches)), key=lambda i: abs(tokens[i] - sum(tokens) / len(tokens)))[:3]
    with isolated_torch_state(b.threads):
        torch.manual_seed(0)
        model = work.new_model()
        vocab = model.config.vocab_size

        def example(n: int) -> Encoded:  # answer tokens scored, as half of a QA example roughly is
            ids = torch.randint(4, vocab, (n,)).tolist()
            return Encoded(ids, [IGNORE] * (n // 2) + ids[n // 2:], n // 2)

        opt = make_optimizer(t["optimizer"], model.parameters(), t["lr"], t["weight_decay"])

        def train(idx: list[int]) -> None:
            opt.zero_grad(set_to_none=True)
            _batch_loss_backward(model, [example(b.lengths[i]) for i in idx], pad_id, "cpu", t["micro_batch_size"])
            opt.step()

        train(batches[typical[0]])
        train_rate = _timed(lambda: [train(batches[i]) for i in typical]) / sum(tokens[i] for i in typical)
        n = min(64, len(b.lengths))
        median = sorted(b.lengths)[len(b.lengths) // 2]
        check = [example(median) for _ in range(n)]
        check_rate = _timed(lambda: answer_metrics(model, check, pad_id, batch_size=n)) / (n * median)
    return train_rate, check_rate
def _trials_estimate(spec: SweepSpec, points: Sequence[dict], work: Workload, n_trials: int, n_baseline: int,
                     parallel: int) -> TrialsEstimate:
    steps = total_steps(asdict(spec.unlearn), len(work.forget))  # a QA pair is one forget example
    base = dict(n_trials=n_trials, n_baseline=n_baseline, steps=steps, evaluations=_evaluations(spec, steps),
                parallel=parallel)
    if work.new_model is None:
        return TrialsEstimate(reason=work.reason, **base)
    from pareto.models._build import isolated_torch_state

    try:
        with isolated_torch_state(spec.unlearn.threads or max(1, int(spec.resources.cpus_per_trial))):
            torch.manual_seed(0)
            model = work.new_model()
            step = _step_seconds(spec, work, model, _unlearning_points(spec, points)) if steps else 0.0
            evaluation = _eval_seconds(spec, work, model)
            attacks = _robustness_seconds(spec, work, model) if spec.eval.robustness else 0.0
    except Exception as exc:  # an estimate must never stop the run it estimates
        return TrialsEstimate(reason=f"the measurement failed: {type(exc).__name__}: {exc}", **base)
    every_trial = TRIAL_OVERHEAD_S + base["evaluations"] * evaluation + attacks
    busy = n_trials * every_trial + (n_trials - n_baseline) * steps * step
    side_by_side = parallel * PARALLEL_EFFICIENCY if parallel > 1 else 1
    seconds = RAY_START_S + WORKER_START_S + DRIVER_S + busy / side_by_side
    return TrialsEstimate(step_seconds=step, eval_seconds=evaluation, seconds=seconds, robustness_seconds=attacks,
                          **base)


def _unlearning_points(spec: SweepSpec, points: Sequence[dict]) -> list[dict]:
    """The points that unlearn; optuna's are drawn as it goes, so a few random draws stand in."""
    unlearning = [p for p in points if not p.get("baseline")]
    if unlearning or spec.search.algorithm != "optuna":
        return unlearning
    from pareto.search import sample_random
    from pareto.spec import search_space

    return sample_random(search_space(spec), 3, spec.search.seed)


def _step_seconds(spec: SweepSpec, work: Workload, model, points: list[dict]) -> float:
    """Seconds per unlearning step, averaged over the points: the real engine with each distinct
    (objective, lr rule) for three steps, on batches of at most STEP_BATCH rows of the data
    (scaled up to the spec's batch by rows). A rule that probes every K steps (AutoLR, from step
    0) counts step 0's extra time once per K steps."""
    import json

    from trainables.unlearn import Target, batch_fn, build_components

    from pareto.data.encode import encode_rows
    from pareto.data.qa import Batches
    from pareto.lm import LM_TASK, answer_ce

    s, tok = work.settings, work.tokenizer
    unlearn = asdict(spec.unlearn)
    full = (unlearn["batch_size"], unlearn["retain_batch_size"] or unlearn["batch_size"])
    rows = [min(b, max(STEP_BATCH, unlearn["grad_accum"])) for b in full]
    scale = (full[0] / rows[0] + full[1] / rows[1]) / 2  # half of a step is the forget batch, half the retain
    unlearn.update(batch_size=rows[0], retain_batch_size=rows[1])

    def streams(batch_size: int, retain_batch_size: int, seed: int):
        encode = lambda rows: encode_rows(tok, rows, max_length=s.max_length or 128,  # noqa: E731
                                          template=s.template, add_bos=s.add_bos)
        return (Batches(encode(spread(work.forget, 4 * batch_size)), batch_size, tok.pad_token_id, seed),
                Batches(encode(spread(work.retain, 4 * retain_batch_size)), retain_batch_size, tok.pad_token_id,
                        seed + 1))

    target = Target(model, LM_TASK, tok, work.eval_splits, s, streams)
    batch, every = batch_fn(unlearn, "cpu"), unlearn["measure_after_every"]
    kinds: dict[str, list[dict]] = {}
    for p in points:
        kinds.setdefault(json.dumps([p["objective"], p["lr_rule"]], sort_keys=True), []).append(p)
    answer_ce(model, batch(streams(rows[0], 1, 0)[0])).backward()  # first-call set-up costs, untimed
    model.zero_grad(set_to_none=True)
    per_step = []
    for group in kinds.values():
        forget, retain, engine = build_components(target, model, unlearn, group[0], "cpu")
        times = [_timed(lambda k=k: engine.step(batch(retain), batch(forget),
                                                measure_after=bool(every) and k % every == 0)) for k in range(3)]
        probe_every = int(getattr(engine.lr_rule, "every", 0) or 0)
        usual = sum(times[1:]) / 2
        step = usual + max(times[0] - usual, 0.0) / probe_every if probe_every else sum(times) / 3
        per_step += [step * scale] * len(group)
    return sum(per_step) / len(per_step)


def _eval_seconds(spec: SweepSpec, work: Workload, model) -> float:
    """One evaluation: every metric of the spec on at most one batch (`eval.batch_size` items,
    evenly spread) of each split it reads, scaled by the items of those splits."""
    import numpy as np

    from pareto.metrics import METRICS, EvalContext, evaluate

    needs = {split for name in spec.eval.metrics for split in METRICS.get(name).needs}
    n = spec.eval.batch_size
    full = work.eval_splits
    sub = {k: spread(v, n) for k, v in full.items()}
    reference = {"forget_truth_ratios": np.ones(len(sub["forget"])).tolist()}  # forget_quality's Retrain values
    ctx = EvalContext(model, work.tokenizer, sub, work.settings, reference=reference)
    seconds = _timed(lambda: evaluate(ctx, spec.eval.metrics))
    used = needs & set(full) or set(full)
    return seconds * sum(len(full[k]) for k in used) / max(sum(len(sub[k]) for k in used), 1)


def _robustness_seconds(spec: SweepSpec, work: Workload, model) -> float:
    """eval.robustness's attacks of one trial (pareto.metrics.robustness), measured piece by piece
    and scaled: the forget metrics on at most one batch of the evaluated half (scaled to the whole
    half) once as it is and once per attack (per point of a relearning curve); with `quantize`, a
    copy quantised and the retain metrics once more; with `relearn_steps` K (or a curve up to K), a
    copy and K Adam steps on the relearn half (two timed after one untimed, scaled to K)."""
    import copy

    from pareto.metrics import EvalContext, evaluate
    from pareto.metrics.quantize import quantize_model
    from pareto.metrics.robustness import FORGET_METRICS, RETAIN_METRICS, relearn, relearn_points, split_forget

    cfg, n = spec.eval.robustness, spec.eval.batch_size
    relearn_rows, half = split_forget(work.eval_splits["forget"])
    forget_names = [m for m in FORGET_METRICS if m in spec.eval.metrics]
    retain_names = [m for m in RETAIN_METRICS if m in spec.eval.metrics]

    def scaled_eval(split: str, rows: list[dict], names: list[str]) -> float:
        sub = spread(rows, n)
        ctx = EvalContext(model, work.tokenizer, {**work.eval_splits, split: sub}, work.settings, reference={})
        return _timed(lambda: evaluate(ctx, names)) * len(rows) / max(len(sub), 1) if names else 0.0

    points = relearn_points(cfg["relearn_steps"]) if cfg.get("relearn_steps") is not None else []
    relearnt = len([k for k in points if k]) or len(points)  # a curve's K = 0 is the half as it is
    evaluations = 1 + sum(1 for key in ("paraphrase", "quantize") if cfg.get(key)) + relearnt
    seconds = scaled_eval("forget", half, forget_names) * evaluations
    if cfg.get("quantize"):
        seconds += _timed(lambda: quantize_model(copy.deepcopy(model), cfg["quantize"]))
        seconds += scaled_eval("retain", work.eval_splits["retain"], retain_names)
    steps = points[-1] if points else 0
    if steps:
        copy_ = copy.deepcopy(model)
        batch = spec.unlearn.batch_size
        relearn(copy_, work.tokenizer, relearn_rows, work.settings, 1, 1e-4, batch)  # first-call set-up, untimed
        seconds += _timed(lambda: relearn(copy_, work.tokenizer, relearn_rows, work.settings, 2, 1e-4, batch)) / 2 * steps
    return seconds
