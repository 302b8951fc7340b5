"""Run a sweep on Ray Tune and keep its results in Parquet, resumably.

The driver builds (or reuses) the target once, then fans the spec's points out as Ray Tune trials
of `trainables.unlearn.trainable`: the fixed points of a grid or a random search through
`tune.grid_search`, Optuna's points through `OptunaSearch` as it asks for them, ASHA stopping
poor trials at evaluation points when the spec asks. Every row a trial reports reaches the
driver through a Tune callback (so it works the same on a laptop and on a cluster), and each
finished trial is written at once as its own part, `<storage>/<name>/parts/<trial id>/`.

    <storage>/<name>/sweep.json          the spec, its hash, the points, complete or not
    <storage>/<name>/parts/t003/*.parquet  one finished trial (trials.parquet written last)
    <storage>/<name>/{steps,evals,items,trials}.parquet   every part, once all are done

A sweep interrupted in any way (Ctrl-C, a killed driver, a lost node) keeps its finished parts;
`--resume` runs only the trials without one, and running a complete sweep again does nothing.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import ray
from ray import tune

import pareto
from pareto.prepare import prepare_target
from pareto.results.schema import METRICS
from pareto.results.store import PathEscapeError, Store, StorageError
from pareto.results.writer import read_tables, write_tables
from pareto.search import OptunaSpace
from pareto.spec import SweepSpec, search_space, total_steps, trial_label

Log = Callable[[str], None]


class SweepStateError(Exception):
    """The sweep's folder holds something that forbids this run (another spec, or unfinished work)."""


