"""Preflight: everything about a sweep that can be checked before Ray starts and the target is built.

`preflight` reads the spec's data files, the target's settings and base model (the hub or the cache,
never a download), the storage location and this machine's CPUs and GPUs; `pareto validate` prints
what it finds and `pareto sweep` (`pareto.sweep.run_sweep`) refuses to start on a problem.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from pareto.results.store import StorageError, Store
from pareto.spec import SweepSpec


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


def preflight(spec: SweepSpec, *, source: str | None = None, storage: str | None = None,
              address: str | None = None) -> Preflight:
    """Everything that can be checked before Ray starts and the target is built: the data files
    (fields, empty forget set, overlap), the target's settings and base model, the storage location,
    and whether this machine has the GPUs asked for. Writes nothing, downloads nothing (hub data and
    models not in the cache cost one quick request each: is the hub reachable, does the repo exist)."""
    from pareto.data.hub import check_hub_data, missing_local_files
    from pareto.sources import SourceCheck, source_of, task_of

    lines = _spec_lines(source)
    out = Preflight([], [], [])

    def where(path: tuple) -> str:
        line = next((lines[path[:i]] for i in range(len(path), 0, -1) if path[:i] in lines), None)
        return ".".join(path) + (f" ({line})" if line else "")

    data = dataclasses.asdict(spec.data)
    found = SourceCheck()
    source_of(data).preflight(data, found)  # its files: fields, an empty forget set, overlap
    out.problems += [f"{where(k)}: {m}" for k, m in found.problems]
    out.environment += [f"{where(k)}: {m}" for k, m in found.environment]
    out.warnings += found.warnings + source_of(data).eval_warnings(data, spec.eval)
    kind, why = check_hub_data(data)
    if kind:  # hub data this machine cannot fetch is a note for `validate`; `sweep` refuses before writing
        (out.problems if kind == "problem" else out.environment).append(f"{where(('data', 'path'))}: {why}")
    why = missing_local_files(data)
    if why:
        out.problems.append(f"{where(('data', 'path'))}: {why}")
    task_of(data).preflight_target(spec, where, out)  # its settings and base model

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


def check_embedded_target(spec: SweepSpec, where, out: Preflight) -> None:
    """target.embedded: its settings build an EmbeddedConfig whose forget split leaves both sets non-empty."""
    from pareto.data.check import check_embedded_split
    from pareto.models.embedded import EmbeddedConfig

    try:
        cfg = EmbeddedConfig(**spec.target.embedded)
    except (TypeError, ValueError) as exc:
        names = [f.name for f in dataclasses.fields(EmbeddedConfig)]
        out.problems.append(f"{where(('target', 'embedded'))}: {exc}. Valid settings: {', '.join(names)}")
        return
    why = check_embedded_split(cfg.n_authors, cfg.forget_fraction)
    if why:
        out.problems.append(f"{where(('target', 'embedded', 'forget_fraction'))}: {why}")


def check_base(spec: SweepSpec, where, out: Preflight) -> None:
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
