"""Rows → training examples, for both kinds of data a sweep unlearns.

    QA rows    {"question", "answer", ...}  (TOFU, custom, the embedded authors): one example per
               row, `encode_qa` with the prompt template by name — labels on the answer tokens
               and EOS only.
    text rows  {"text"}  (MUSE-News articles): each text cut into windows of `max_length`
               tokens (`chunk_texts`, each text on its own), labels on every token but BOS.

Texts are chunked one by one (`cross_texts=False`) rather than as MUSE's single concatenated
stream: every article then starts a window, right after BOS, so a prompt taken from an article's
beginning (the CPU subset's verbmem items, `pareto.data.muse.verbmem_from_articles`) sits at the
positions the model learned it at (the tiny GPT-2 has absolute position embeddings), and an
article's windows are its own (per-article losses in `pareto.metrics.loss`). The cost is a
short last window per article (padding), which MUSE's stream avoids.
"""

from __future__ import annotations

from typing import Sequence

from pareto.data.muse import chunk_texts
from pareto.data.qa import IGNORE, Encoded, encode_qa
from pareto.data.templates import resolve_template

__all__ = ["encode_rows", "row_kind"]


def _kind(row) -> str | None:
    if not isinstance(row, dict):
        return None
    if isinstance(row.get("question"), str) and isinstance(row.get("answer"), str):
        return "qa"
    if isinstance(row.get("text"), str):
        return "text"
    return None


def row_kind(rows: Sequence[dict], what: str = "rows") -> str:
    """"qa" when every row has question and answer strings, "text" when every row has a text;
    ValueError (naming the first odd row) for anything else, mixtures included."""
    if not rows:
        raise ValueError(f"{what}: no rows")
    first = _kind(rows[0])
    for i, r in enumerate(rows):
        k = _kind(r)
        if k is None or k != first:
            fields = ", ".join(map(str, r)) if isinstance(r, dict) else type(r).__name__
            expected = {"qa": "question and answer strings", "text": "a 'text' string"}.get(
                first, "question/answer strings (QA) or a 'text' string (a corpus)")
            raise ValueError(f"{what} row {i} has fields [{fields}]; expected {expected} like row 0. "
                             f"A data set is either QA pairs or texts, not both.")
    return first  # type: ignore[return-value]


def encode_rows(tokenizer, rows: Sequence[dict], *, max_length: int, template: str = "plain",
                add_bos: bool = True) -> list[Encoded]:
    """Training examples of `rows`: one per QA pair, or the `max_length`-token windows of the
    texts. `template` is a template name (pareto.data.templates), used for QA rows only."""
    if row_kind(rows) == "qa":
        fmt = resolve_template(template)
        return [encode_qa(tokenizer, r["question"], r["answer"], max_length=max_length,
                          add_bos=add_bos, template=fmt) for r in rows]
    resolve_template(template)  # a bad name is an error for any data
    bos = add_bos and tokenizer.bos_token_id is not None
    windows = chunk_texts(rows, tokenizer, max_length, add_bos=bos, cross_texts=False)
    return [Encoded(list(w), [IGNORE] + list(w[1:]) if bos else list(w), 1 if bos else 0)
            for w in windows]