class PreflightError(SweepStateError):
    """What the spec asks for cannot run here: every problem found before any work, listed."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class Preflight:
    """What `preflight` found: `problems` (the spec or its files are wrong), `environment` (this machine
    cannot run it: no GPU, a model it cannot load; `pareto validate` notes these, `pareto sweep` refuses),
    `warnings` (runs, but probably not what was meant)."""

    problems: list[str]
    environment: list[str]
    warnings: list[str]


def _spec_lines(source: str | None) -> dict:
    """Key path → "line N" of the spec file, for messages (none when the file cannot be read)."""
    if not source:
        return {}
    try:
        from pareto.spec import _load_with_lines

        return _load_with_lines(Path(source).read_text())[1]
    except Exception:  # noqa: BLE001 — line numbers are a courtesy
        return {}


#: Data a language-model target is trained on (`target.train` is a pareto.models.target.TargetConfig).
LM_SOURCES = ("tofu", "custom", "muse_news")


def preflight(spec: SweepSpec, *, source: str | None = None, storage: str | None = None,
              address: str | None = None) -> Preflight:
    """Everything that can be checked before Ray starts and the target is built: the data files
    (fields, empty forget set, overlap), the target's settings and base model, the storage location,
    and whether this machine has the GPUs asked for. Writes nothing, downloads nothing (hub data and
    models not in the cache cost one quick request each: is the hub reachable, does the repo exist)."""
    from pareto.data.check import check_data, check_embedded_split
    from pareto.data.hub import check_hub_data, missing_local_files

    lines = _spec_lines(source)
    out = Preflight([], [], [])

    def where(path: tuple) -> str:
        line = next((lines[path[:i]] for i in range(len(path), 0, -1) if path[:i] in lines), None)
        return ".".join(path) + (f" ({line})" if line else "")

    data_problems, data_warnings = check_data(dataclasses.asdict(spec.data))
    out.problems += [f"{where(k)}: {m}" for k, m in data_problems]
    out.warnings += data_warnings
    kind, why = check_hub_data(dataclasses.asdict(spec.data))
    if kind:  # hub data this machine cannot fetch is a note for `validate`; `sweep` refuses before writing
        (out.problems if kind == "problem" else out.environment).append(f"{where(('data', 'path'))}: {why}")
    why = missing_local_files(dataclasses.asdict(spec.data))
    if why:
        out.problems.append(f"{where(('data', 'path'))}: {why}")
    if spec.data.source in ("cifar10", "cifar100") and not spec.data.path:  # torchvision's downloader
        from pareto.vision.data import torchvision_problem

        why = torchvision_problem(spec.data.source)
        if why:  # this machine cannot download it; the spec itself is fine
            out.environment.append(f"{where(('data', 'path'))}: {why}")

    t = spec.target
    if t.source == "embedded":
        from pareto.models.embedded import EmbeddedConfig

        try:
            cfg = EmbeddedConfig(**t.embedded)
        except (TypeError, ValueError) as exc:
            names = [f.name for f in dataclasses.fields(EmbeddedConfig)]
            out.problems.append(f"{where(('target', 'embedded'))}: {exc}. Valid settings: {', '.join(names)}")
        else:
            why = check_embedded_split(cfg.n_authors, cfg.forget_fraction)
            if why:
                out.problems.append(f"{where(('target', 'embedded', 'forget_fraction'))}: {why}")
    elif t.source == "train" and spec.data.source in LM_SOURCES:  # image targets check their own settings
        _check_base(spec, where, out)

    try:
        store = Store(storage or spec.storage.root)
        why = store.writable_problem(spec.name)
    except (StorageError, ValueError) as exc:
        why = str(exc)
    if why:
        out.problems.append(f"{'--storage' if storage else where(('storage', 'root'))}: {why}")

    r = spec.resources
    if not (address or os.environ.get("RAY_ADDRESS")):  # a cluster's resources are checked once connected
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if r.workers_per_trial:  # a trial of several workers: GPUs per worker, CPUs split among them
            from pareto.resources import parallel_resource_problems

            out.environment.extend(f"{where(('resources', 'workers_per_trial'))}: {m}" for m in
                                   parallel_resource_problems(spec, os.cpu_count() or 1, gpus, "this machine"))
        elif r.gpus_per_trial > gpus:
            out.environment.append(
                f"{where(('resources', 'gpus_per_trial'))}: resources.gpus_per_trial is {r.gpus_per_trial:g} but "
                f"this machine has {gpus} GPU(s). Run on a GPU machine or cluster (--address), or "
                f"--set resources.gpus_per_trial=0 to run on CPU.")
        cpus = os.cpu_count() or 1
        if r.cpus_per_trial > cpus and not r.workers_per_trial:
            out.environment.append(
                f"{where(('resources', 'cpus_per_trial'))}: resources.cpus_per_trial is {r.cpus_per_trial:g} but "
                f"this machine has {cpus} CPU(s). Lower it with --set resources.cpus_per_trial=1.")
    return out


def _check_fsdp(spec: SweepSpec, config_json: Path, where, out: Preflight) -> None:
    """unlearn.parallel fsdp: the base model's class names the transformer blocks FSDP shards one by
    one (`_no_split_modules`). Read from its config.json alone (no weights are loaded)."""
    if spec.unlearn.parallel != "fsdp":
        return
    from pareto.core.parallel import fsdp_problem

    why = fsdp_problem(config_json)
    if why:
        out.problems.append(f"{where(('unlearn', 'parallel'))}: {why}")


def _check_base(spec: SweepSpec, where, out: Preflight) -> None:
    """target.train: its settings build a TargetConfig, and its base model can be loaded from here."""
    from pareto.models.target import TargetConfig

    train = spec.target.train
    trc = train.get("trust_remote_code", False)
    if not isinstance(trc, bool):
        out.problems.append(f"{where(('target', 'train', 'trust_remote_code'))}: expected true or false, got {trc!r}. "
                            f"It lets a model repository run its own Python code: leave it out (off) unless you "
                            f"have read that code")
        return
    try:
        from pareto.prepare import target_config

        cfg = target_config(spec)
    except (TypeError, ValueError) as exc:
        names = [f.name for f in dataclasses.fields(TargetConfig)]
        out.problems.append(f"{where(('target', 'train'))}: {exc}. Valid settings: {', '.join(names)}")
        return
    if cfg.is_tiny:
        return
    base = cfg.base
    path = Path(base).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            out.problems.append(f"{where(('target', 'train', 'base'))}: {base} is a folder without config.json, not "
                                f"a model saved with save_pretrained. Point base at such a folder, a hub model "
                                f"name (owner/name), or use base: tiny")
        else:
            _check_fsdp(spec, path / "config.json", where, out)
        return
    if path.is_absolute() or base.startswith((".", "~")) or base.count("/") > 1:
        out.problems.append(f"{where(('target', 'train', 'base'))}: no such model folder: {base}. Give a folder "
                            f"saved with save_pretrained, a hub model name (owner/name), or base: tiny")
        return
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(base, "config.json", revision=cfg.revision), str)
    except Exception:  # noqa: BLE001 — a malformed repo id: the hub check below names it
        cached = False
    if cached:
        _check_fsdp(spec, Path(try_to_load_from_cache(base, "config.json", revision=cfg.revision)), where, out)
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    exists = None
    if not offline:
        try:
            from huggingface_hub import repo_exists

            exists = repo_exists(base)
        except Exception:  # noqa: BLE001 — no network, a bad id: we cannot tell from here
            exists = None
    if exists is False:
        out.problems.append(f"{where(('target', 'train', 'base'))}: unknown model {base!r}: the Hugging Face hub "
                            f"has no such model. Check the name (owner/name, as on huggingface.co), give a local "
                            f"folder saved with save_pretrained, or use base: tiny")
    elif exists is None:
        why = "downloads are off (HF_HUB_OFFLINE)" if offline else "the hub cannot be reached from here"
        out.environment.append(f"{where(('target', 'train', 'base'))}: model {base!r} is not in the Hugging Face "
                               f"cache and {why}, so it cannot be loaded: check the name, download it first "
                               f"(hf download {base}, where the hub is reachable) or give a local folder saved with "
                               f"save_pretrained, or use base: tiny")


def versions() -> dict:
    import torch
    import transformers

    return {"pareto_version": pareto.__version__, "torch_version": torch.__version__,
            "transformers_version": transformers.__version__, "ray_version": ray.__version__}


def experiment_hash(spec: SweepSpec) -> str:
    """What decides the results: the spec without where and how wide it runs (resources, storage).

    Settings left at their defaults are not hashed, so a release that adds a setting (with a
    default that keeps the old behaviour) can still resume the sweeps of the one before."""
    import hashlib

    from pareto.spec import SECTION_CLASSES

    d = spec.to_dict()
    d.pop("resources"), d.pop("storage")
    for section, cls in SECTION_CLASSES.items():
        if section in d:
            default = dataclasses.asdict(cls())
            d[section] = {k: v for k, v in d[section].items() if k not in default or v != default[k]}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def metric_key(name: str) -> tuple[str, str]:
    """The reported key and Tune mode of a metric ("zero" metrics are searched on |value|)."""
    direction = METRICS[name]
    return (f"{name}_abs", "min") if direction == "zero" else (name, direction)


#: A trial's id, and the name of its part folder: t000, t001, …
TRIAL_ID = re.compile(r"t[0-9]{3,}")


@dataclass
class Sweep:
    store: Store
    folder: str  # the sweep's folder inside the store: its name

    def part(self, trial_id: str) -> str:
        if not TRIAL_ID.fullmatch(trial_id):  # ids are made here (t000, t001, …): nothing else names a folder
            raise PathEscapeError(f"trial id {trial_id!r} is not of the form t000; it may not name a folder")
        return f"{self.folder}/parts/{trial_id}"

    def finished_parts(self) -> dict[str, str]:
        """trial id → status of every trial that has a complete part (other folders there are ignored)."""
        out = {}
        for tid in self.store.listdir(f"{self.folder}/parts"):
            if TRIAL_ID.fullmatch(tid) and self.store.exists(f"{self.part(tid)}/trials.parquet"):
                out[tid] = self.store.read_table(f"{self.part(tid)}/trials.parquet").column("status")[0].as_py()
        return out

    def state(self) -> dict | None:
        rel = f"{self.folder}/sweep.json"
        return json.loads(self.store.read_text(rel)) if self.store.exists(rel) else None

    def write_state(self, state: dict) -> None:
        self.store.write_text(f"{self.folder}/sweep.json", json.dumps(state, indent=1, sort_keys=True) + "\n")


def open_sweep(spec: SweepSpec, points: list[dict], store: Store, resume: bool) -> tuple[Sweep, dict, bool]:
    """The sweep's folder and state; (sweep, state, complete). Refuses what would mix experiments
    or lose a finished trial; an earlier run that finished no trial is simply replaced."""
    sweep = Sweep(store, spec.name)
    state, h = sweep.state(), experiment_hash(spec)
    where = store.display(spec.name)
    new = {"name": spec.name, "experiment_hash": h, "spec": spec.to_dict(), "points": points,
           "algorithm": spec.search.algorithm, "complete": False, "new": True,
           "created": time.strftime("%Y-%m-%dT%H:%M:%S")}  # run_sweep writes it once the checks pass
    if state is None:
        return sweep, new, False
    done = len(sweep.finished_parts())
    if not done and not state["complete"]:  # nothing to lose: a run that failed before its first trial
        driver = _live_driver(state)
        if driver:
            raise SweepStateError(f"{where} is being run right now by another pareto sweep (pid {driver} on this "
                                  f"machine). Wait for it, stop it, or give this run its own name (--set name=…).")
        if state["experiment_hash"] != h:
            return sweep, {**new, "replaced": True}, False
        return sweep, state, False
    if state["experiment_hash"] != h:
        moved = f"mv {where} {where}.old" if store.local_path(spec.name) else f"move {where} elsewhere"
        raise SweepStateError(f"{where} holds {done} finished trial(s) of a different spec (experiment hash "
                              f"{state['experiment_hash']}, this spec {h}). Nothing was run. Give this experiment its "
                              f"own name (name: in the spec, or --set name={spec.name}-2), or keep the old results "
                              f"aside first: {moved}")
    if state["complete"]:
        return sweep, state, True
    if not resume:
        raise SweepStateError(f"{where} holds an unfinished run of this sweep ({done} trial(s) done). "
                              f"Continue it with --resume, or remove {where} to start over.")
    return sweep, state, False


def _live_driver(state: dict) -> int | None:
    """The pid of another process on this machine that is running this sweep now, else None."""
    driver = state.get("driver") or {}
    pid = driver.get("pid")
    if driver.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return None
    try:
        import psutil

        return pid if "pareto" in " ".join(psutil.Process(pid).cmdline()) else None
    except Exception:  # noqa: BLE001 — gone, or not ours to inspect
        return None


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
    state["driver"] = {"host": socket.gethostname(), "pid": os.getpid()}  # see _live_driver
    sweep.write_state(state)
    points = state["points"]  # a resumed random search keeps the points it drew
    todo = [dict(p, index=i) for i, p in enumerate(points) if finished.get(f"t{i:03d}", "failed") == "failed"]
    n_optuna = 0
    if spec.search.algorithm == "optuna":
        n_optuna = spec.search.num_samples - sum(1 for tid, st in finished.items()
                                                 if int(tid[1:]) >= len(points) and st != "failed")
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
             "reference": prepared.reference, "target_archive": _ship_target(prepared.target_dir, address, log)}
    if spec.resources.workers_per_trial:  # Ray Train keeps a multi-worker trial's checkpoints beside Tune's
        local = sweep.store.local_path(f"{sweep.folder}/.ray")
        setup["train_storage"] = f"{local.resolve() if local else sweep.store.display(f'{sweep.folder}/.ray')}/train"
        setup["run_name"] = f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    meta = {"spec_hash": spec.hash(), "spec": json.dumps(spec.to_dict(), sort_keys=True),
            "data_hash": manifest["data_hash"], "target_hash": manifest["hash"],
            "add_bos": manifest.get("add_bos", True), "prompt_template": manifest.get("template", "plain"),
            "search": spec.search.algorithm, "run_id": state["created"], **versions()}

    total = len(todo) + max(n_optuna, 0)
    collector = _Collector(sweep, spec, meta, log, total)
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
    tables = read_tables(sweep.store, [sweep.part(t) for t in sorted(finished)])
    write_tables(sweep.store, sweep.folder, {k: v.to_pylist() for k, v in tables.items()})
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
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # rows reach the driver via _Collector
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
    keys = [metric_key(m) for m in spec.search.objectives]
    from pareto.models._build import default_cache_dir

    journal = (sweep.store.local_path(f"{sweep.folder}/optuna.journal")
               or default_cache_dir() / "optuna" / f"{sweep.folder}.journal")
    journal.parent.mkdir(parents=True, exist_ok=True)
    sampler = (optuna.samplers.NSGAIISampler(seed=spec.search.seed) if spec.search.sampler == "nsga2"
               else optuna.samplers.TPESampler(seed=spec.search.seed))
    metric = [k for k, _ in keys] if len(keys) > 1 else keys[0][0]
    mode = [m for _, m in keys] if len(keys) > 1 else keys[0][1]
    return OptunaSearch(space=OptunaSpace(search_space(spec), start), metric=metric, mode=mode, sampler=sampler, study_name=spec.name,
                        storage=JournalStorage(JournalFileBackend(str(journal))))


class _Collector(tune.Callback):
    """Every row each trial reports, gathered in the driver; a finished trial is written at once."""

    def __init__(self, sweep: Sweep, spec: SweepSpec, meta: dict, log: Log, total: int) -> None:
        self.sweep, self.spec, self.meta, self.log, self.total = sweep, spec, meta, log, total
        self.live: dict[int, dict] = {}  # index → {"point", "steps": {step: row}, "evals": {...}, ...}
        self.indices: set[int] = set()
        self.done = self.failed = 0
        self.t0 = time.time()
        # the plane whose running front the progress line shows: the optuna objectives, else a default plane
        from pareto.results.schema import DEFAULT_PLANES

        asked = spec.eval.metrics
        planes = [tuple(spec.search.objectives[:2])] if len(spec.search.objectives) >= 2 else []
        planes += [p for p in reversed(DEFAULT_PLANES) if all(m in asked for m in p)]
        self.plane = next((p for p in planes if all(METRICS[m] in ("min", "max") for m in p)), None)
        self.points: dict[str, tuple] = self._earlier_points()  # --resume: the front counts earlier runs' trials
        self.storage_error: StorageError | None = None

    def _plane_values(self, row: dict) -> tuple | None:
        """A finished trial's values on the progress plane; None unless it counts for the front."""
        import math

        values = tuple(row.get(m) for m in self.plane)
        if row.get("status") in ("ok", "stopped") and all(isinstance(v, float) and math.isfinite(v) for v in values):
            return values
        return None

    def _earlier_points(self) -> dict[str, tuple]:
        """The plane's values of the trials that earlier runs of this sweep finished (their parts)."""
        if self.plane is None:
            return {}
        out = {}
        for tid, status in self.sweep.finished_parts().items():
            if status not in ("ok", "stopped"):
                continue
            row = self.sweep.store.read_table(f"{self.sweep.part(tid)}/trials.parquet").to_pylist()[0]
            values = self._plane_values(row)
            if values is not None:
                out[tid] = values
        return out

    @staticmethod
    def _running(trials, trial) -> int:
        """How many other trials Tune is running now (its trials list holds each one's status)."""
        from ray.tune.experiment import Trial

        return sum(1 for t in trials or () if t is not trial and t.status == Trial.RUNNING)

    def _state(self, trial) -> dict:
        point = trial.config["point"]
        self.indices.add(point["index"])
        return self.live.setdefault(point["index"], {"point": point, "steps": {}, "evals": {}, "items": {},
                                                     "attempts": 1, "last": {}})

    def on_trial_recover(self, iteration, trials, trial, **info):
        # counted here, not in on_trial_start: a worker that dies before Tune sees it start is a failure too
        self._state(trial)["attempts"] += 1
        # Tune registers a checkpoint only after the result that carries it reaches the driver: a worker
        # killed in between has its checkpoint on disk but not registered, and Tune restarts the trial.
        saved = trial.latest_checkpoint_result if self.spec.storage.checkpoints == "last" else None
        if saved is not None:
            again = f"its last checkpoint (step {saved.metrics.get('eval_step', '?')})"
        elif self.spec.storage.checkpoints == "last":
            again = "the start (it had no checkpoint yet)"
        else:
            again = "the start"
        self.log(f"       t{trial.config['point']['index']:03d} failed ({_error_text(trial)}); retrying from {again}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        st = self._state(trial)
        for row in result.get("step_rows") or []:  # keyed by step: a retried trial overwrites, never duplicates
            st["steps"][row["step"]] = row
        if result.get("evaluated"):
            st["evals"][result["eval_step"]] = {k: result.get(k) for k in (*METRICS, "wall_s")}
            st["items"][result["eval_step"]] = result.get("items") or []
            if not result.get("final"):  # an evaluation on the way (eval.every): where a long trial is
                shown = "  ".join(f"{k} {result[k]:.3f}" for k in self.spec.eval.metrics[:4]
                                  if isinstance(result.get(k), float))
                self.log(f"       t{st['point']['index']:03d} at step {result['eval_step']}: {shown}")
        st["last"] = dict(result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        st = self._state(trial)
        final = st["last"]
        if not final.get("final"):  # stopped by the scheduler after an evaluation
            final = {**final, "status": "stopped", "steps_done": final.get("eval_step", 0)}
        self._finish(trial, final, self._running(trials, trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        self._finish(trial, {"status": "failed", "error": _error_text(trial), "node_id": self._state(trial)["last"].get("node_id")},
                     self._running(trials, trial))

    def _finish(self, trial, final: dict, running: int = 0) -> None:
        st = self._state(trial)
        index = st["point"]["index"]
        tid = f"t{index:03d}"
        rows = {
            "steps": [{**r, "trial_id": tid} for _, r in sorted(st["steps"].items())],
            "evals": [{**r, "eval_step": s, "trial_id": tid} for s, r in sorted(st["evals"].items())],
            "items": [{**it, "trial_id": tid, "eval_step": s} for s, its in sorted(st["items"].items()) for it in its],
            "trials": [_trial_row(self.spec, st["point"], tid, final, {**self.meta, "attempts": st["attempts"]})],
        }
        try:
            write_tables(self.sweep.store, self.sweep.part(tid), rows)
        except StorageError as exc:  # every file is whole or absent; the sweep stops (StopOnStorageError)
            self.log(f"       could not write {tid}: {exc}")
            self.storage_error = self.storage_error or exc
            return
        self.done += 1
        self._progress(tid, st["point"], final, running)

    def _progress(self, tid: str, point: dict, final: dict, running: int = 0) -> None:
        metrics = "  ".join(f"{k} {final[k]:.3f}" for k in ("rouge_f", "utility_r", "verbmem_f", "knowmem_r",
                                                               "forget_acc", "retain_acc")
                            if isinstance(final.get(k), float))
        elapsed = time.time() - self.t0
        left = max(self.total - self.done, 0)
        eta = f"ETA {elapsed / self.done * left:.0f}s" if self.done and left else "last one"
        why = f"  ({final.get('error')})" if final.get("status") in ("failed", "diverged") else ""
        self.log(f"[{self.done}/{self.total} done, {running} running, {self.failed} failed, {eta}] {tid} "
                 f"{trial_label(point)}: {final.get('status')}  {metrics}{why}" + self._front(tid, final))

    def _front(self, tid: str, final: dict) -> str:
        """The non-dominated trials so far on the progress plane (Definition 1), earlier runs' included."""
        if self.plane is None:
            return ""
        values = self._plane_values(final)
        if values is not None:
            self.points[tid] = values
        if not self.points:
            return ""
        import numpy as np

        from analysis.dominance import non_dominated_mask

        ids = sorted(self.points)
        mask = non_dominated_mask(np.array([self.points[i] for i in ids]), [METRICS[m] for m in self.plane])
        front = [i for i, keep in zip(ids, mask) if keep]
        shown = " ".join(front[:8]) + (" …" if len(front) > 8 else "")
        return f"  | front on {self.plane[0]}×{self.plane[1]}: {shown}"


def _trial_row(spec: SweepSpec, point: dict, trial_id: str, final: dict, meta: dict) -> dict:
    def comp(key):
        c = point.get(key)
        return (c["name"], json.dumps(c["params"], sort_keys=True)) if c else ("none", "{}")

    (cn, cp), (on, op), (ln, lp) = comp("combiner"), comp("objective"), comp("lr_rule")
    ok = final.get("status") in ("ok", "stopped")
    return {
        "trial_id": trial_id, "label": trial_label(point), "sweep": spec.name,
        "status": final.get("status", "failed"), "error": final.get("error"),
        "diverged_step": final.get("diverged_step"),
        "combiner": "no-unlearn" if point.get("baseline") else cn, "combiner_params": cp,
        "objective": on, "objective_params": op, "lr_rule": ln, "lr_rule_params": lp,
        "lr": point.get("lr"), "final_lr": final.get("final_lr"), "seed": point.get("seed"),
        "steps": final.get("steps_done", 0), "optimizer": spec.unlearn.optimizer,
        "batch_size": spec.unlearn.batch_size,
        **{k: final.get(k) if ok else None for k in METRICS},
        **{k: final.get(k) for k in ("metric_settings", "wall_s", "cpu_s", "gpu_s", "grad_buffer_bytes", "gpu_peak_bytes",
                                     "first_step_changed_frac", "workers", "parallel", "device", "dtype", "node_id",
                                     "resumed_from_step")},
        **meta,
    }


def _error_text(trial) -> str:
    from pathlib import Path

    path = getattr(trial, "error_file", None)
    if path and Path(path).is_file():
        lines = [ln for ln in Path(path).read_text().strip().splitlines() if ln.strip()]
        return lines[-1] if lines else "trial raised an error"
    return "trial raised an error"
