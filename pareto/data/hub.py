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

from pareto.data.muse import MUSE_NEWS_REPO, hub_filename
from pareto.data.tofu import TOFU_REPO, local_directory, tofu_split

#: source → (default hub repo, the folder name a local copy gets in messages)
HUB_DATASETS = {"tofu": (TOFU_REPO, "TOFU"), "muse_news": (MUSE_NEWS_REPO, "MUSE-News")}


def _needed(data: dict) -> list[tuple[str, str]] | None:
    """The files `pareto.data.sources.load_data(data)` reads, as (part, split) for MUSE-News and
    ("", config) for TOFU; None for other sources."""
    source = data.get("source")
    if source == "tofu":
        configs = ["forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed"]
        if data.get("authors"):
            configs.append("full")
        else:
            try:
                configs += list(tofu_split(data.get("forget") or "forget10"))
            except ValueError:  # an unknown split: the spec check names it
                pass
        return [("", c) for c in configs]
    if source == "muse_news":
        parts = [("raw", "forget"), ("raw", "retain1"), ("privleak", "holdout")]
        parts += [("knowmem", f"{s}_qa{icl}") for s in ("forget", "retain") for icl in ("", "_icl")]
        if data.get("articles") is None:  # the whole benchmark: MUSE's own verbmem and privleak items
            parts += [("verbmem", "forget"), ("privleak", "forget")]
        return parts
    return None


def _where(data: dict):
    """(hub repo, None) or (None, local folder) of a tofu / muse_news data section; (None, None)
    for a path that is neither (the spec check names it)."""
    repo = data.get("path") or HUB_DATASETS[data["source"]][0]
    try:
        folder = local_directory(repo)
    except FileNotFoundError:
        return None, None
    return (None, folder) if folder is not None else (repo, None)


def hub_files(data: dict) -> tuple[str, list[str]] | None:
    """(repo, files) that `pareto.data.sources.load_data(data)` fetches from the hub; None when
    the data is read from local files."""
    needed = _needed(data)
    repo = _where(data)[0] if needed is not None else None
    if repo is None:
        return None
    if data["source"] == "tofu":
        return repo, [f"{config}.json" for _, config in needed]
    return repo, [hub_filename(part, split) for part, split in needed]


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
    label, repo = HUB_DATASETS[data["source"]][1], HUB_DATASETS[data["source"]][0]
    return (f"{folder} is not a {label} folder in the official layout: it lacks {', '.join(missing)}. Point "
            f"data.path at a copy made with `hf download {repo} --repo-type dataset --local-dir "
            f"/path/to/{label}`, or leave it out to read {repo} from the hub")


def local_copy_fix(source: str, repo: str) -> str:
    """The CLI fix for hub data this machine cannot fetch."""
    folder = f"/path/to/{HUB_DATASETS.get(source, (repo, repo.split('/')[-1]))[1]}"
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
    label = HUB_DATASETS[data["source"]][1]
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
                           f"in). Leave data.path out for {HUB_DATASETS[data['source']][0]}, give the right repo id, "
                           f"or a local folder in the official layout")
    return None, ""
