"""Run a sweep on Ray Tune and keep its results in Parquet, resumably.

The driver builds (or reuses) the target once, then fans the spec's points out as Ray Tune trials
of `trainables.unlearn.trainable`: the fixed points of a grid or a random search through
`tune.grid_search`, Optuna's points through `OptunaSearch` as it asks for them, ASHA stopping
poor trials at evaluation points when the spec asks. Every row a trial reports reaches the
driver through a Tune callback (`pareto.results.collect.Collector`, so it works the same on a
laptop and on a cluster), and each finished trial is written at once as its own part,
`<storage>/<name>/parts/<trial id>/`. The checks before any work are `pareto.preflight`; the
sweep folder's state and what `--resume` may do, `pareto.results.state`.

    <storage>/<name>/sweep.json          the spec, its hash, the points, complete or not
    <storage>/<name>/parts/t003/*.parquet  one finished trial (trials.parquet written last)
    <storage>/<name>/{steps,evals,items,trials}.parquet   every part, once all are done

A sweep interrupted in any way (Ctrl-C, a killed driver, a lost node) keeps its finished parts;
`--resume` runs only the trials without one, and running a complete sweep again does nothing.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
import warnings
from typing import Callable

import ray
from ray import tune

import pareto
from pareto.preflight import preflight
from pareto.prepare import prepare_target
from pareto.results.collect import Collector
from pareto.results.schema import METRICS
from pareto.results.state import Sweep, SweepStateError, open_sweep
from pareto.results.store import Store, StorageError
from pareto.results.writer import consolidate
from pareto.search import OptunaSpace, make_sampler
from pareto.spec import SweepSpec, search_space, total_steps

Log = Callable[[str], None]


class PreflightError(SweepStateError):
    """What the spec asks for cannot run here: every problem found before any work, listed."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


def versions() -> dict:
    import torch
    import transformers

    return {"pareto_version": pareto.__version__, "torch_version": torch.__version__,
            "transformers_version": transformers.__version__, "ray_version": ray.__version__}


def metric_key(name: str) -> tuple[str, str]:
    """The reported key and Tune mode of a metric ("zero" metrics are searched on |value|)."""
    direction = METRICS[name]
    return (f"{name}_abs", "min") if direction == "zero" else (name, direction)


