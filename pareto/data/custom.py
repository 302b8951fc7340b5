"""Bring-your-own forget/retain data: JSON, JSON lines or Parquet files of records.

Two kinds of rows are understood:

* QA rows (TOFU's field names): ``question`` and ``answer`` (strings), optionally
  ``paraphrased_answer`` (string), ``perturbed_answer`` (list of strings),
  ``paraphrased_question`` (string). Other fields are kept untouched.
* Corpus rows: ``text`` (string), for pretraining-style unlearning on raw text
  (see :func:`pareto.data.muse.chunk_texts`).

File formats, chosen by the file's suffix:

* ``.json``: a JSON array of records, or JSON lines (one record per line; TOFU's official
  files are JSON lines despite the suffix). The content decides, not the suffix.
* ``.jsonl`` / ``.ndjson``: the same reader (JSON lines, or an array if that is what is there).
* ``.parquet``: one record per table row (read with pyarrow).

A JSON array of plain strings (MUSE's ``raw/*.json`` layout) is read as corpus rows
``{"text": s}``. Every problem names the file, the first row (0-based index into the
records) that has it, and the fields that row does have.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

QA_FIELDS = ("question", "answer")
CORPUS_FIELDS = ("text",)
KINDS = ("auto", "qa", "corpus")
SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet")
NEEDS = "pareto needs question and answer for QA data or text for a corpus."


def read_json_records(path: str | Path) -> list[Any]:
    """The records of a JSON array file or a JSON lines file (whichever the content is).

    Plain-string records are returned as they are; :func:`as_records` wraps them.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    head = text.lstrip()
    if not head:
        raise ValueError(f"{path} is empty: expected a JSON array or JSON lines of records")
    if head.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg})") from None
        if not isinstance(data, list):  # pragma: no cover - a '[' always parses to a list
            raise ValueError(f"{path}: expected a JSON array of records")
        return data
    records: list[Any] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if lineno == 1:  # maybe one pretty-printed object, not JSON lines
                try:
                    whole = json.loads(text)
                except json.JSONDecodeError:
                    whole = None
                if isinstance(whole, dict):
                    raise ValueError(
                        f"{path} holds a single JSON object, not records: expected a JSON array "
                        f"of records or JSON lines (one record per line)") from None
            raise ValueError(f"{path} line {lineno} is not valid JSON ({exc.msg}, column "
                             f"{exc.colno}): expected a JSON array or JSON lines (one record per "
                             f"line)") from None
    return records


def read_parquet_records(path: str | Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def as_records(items: Sequence[Any], source: str) -> list[dict]:
    """Records as dicts: plain strings become ``{"text": s}``; anything else is an error."""
    rows: list[dict] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            rows.append(item)
        elif isinstance(item, str):
            rows.append({"text": item})
        else:
            raise ValueError(f"{source} row {i} is a {type(item).__name__}, not a record "
                             f"(a JSON object) or a text string. {NEEDS}")
    return rows


def read_records(path: str | Path) -> list[dict]:
    """Records of a .json / .jsonl / .ndjson / .parquet file, strings wrapped as ``{"text"}``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
                         f"pareto reads {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist" if not path.exists()
                                else f"{path} is not a file")
    items = read_parquet_records(path) if suffix == ".parquet" else read_json_records(path)
    return as_records(items, str(path))


def _fields(row: dict) -> str:
    return ", ".join(map(str, row)) or "(none)"


def require_fields(rows: Sequence[dict], fields: Sequence[str], source: str) -> None:
    """Raise ValueError naming the first row that lacks one of `fields` (or has it null).

    e.g. "forget.json row 3 has no 'answer' field (fields present: question, ans). pareto
    needs question and answer for QA data or text for a corpus."
    """
    for field in fields:
        for i, row in enumerate(rows):
            if field not in row:
                raise ValueError(f"{source} row {i} has no {field!r} field (fields present: "
                                 f"{_fields(row)}). {NEEDS}")
            if row[field] is None:
                raise ValueError(f"{source} row {i} has an empty (null) {field!r} field "
                                 f"(fields present: {_fields(row)}). {NEEDS}")


def detect_kind(rows: Sequence[dict], source: str = "data") -> str:
    """'qa' when the first row has a question, 'corpus' when it has a text."""
    if not rows:
        raise ValueError(f"{source} has no records")
    first = rows[0]
    if "question" in first or "answer" in first:
        return "qa"
    if "text" in first:
        return "corpus"
    raise ValueError(f"{source} row 0 has neither 'question'/'answer' nor 'text' (fields present: "
                     f"{_fields(first)}). {NEEDS}")


def validate_rows(rows: Sequence[dict], kind: str, source: str) -> None:
    """Required fields present and strings; optional TOFU fields well-typed when present."""
    required = QA_FIELDS if kind == "qa" else CORPUS_FIELDS
    require_fields(rows, required, source)
    for i, row in enumerate(rows):
        for field in required:
            if not isinstance(row[field], str):
                raise ValueError(f"{source} row {i}: {field!r} must be a string, got "
                                 f"{type(row[field]).__name__}")
        for field in ("paraphrased_answer", "paraphrased_question"):
            value = row.get(field)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{source} row {i}: {field!r} must be a string, got "
                                 f"{type(value).__name__}")
        if row.get("perturbed_answer") is not None:
            check_perturbed(row["perturbed_answer"], source, i)


def check_perturbed(value: Any, source: str, row: int) -> None:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{source} row {row}: 'perturbed_answer' must be a list of strings (wrong "
                         f"answers of the same form), got {type(value).__name__}")
    if not value:
        raise ValueError(f"{source} row {row}: 'perturbed_answer' is an empty list; give at least "
                         f"one wrong answer or leave the field out")
    for j, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"{source} row {row}: 'perturbed_answer' must be a list of strings, "
                             f"but element {j} is {type(item).__name__}")


def load_custom(path: str | Path, kind: str = "auto") -> list[dict]:
    """Load and validate a forget or retain file of your own.

    `kind`: "qa" (question + answer), "corpus" (text; "text" is accepted as an alias) or
    "auto" (decided by the first row). Rows are returned as read (plain strings of a JSON
    array become ``{"text": s}``); nothing is added or renamed.
    """
    kind = "corpus" if kind == "text" else kind
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    path = Path(path).expanduser()
    rows = read_records(path)
    if not rows:
        raise ValueError(f"{path} has no records. {NEEDS}")
    if kind == "auto":
        kind = detect_kind(rows, str(path))
    validate_rows(rows, kind, str(path))
    return rows
