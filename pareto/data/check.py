"""Checks of a spec's data before any work: files readable, fields present, forget set not empty,
and how much the forget and retain sets overlap.

`check_data(data)` takes the spec's `data:` section as a dict (pareto.spec.DataSpec) and returns
(problems, warnings): problems as (key, message) pairs — each message names the file, the row
and the field, and says what to do — and warnings as plain sentences. It reads only what is
cheap to read (your own files; the arithmetic of a TOFU subset), never a download.

    problems, warnings = check_data({"source": "custom", "forget_file": "f.json", "retain_file": "r.json"})
"""

from __future__ import annotations

import math
from pathlib import Path

from pareto.data.custom import load_custom

Problem = tuple[tuple, str]  # (key path in the spec, message)


def _key(row: dict) -> tuple:
    """What makes two QA rows the same example: the question and the answer, whitespace and case aside."""
    norm = lambda s: " ".join(str(s).split()).casefold()  # noqa: E731
    return norm(row.get("question", row.get("text", ""))), norm(row.get("answer", ""))


def overlap_warning(forget: list[dict], retain: list[dict], forget_name: str, retain_name: str) -> str | None:
    """A sentence saying how many forget rows also appear in the retain set (None when none do)."""
    retain_keys = {_key(r) for r in retain}
    shared = [i for i, r in enumerate(forget) if _key(r) in retain_keys]
    if not shared:
        return None
    rows = ", ".join(map(str, shared[:10])) + (", …" if len(shared) > 10 else "")
    return (f"{len(shared)} of {len(forget)} forget rows ({len(shared) / len(forget):.0%}) also appear in the "
            f"retain set ({len(shared)} of {len(retain)} retain rows have the same question and answer): "
            f"{forget_name} rows {rows}. Unlearning them works against retaining them; remove them from "
            f"{retain_name} (or from the forget file) unless that is the experiment")


def check_data(data: dict) -> tuple[list[Problem], list[str]]:
    problems: list[Problem] = []
    warnings: list[str] = []
    source = data.get("source")
    if source == "custom":
        rows = {}
        for key in ("forget_file", "retain_file"):
            path = data.get(key)
            if not path or not Path(path).expanduser().is_file():
                continue  # the spec's own check names a missing file
            try:
                rows[key] = load_custom(path, kind="qa")
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                msg = str(exc)
                if "has no records" in msg and key == "forget_file":
                    msg = (f"the forget set is empty: {path} has no records. Put at least one "
                           f"question/answer record in it (JSON array, JSON lines or Parquet)")
                problems.append((("data", key), msg))
        if len(rows) == 2:
            w = overlap_warning(rows["forget_file"], rows["retain_file"], str(data["forget_file"]),
                                str(data["retain_file"]))
            if w:
                warnings.append(f"data: {w}")
    elif source == "tofu" and isinstance(data.get("authors"), int) and data["authors"] >= 2:
        n, frac = data["authors"], data.get("forget_fraction", 0.1)
        if isinstance(frac, float) and 0 < frac < 1:
            n_forget = int(frac * n + 1e-9)
            if n_forget < 1:
                problems.append((("data", "forget_fraction"),
                                 f"the forget set is empty: forget_fraction {frac:g} of {n} authors is "
                                 f"{frac * n:g} author(s), rounded down to 0. Raise data.forget_fraction to "
                                 f"at least {1 / n:.3g} or data.authors to at least {math.ceil(1 / frac - 1e-9)}"))
            elif n_forget >= n:
                problems.append((("data", "forget_fraction"),
                                 f"forget_fraction {frac:g} of {n} authors forgets all {n}: the retain set is "
                                 f"empty. Lower data.forget_fraction"))
    return problems, warnings


def check_embedded_split(n_authors: int, forget_fraction: float) -> str | None:
    """The embedded data's forget set, like TOFU's subset: whole authors, rounded down."""
    n_forget = int(forget_fraction * n_authors + 1e-9)
    if n_forget < 1:
        return (f"the forget set is empty: forget_fraction {forget_fraction:g} of {n_authors} synthetic authors "
                f"is 0 authors. Raise target.embedded.forget_fraction to at least {1 / n_authors:.3g} "
                f"(or n_authors)")
    if n_forget >= n_authors:
        return (f"forget_fraction {forget_fraction:g} of {n_authors} synthetic authors forgets them all: the "
                f"retain set is empty. Lower target.embedded.forget_fraction")
    return None