def run_sweep(spec: SweepSpec, points: list[dict], *, address: str | None = None, storage: str | None = None,
              resume: bool = False, log: Log = print, source: str | None = None) -> Sweep:
    """Run (or resume, or find complete) the sweep of `spec`; returns where its results are.

    Raises PreflightError (every problem at once) before any work when the spec's data, target,
    storage or resources cannot work here; `source` is the spec's file, for line numbers."""
    from trainables.unlearn import trainable

    t0 = time.time()
    found = preflight(spec, source=source, storage=storage, address=address)
    from pareto.spec import precision_warnings

    for warning in found.warnings + precision_warnings(spec, points):
        log(f"warning: {warning}")
    if found.problems or found.environment:
        raise PreflightError(source or spec.name, found.problems + found.environment)
    store = Store(storage or spec.storage.root)
    sweep, state, complete = open_sweep(spec, points, store, resume)
    if complete:
        log(f"{store.display(spec.name)} is complete ({len(sweep.finished_parts())} trials): nothing to do.")
        return sweep
    _init_ray(address)
    _check_resources(spec, address, log)
    if state.pop("replaced", False):
        log(f"{store.display(spec.name)}: replacing an earlier run of another spec that finished no trial")
    finished = sweep.finished_parts()
    if state.pop("new", False):
        store.check_writable(spec.name)  # before the target is built: fail early
    elif not finished and not resume:
        log(f"{store.display(spec.name)}: an earlier run finished no trial; starting it again")
    state["driver"] = {"host": socket.gethostname(), "pid": os.getpid()}  # see pareto.results.state._live_driver
    sweep.write_state(state)
    points = state["points"]  # a resumed random search keeps the points it drew
    todo = [dict(p, index=i) for i, p in enumerate(points) if finished.get(f"t{i:03d}", "failed") == "failed"]
    n_optuna = 0
    if spec.search.algorithm == "optuna":
        mixes = sweep.mixes()  # pareto mix adds points after the sweep's trials: not optuna's samples
        n_optuna = spec.search.num_samples - sum(1 for tid, st in finished.items()
                                                 if int(tid[1:]) >= len(points) and st != "failed" and tid not in mixes)
    if finished:
        log(f"resuming {store.display(spec.name)}: {len(finished)} trial(s) already done, "
            f"{len(todo) + max(n_optuna, 0)} to run")

    if spec.target.source == "train":  # a trained target can take hours to build (the embedded one: seconds)
        from pareto.estimate import estimate, long_run_hint

        est = estimate(spec, points, unless_cached=True)
        for line in [*est.lines(), long_run_hint(spec, est)] if est else []:
            if line:
                log(line)
    prepared = prepare_target(spec, log)
    manifest = prepared.manifest
    log(f"target: {prepared.target_dir} ({manifest.get('n_params', 0):,} parameters, answer accuracy "
        f"{manifest.get('answer_accuracy', float('nan')):.3f}, {manifest.get('n_forget')} forget / "
        f"{manifest.get('n_retain')} retain rows)")
    setup = {"spec": spec.to_dict(), "target_dir": str(prepared.target_dir), "eval_splits": prepared.eval_splits,
             "reference": prepared.reference, "target_archive": _ship_target(prepared.target_dir, address, log),
             "results_dir": sweep.store.display(sweep.folder)}  # where eval.keep_checkpoints writes (a path or URI)
    if spec.resources.workers_per_trial:  # Ray Train keeps a multi-worker trial's checkpoints beside Tune's
        local = sweep.store.local_path(f"{sweep.folder}/.ray")
        setup["train_storage"] = f"{local.resolve() if local else sweep.store.display(f'{sweep.folder}/.ray')}/train"
        setup["run_name"] = f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    meta = {"spec_hash": spec.hash(), "spec": json.dumps(spec.to_dict(), sort_keys=True),
            "data_hash": manifest["data_hash"], "target_hash": manifest["hash"],
            "add_bos": manifest.get("add_bos", True), "prompt_template": manifest.get("template", "plain"),
            "search": spec.search.algorithm, "run_id": state["created"], **versions()}
    if prepared.reference.get("retain_model"):  # the Retrain model's own values, once per sweep (kept for resumes)
        if "reference_metrics" not in state:
            from pareto.prepare import retrain_metrics

            log("evaluating the Retrain model with the sweep's metrics (the reference of first-below-retain)")
            state["reference_metrics"] = retrain_metrics(setup, spec.eval.metrics)
            sweep.write_state(state)
        meta["reference_metrics"] = json.dumps(state["reference_metrics"], sort_keys=True)

    total = len(todo) + max(n_optuna, 0)
    collector = Collector(sweep, spec, meta, log, total)
    # a trial of several workers is a driver that needs no CPU: its Ray Train workers hold the trial's
    # resources (Tune wants the driver to ask for something: one byte of memory)
    trial_resources = ({"cpu": 0, "memory": 1} if spec.resources.workers_per_trial else
                       {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial})
    trainable_fn = tune.with_resources(tune.with_parameters(trainable, setup=setup), trial_resources)
    log(f"running {total} trial(s) on Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs, "
        f"{ray.cluster_resources().get('GPU', 0):g} GPUs, {len(ray.nodes())} node(s))")
    n_forget = manifest.get("n_forget_examples", manifest.get("n_forget"))  # text data: windows, not articles
    if todo:
        _fit(spec, trainable_fn, {"point": tune.grid_search(todo)}, None, 1, collector, sweep, "fixed", n_forget)
    if n_optuna > 0:
        start = max([len(points) - 1] + [int(t[1:]) for t in finished] + list(collector.indices)) + 1
        _fit(spec, trainable_fn, None, _optuna(spec, sweep, start), n_optuna, collector, sweep, "optuna", n_forget)

    finished = sweep.finished_parts()
    failed = sorted(t for t, st in finished.items() if st == "failed")
    expected = len(points) + (spec.search.num_samples if spec.search.algorithm == "optuna" else 0)
    if len(finished) < expected:  # Tune stopped early (Ctrl-C, SIGTERM): the finished parts stay
        raise KeyboardInterrupt(f"{len(finished)} of {expected} trials finished")
    consolidate(sweep.store, sweep.folder, {t: sweep.part(t) for t in finished}, held=collector.held)
    state["complete"] = not failed
    sweep.write_state(state)
    log(f"{len(finished)} trials ({len(failed)} failed) in {time.time() - t0:.0f}s → {store.display(spec.name)}")
    if failed:
        log(f"failed: {', '.join(failed)} — see the error column of trials.parquet; `--resume` retries them")
    return sweep


