"""Is a spec's data here, before any work: which files its data section would fetch from the
Hugging Face hub, whether they are already in its cache, and, when they are not, whether the hub
can be reached from here — one quick request, no retries, nothing downloaded; or, for a local
copy, whether its folder has the files the loaders read.

    kind, message = check_hub_data({"source": "tofu", "path": "locuslab/TOFU", "forget": "forget10"})

`kind` is None (local files, cached files or a reachable hub), "problem" (the hub answers but
has no such dataset) or "environment" (this machine cannot get the files: no network, or
HF_HUB_OFFLINE). The message names the CLI fix: a local copy through `--set data.path=…`, and
the one command that makes such a copy on a machine with hub access.
"""

from __future__ import annotations

from pareto.data.tofu import local_directory


def _source(data: dict):
    from pareto.sources import SOURCES

    return SOURCES.get(data["source"]) if data.get("source") in SOURCES else None


def _needed(data: dict) -> list[tuple[str, str]] | None:
    """The files `pareto.sources.load_data(data)` reads, as (part, split) pairs (part "" for a file
    at the top: TOFU's configs); None for a source that never reads the hub."""
    source = _source(data)
    return source.hub_parts(data) if source is not None and source.hub_repo else None


def _where(data: dict):
    """(hub repo, None) or (None, local folder) of a hub source's data section; (None, None)
    for a path that is neither (the spec check names it)."""
    repo = data.get("path") or _source(data).hub_repo
    try:
        folder = local_directory(repo)
    except FileNotFoundError:
        return None, None
    return (None, folder) if folder is not None else (repo, None)


def hub_files(data: dict) -> tuple[str, list[str]] | None:
    """(repo, files) that `pareto.sources.load_data(data)` fetches from the hub; None when
    the data is read from local files."""
    needed = _needed(data)
    repo = _where(data)[0] if needed is not None else None
    if repo is None:
        return None
    return repo, [_source(data).hub_filename(part, split) for part, split in needed]


def missing_local_files(data: dict) -> str | None:
    """What a local TOFU / MUSE-News folder lacks of the files load_data reads (None: nothing)."""
    needed = _needed(data)
    folder = _where(data)[1] if needed is not None else None
    if folder is None:
        return None
    missing = []
    for part, split in needed:
        names = [split, "retain"] if (part, split) == ("raw", "retain1") else [split]  # either retain layout
        here = folder / part if part else folder
        if not any((here / f"{n}.json").is_file() or (here / f"{n}.jsonl").is_file() or any(here.glob(f"{n}-*.parquet"))
                   for n in names):
            missing.append(f"{part}/{split}.json" if part else f"{split}.json")
    if not missing:
        return None
    label, repo = _source(data).label, _source(data).hub_repo
    return (f"{folder} is not a {label} folder in the official layout: it lacks {', '.join(missing)}. Point "
            f"data.path at a copy made with `hf download {repo} --repo-type dataset --local-dir "
            f"/path/to/{label}`, or leave it out to read {repo} from the hub")


def local_copy_fix(source: str, repo: str) -> str:
    """The CLI fix for hub data this machine cannot fetch."""
    from pareto.sources import SOURCES

    folder = f"/path/to/{SOURCES.get(source).label if source in SOURCES else repo.split('/')[-1]}"
    return (f"Run it with a local copy: --set data.path={folder} (a folder in the official layout). To make "
            f"one, on a machine with hub access run `hf download {repo} --repo-type dataset --local-dir "
            f"{folder}` and copy that folder here")


def _offline() -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE  # HF_HUB_OFFLINE as huggingface_hub read it


def check_hub_data(data: dict) -> tuple[str | None, str]:
    """(kind, message): see the module docstring."""
    wanted = hub_files(data)
    if wanted is None:
        return None, ""
    repo, files = wanted
    from huggingface_hub import try_to_load_from_cache

    try:
        missing = [f for f in files if not isinstance(try_to_load_from_cache(repo, f, repo_type="dataset"), str)]
    except Exception:  # noqa: BLE001 — a malformed repo id: the hub request below names it
        missing = files
    if not missing:
        return None, ""
    label = _source(data).label
    head = f"{label} comes from the Hugging Face hub ({repo}) and {len(missing)} of its files are not in the local cache"
    if _offline():
        return "environment", f"{head}, and downloads are off (HF_HUB_OFFLINE). {local_copy_fix(data['source'], repo)}"
    try:
        from huggingface_hub import HfApi

        exists = HfApi().repo_exists(repo, repo_type="dataset")  # HfApi(): the endpoint as configured now
    except Exception as exc:  # noqa: BLE001 — no network, DNS, a proxy: it cannot be reached from here
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return "environment", (f"{head}, and the hub cannot be reached from here ({reason}). "
                               f"{local_copy_fix(data['source'], repo)}")
    if not exists:
        return "problem", (f"the Hugging Face hub has no dataset {repo!r} (or it is private and you are not logged "
                           f"in). Leave data.path out for {_source(data).hub_repo}, give the right repo id, "
                           f"or a local folder in the official layout")
    return None, ""
