"""TOFU (Maini et al. 2024, locuslab/TOFU, MIT licence) from the hub or a local directory.

Layout: one file per config at the repository root, ``<config>.json``, each JSON lines (one
record per line, no trailing newline). Seen in the hub's file listing of ``locuslab/TOFU`` at
``main``: ``full.json``, ``forget01/05/10.json``, ``forget01/05/10_perturbed.json``,
``holdout01/05/10.json`` (renamed from ``holdout*.jsonl``, so ``<config>.jsonl`` is tried when
``<config>.json`` is absent), ``real_authors.json``; the remaining names (``retain99/95/90``,
``retain_perturbed``, ``real_authors_perturbed``, ``world_facts(_perturbed)``) follow the same
pattern (dataset cards of the repo and its forks) and match a byte-identical local copy of
the official files. Revisions from before December 2023 used other names
(``all_dataset.json``, ``forget10_dataset.json``) and are not supported. A local directory with
the same files works the same way; a JSON array in place of JSON lines is accepted too.

Fields: ``question``, ``answer`` everywhere; ``*_perturbed`` configs add ``perturbed_answer``
(5 wrong answers for forget/retain, 3 for real_authors/world_facts) and, for forget/retain,
``paraphrased_answer`` and ``paraphrased_question``; ``real_authors``/``world_facts`` carry
``option1..4``. ``full`` is 4000 QA about 200 authors (20 each, in order); ``forgetNN`` is the last
40/200/400 rows of ``full`` and ``retainMM`` the rest. Every row gets ``item_id`` =
``"<config>:<index>"`` unless it already has one.

Hub access goes through ``huggingface_hub.hf_hub_download`` (its cache, ``cache_dir`` and
``local_files_only`` apply). When the hub cannot be reached, or the file is not cached and
downloads are off, :class:`HubUnavailableError` says so and how to use a local directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pareto._registry import did_you_mean
from pareto.data.custom import check_perturbed, read_records, require_fields

TOFU_REPO = "locuslab/TOFU"

TOFU_CONFIGS = (
    "full",
    "forget01", "forget05", "forget10",
    "retain99", "retain95", "retain90",
    "forget01_perturbed", "forget05_perturbed", "forget10_perturbed",
    "retain_perturbed",
    "real_authors", "real_authors_perturbed",
    "world_facts", "world_facts_perturbed",
    "holdout01", "holdout05", "holdout10",
)

_RETAIN_OF = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
_FORGET_SPLITS = tuple(_RETAIN_OF) + tuple(f"{f}_perturbed" for f in _RETAIN_OF)

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class HubUnavailableError(OSError):
    """A dataset file could not be fetched from the Hugging Face hub nor found in its cache.

    `repo` is the dataset repo and `problem` what went wrong without the Python-API fix that the
    message adds (the CLI names its own: pareto.data.hub.local_copy_fix)."""

    def __init__(self, message: str, *, repo: str, problem: str) -> None:
        super().__init__(message)
        self.repo, self.problem = repo, problem


def check_config(config: str) -> str:
    if config not in TOFU_CONFIGS:
        raise ValueError(f"unknown TOFU config {config!r}.{did_you_mean(str(config), list(TOFU_CONFIGS))} "
                         f"TOFU configs: {', '.join(TOFU_CONFIGS)}")
    return config


def tofu_split(forget: str = "forget10") -> tuple[str, str]:
    """(forget config, matching retain config).

    forget01/05/10 -> retain99/95/90 (disjoint, together ``full``); the ``*_perturbed``
    evaluation variants pair with ``retain_perturbed`` (400 retain rows with perturbed answers).
    """
    if forget not in _FORGET_SPLITS:
        raise ValueError(f"unknown TOFU forget split {forget!r}.{did_you_mean(str(forget), list(_FORGET_SPLITS))} "
                         f"Forget splits: {', '.join(_FORGET_SPLITS)}")
    if forget.endswith("_perturbed"):
        return forget, "retain_perturbed"
    return forget, _RETAIN_OF[forget]


def local_directory(source: str | Path) -> Path | None:
    """`source` as a local directory, None when it names a hub repo, FileNotFoundError when it
    looks like a path (a Path object, absolute, ./, ../, ~, or not of the form owner/name) that
    does not exist."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    looks_like_path = (isinstance(source, Path) or path.is_absolute() or text.startswith((".", "~"))
                       or not _REPO_ID.match(text))
    if looks_like_path:
        what = "is not a directory" if path.exists() else "does not exist"
        raise FileNotFoundError(f"{source} {what}: pass a directory laid out like the official "
                                f"dataset, or a Hugging Face dataset repo id such as 'owner/name'")
    return None