#: Targets up to this size travel to cluster nodes through Ray's object store; larger ones need a
#: cache every node shares (PARETO_CACHE on a shared mount, docs/cluster.md).
SHIP_LIMIT_BYTES = 4 * 2**30


def _ship_target(target_dir, address: str | None, log: Log):
    """On a multi-node cluster, the target as an object-store archive for nodes that lack it."""
    if len(ray.nodes()) < 2 and not address:
        return None
    from pathlib import Path

    from pareto.results.archive import pack_directory

    size = sum(p.stat().st_size for p in Path(target_dir).rglob("*") if p.is_file())
    if size > SHIP_LIMIT_BYTES:
        log(f"target is {size / 2**30:.1f} GiB: not shipped through Ray's object store; every node must "
            f"see {target_dir} (a shared PARETO_CACHE, docs/cluster.md)")
        return None
    return ray.put(pack_directory(target_dir))


class _OneLine(logging.Filter):
    """Ray Tune's own errors (e.g. it cannot save its state to a full disk) as one line, no traceback:
    pareto says what happened and what to do once the sweep stops."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()} {type(exc).__name__}: {exc}", ()
            record.exc_info = record.exc_text = None
        return True


_TUNE_LOGGERS = ("ray.tune.execution.experiment_state", "ray.tune.execution.tune_controller",
                 "ray.train._internal.syncer", "ray.train._internal.storage")


def _init_ray(address: str | None) -> None:
    for name in _TUNE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLine) for f in logger.filters):
            logger.addFilter(_OneLine())
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # pareto prints its own progress lines
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # rows reach the driver via Collector
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")  # a diverged trial's last report has no metrics
    if ray.is_initialized():
        return
    if address or os.environ.get("RAY_ADDRESS"):  # --address, or inside a Ray job / on a started head
        ray.init(address=address or "auto", logging_level="ERROR", log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)


def _check_resources(spec: SweepSpec, address: str | None, log: Log) -> None:
    """A trial that asks for more than the cluster has would wait forever: say so now instead."""
    have = ray.cluster_resources()
    where = f"the Ray cluster at {address}" if address else "this machine"
    r = spec.resources
    if r.workers_per_trial:
        from pareto.resources import parallel_resource_problems

        found = parallel_resource_problems(spec, have.get("CPU", 0), have.get("GPU", 0), where)
        if found and address and r.gpus_per_trial > have.get("GPU", 0):  # an autoscaler may add GPU nodes
            log(f"warning: {where} has {have.get('GPU', 0):g} GPU(s) now; trials wait until an autoscaler adds them")
        elif found:
            raise SweepStateError(" ".join(found))
        return
    if r.gpus_per_trial > have.get("GPU", 0):
        if address:  # an autoscaling cluster may add GPU nodes once trials ask for them
            log(f"warning: {where} has {have.get('GPU', 0):g} GPU(s) now; trials wait until an autoscaler adds them")
            return
        raise SweepStateError(f"resources.gpus_per_trial is {r.gpus_per_trial:g} but {where} has "
                              f"{have.get('GPU', 0):g} GPU(s). Run on a GPU machine or cluster (--address), or "
                              f"--set resources.gpus_per_trial=0 to run on CPU.")
    if r.cpus_per_trial > have.get("CPU", 0):
        raise SweepStateError(f"resources.cpus_per_trial is {r.cpus_per_trial:g} but {where} has "
                              f"{have.get('CPU', 0):g} CPU(s). Lower it with --set resources.cpus_per_trial=1.")


def _fit(spec: SweepSpec, trainable_fn, param_space, search_alg, num_samples: int, collector, sweep: Sweep, tag: str,
         n_forget: int | None = None):
    scheduler = None
    if spec.scheduler.name == "asha":
        from ray.tune.schedulers import ASHAScheduler

        key, mode = metric_key(spec.scheduler.metric)
        steps = total_steps(spec.to_dict()["unlearn"], int(n_forget or 1))
        n_evals = -(-steps // spec.eval.every) if spec.eval.every else 1
        scheduler = ASHAScheduler(time_attr="training_iteration", metric=key, mode=mode, max_t=max(n_evals, 1),
                                  grace_period=spec.scheduler.grace_period,
                                  reduction_factor=spec.scheduler.reduction_factor)
    # Tune's own state and checkpoints: beside the results (a URI store keeps them in the bucket, where
    # every node of a cluster can reach them)
    local = sweep.store.local_path(f"{sweep.folder}/.ray")
    ray_dir = str(local.resolve()) if local else sweep.store.display(f"{sweep.folder}/.ray")
    stopper = _StopOnStorageError(collector)
    tuner = tune.Tuner(
        trainable_fn,
        param_space=param_space or {},
        # reuse_actors: a worker process keeps torch imported between trials (every trial reloads the
        # target and reseeds everything, so results do not depend on which process ran it)
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler, num_samples=num_samples,
                                    max_concurrent_trials=_max_concurrent(spec), reuse_actors=True),
        run_config=tune.RunConfig(name=f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=ray_dir,
                                  callbacks=[collector], verbose=0, stop=stopper,
                                  failure_config=tune.FailureConfig(max_failures=spec.resources.max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    try:
        tuner.fit()
    except OSError as exc:  # Tune's own state beside the results (a full or read-only disk)
        if exc.errno in _STORAGE_ERRNOS:
            raise StorageError(f"cannot write {sweep.store.display(sweep.folder)}: {exc.strerror}. Free space "
                               f"there or choose another location with --storage; every results file written so "
                               f"far is whole.") from None
        raise
    if collector.storage_error is not None:  # the sweep stopped at the first trial it could not keep
        raise collector.storage_error


def _max_concurrent(spec: SweepSpec) -> int:
    """resources.max_concurrent (0: no limit). A trial of several workers holds no resources itself
    (its Ray Train workers do), so Tune would start every trial's driver at once, each waiting for
    its workers: unless set, as many trials run as the cluster's CPUs and GPUs fit now."""
    r = spec.resources
    if r.max_concurrent or not r.workers_per_trial:
        return r.max_concurrent or 0
    have = ray.cluster_resources()
    fits = [have.get("CPU", 0) // r.cpus_per_trial] + ([have.get("GPU", 0) // r.gpus_per_trial] if r.gpus_per_trial else [])
    return max(1, int(min(fits)))


#: A storage location that is full, over quota, too large a file, read-only or not ours.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


class _StopOnStorageError(tune.Stopper):
    """Stops every trial once a finished trial could not be written: running on would only lose more."""

    def __init__(self, collector) -> None:
        self.collector = collector

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.collector.storage_error is not None


def _optuna(spec: SweepSpec, sweep: Sweep, start: int):
    """OptunaSearch over the spec's space, its study kept in a journal beside the results (resumable)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The GP sampler fits its model inside the define-by-run suggestion (2-3 s a point): Tune's
    # "define-by-run function took N seconds" warning is that fit, not training in the driver.
    warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space` argument took")
    keys = [metric_key(m) for m in spec.search.objectives]
    from pareto.models.cache import default_cache_dir

    journal = (sweep.store.local_path(f"{sweep.folder}/optuna.journal")
               or default_cache_dir() / "optuna" / f"{sweep.folder}.journal")
    journal.parent.mkdir(parents=True, exist_ok=True)
    sampler = make_sampler(spec.search.sampler, spec.search.seed)
    metric = [k for k, _ in keys] if len(keys) > 1 else keys[0][0]
    mode = [m for _, m in keys] if len(keys) > 1 else keys[0][1]

    class FinalValues(OptunaSearch):
        """Passes on only the intermediate results that hold the objective: eval.robustness's columns
        (search.objectives may name them) exist in a trial's final result only."""

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if isinstance(self.metric, str) and self.metric not in result:
                return
            super().on_trial_result(trial_id, result)

    return FinalValues(space=OptunaSpace(search_space(spec), start), metric=metric, mode=mode, sampler=sampler,
                       study_name=spec.name, storage=JournalStorage(JournalFileBackend(str(journal))))
