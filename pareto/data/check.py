"""Checks of a data set before any work, shared by the sources' preflights (pareto.sources): how
much the forget and retain sets overlap, and whether a split by authors leaves both non-empty."""

from __future__ import annotations


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