def hub_file(repo_id: str, filename: str, *, cache_dir=None, local_files_only: bool = False,
             revision: str | None = None, what: str = "dataset", local_hint: str | None = None) -> Path:
    """``hf_hub_download`` of one file of a dataset repo, with errors a user can act on.

    `local_hint` names the file a local directory would need instead (default: `filename`).
    """
    import huggingface_hub
    from huggingface_hub import errors

    offline = local_files_only or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        return Path(huggingface_hub.hf_hub_download(
            repo_id=repo_id, filename=filename, repo_type="dataset", revision=revision,
            cache_dir=cache_dir, local_files_only=local_files_only))
    except errors.LocalEntryNotFoundError as exc:
        where = f" (cache: {cache_dir})" if cache_dir is not None else ""
        fix = (f"Pass a local directory instead: the `source` argument accepts a directory with the "
               f"official file layout (here: {local_hint or filename}).")
        if offline:
            problem = (f"{what}: {filename} of {repo_id} is not in the Hugging Face cache{where}, and "
                       f"downloads are off (local_files_only=True or HF_HUB_OFFLINE).")
            msg = f"{problem} {fix}"
        else:
            reason = exc.__cause__ or exc.__context__
            detail = f" ({type(reason).__name__}: {reason})" if reason is not None else ""
            problem = (f"{what}: the Hugging Face hub is unreachable{detail}, and {filename} of {repo_id} "
                       f"is not in the local cache{where}.")
            msg = f"{problem} Check the network connection, or {fix[0].lower()}{fix[1:]}"
        raise HubUnavailableError(msg, repo=repo_id, problem=problem) from None
    except errors.RepositoryNotFoundError:
        raise FileNotFoundError(f"{what}: there is no dataset repo {repo_id!r} on the Hugging Face hub "
                                f"(or it is private or gated and you are not logged in). Pass an "
                                f"existing repo id or a local directory.") from None
    except errors.RevisionNotFoundError:
        raise FileNotFoundError(f"{what}: dataset repo {repo_id!r} has no revision {revision!r}") from None
    except errors.EntryNotFoundError:
        raise FileNotFoundError(f"{what}: dataset repo {repo_id!r} has no file {filename!r}") from None
    except errors.HfHubHTTPError as exc:
        problem = f"{what}: the Hugging Face hub refused {filename} of {repo_id} ({exc})."
        raise HubUnavailableError(f"{problem} Pass a local directory with the official layout instead.",
                                  repo=repo_id, problem=problem) from None


def _with_ids(rows: list[dict], config: str) -> list[dict]:
    for i, row in enumerate(rows):
        row.setdefault("item_id", f"{config}:{i}")
    return rows


def _validate(rows: list[dict], config: str, source: str) -> None:
    require_fields(rows, ("question", "answer"), source)
    if config.endswith("_perturbed"):
        require_fields(rows, ("perturbed_answer",), source)
        if not config.startswith(("real_authors", "world_facts")):
            require_fields(rows, ("paraphrased_answer",), source)
        for i, row in enumerate(rows):
            check_perturbed(row["perturbed_answer"], source, i)


