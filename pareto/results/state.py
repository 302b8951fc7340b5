"""A sweep's folder and its state, for resuming: `sweep.json` (the spec, its experiment hash, the
points, complete or not, the driver running it) and one part per finished trial.

`open_sweep` refuses what would mix two experiments in one folder or lose a finished trial: a
different spec over finished trials, an unfinished run without `--resume`, another driver running
it now. An earlier run that finished no trial is simply replaced.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import time
from dataclasses import dataclass

from pareto.results.store import PathEscapeError, Store
from pareto.spec import SweepSpec


class SweepStateError(Exception):
    """The sweep's folder holds something that forbids this run (another spec, or unfinished work)."""


def experiment_hash(spec: SweepSpec) -> str:
    """What decides the results: the spec without where and how wide it runs (resources, storage)
    and what it keeps besides its rows (eval.keep_checkpoints).

    Settings left at their defaults are not hashed, so a release that adds a setting (with a
    default that keeps the old behaviour) can still resume the sweeps of the one before."""
    import hashlib

    from pareto.spec import SECTION_CLASSES

    d = spec.to_dict()
    d.pop("resources"), d.pop("storage")
    d["eval"].pop("keep_checkpoints", None)  # what is kept of a trial, not what it computes
    for section, cls in SECTION_CLASSES.items():
        if section in d:
            default = dataclasses.asdict(cls())
            d[section] = {k: v for k, v in d[section].items() if k not in default or v != default[k]}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


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
        """trial id → status of every trial that has a complete part (other folders there are ignored).

        Only each part's status column is read, several parts at once (10⁴ parts: seconds)."""
        from concurrent.futures import ThreadPoolExecutor

        absent = object()

        def status(tid: str):
            rel = f"{self.part(tid)}/trials.parquet"
            if not self.store.exists(rel):
                return absent
            return self.store.read_table(rel, ["status"], use_threads=False).column("status")[0].as_py()

        tids = [tid for tid in self.store.listdir(f"{self.folder}/parts") if TRIAL_ID.fullmatch(tid)]
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            return {tid: st for tid, st in zip(tids, pool.map(status, tids)) if st is not absent}

    def mixes(self) -> set[str]:
        """The trial ids whose parts are `pareto mix` points (combiner "mix"), not the sweep's own trials."""
        return {tid for tid in self.finished_parts()
                if self.store.read_table(f"{self.part(tid)}/trials.parquet", ["combiner"]).column("combiner")[0].as_py() == "mix"}

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