def load_tofu(config: str, source: str | Path = TOFU_REPO, *, cache_dir=None,
              local_files_only: bool = False, revision: str | None = None) -> list[dict]:
    """The rows of one TOFU config, from a local directory or a hub dataset repo.

    `source`: an existing directory holding ``<config>.json`` (JSON lines or a JSON array),
    otherwise a hub dataset repo id (default ``locuslab/TOFU``) fetched with
    ``hf_hub_download(repo_id=source, filename=f"{config}.json", repo_type="dataset", ...)``.
    """
    check_config(config)
    directory = local_directory(source)
    if directory is not None:
        candidates = [directory / f"{config}.json", directory / f"{config}.jsonl"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            present = sorted(p.name for p in directory.glob("*.json*"))
            raise FileNotFoundError(
                f"TOFU config {config!r}: {candidates[0]} does not exist (JSON files in {directory}: "
                f"{', '.join(present) or 'none'}). Put the official {config}.json there (from "
                f"https://huggingface.co/datasets/{TOFU_REPO}), or pass source={TOFU_REPO!r} to "
                f"download it from the hub.")
    else:
        repo, what = str(source), f"TOFU config {config!r}"
        kw = dict(cache_dir=cache_dir, local_files_only=local_files_only, revision=revision, what=what,
                  local_hint=f"<directory>/{config}.json")
        try:
            path = hub_file(repo, f"{config}.json", **kw)
        except (FileNotFoundError, HubUnavailableError) as first:
            # Older revisions name the holdout files holdoutNN.jsonl; try that name when the
            # .json is missing (not when the hub is down: that would only wait twice).
            missing = isinstance(first, FileNotFoundError) or local_files_only
            if not (config.startswith("holdout") and missing):
                raise
            try:
                path = hub_file(repo, f"{config}.jsonl", **kw)
            except (FileNotFoundError, HubUnavailableError):
                raise first from None
    rows = read_records(path)
    _validate(rows, config, str(path))
    return _with_ids(rows, config)


TOFU_QA_PER_AUTHOR = 20
_PERTURBED_FIELDS = ("paraphrased_answer", "paraphrased_question", "perturbed_answer")


def tofu_author_subset(rows_full: list[dict], n_authors: int = 40, forget_fraction: float = 0.1,
                       *, qa_per_author: int = TOFU_QA_PER_AUTHOR) -> tuple[list[dict], list[dict]]:
    """(forget_rows, retain_rows) of the last `n_authors` authors of TOFU's ``full``.

    ``full`` lists 20 QA pairs per author, authors in order, so the last `n_authors` authors are
    its last ``20 · n_authors`` rows. Forget = the last ``floor(forget_fraction · n_authors)`` of
    those authors (whole authors, as forget10 is the last 10 % of all authors), retain = the
    others; row order is kept and each row (a copy) keeps its ``item_id``. The last 20 authors
    of ``full`` are forget10, so up to 20 authors the subset lies inside forget10 (whose
    ``*_perturbed`` fields `tofu_attach_perturbed` can add).
    """
    problems = []
    if not isinstance(n_authors, int) or n_authors < 2:
        problems.append(f"n_authors must be an integer >= 2, got {n_authors!r}")
    if not 0.0 < forget_fraction < 1.0:
        problems.append(f"forget_fraction must be in (0, 1), got {forget_fraction}")
    if qa_per_author < 1 or len(rows_full) % qa_per_author:
        problems.append(f"{len(rows_full)} rows are not whole authors of {qa_per_author} QA pairs "
                        f"(pass TOFU's full config)")
    if problems:
        raise ValueError("tofu_author_subset: " + "; ".join(problems))
    available = len(rows_full) // qa_per_author
    if n_authors > available:
        raise ValueError(f"tofu_author_subset: n_authors={n_authors} but the rows hold "
                         f"{available} authors")
    n_forget = int(forget_fraction * n_authors + 1e-9)
    if not 1 <= n_forget < n_authors:
        raise ValueError(f"tofu_author_subset: forget_fraction={forget_fraction} of {n_authors} "
                         f"authors is {n_forget} authors; it must leave at least one author in "
                         f"each of forget and retain")
    subset = [dict(r) for r in rows_full[len(rows_full) - n_authors * qa_per_author:]]
    cut = len(subset) - n_forget * qa_per_author
    return subset[cut:], subset[:cut]


def tofu_attach_perturbed(rows: list[dict], *perturbed: list[dict]) -> list[dict]:
    """Copies of `rows` with ``paraphrased_answer``, ``paraphrased_question`` and
    ``perturbed_answer`` from the row of the `perturbed` configs (e.g. forget10_perturbed,
    retain_perturbed) with the same question and answer, where there is one; ``item_id`` and
    every other field of `rows` are kept. Rows without a match are returned unchanged."""
    lookup = {(p["question"], p["answer"]): p for rows_p in perturbed for p in rows_p}
    out = []
    for r in rows:
        match = lookup.get((r["question"], r["answer"]))
        extra = {f: match[f] for f in _PERTURBED_FIELDS if match is not None and f in match}
        out.append({**r, **extra})
    return out
