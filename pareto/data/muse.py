"""MUSE-News (Shi et al. 2024, muse-bench/MUSE-News, BBC articles, CC-BY-4.0).

Two sources, two layouts:

* A local directory in MUSE's original layout: ``raw/{forget,retain,extra_1,
  extra_2}.json`` (JSON arrays of article strings), ``verbmem/forget.json`` (``prompt``, ``gt``),
  ``knowmem/{forget,retain}_qa.json`` and ``knowmem/{forget,retain}_qa_icl.json``
  (``question``, ``answer``), ``privleak/{forget,retain,holdout}.json`` (strings). Files are read
  as JSON arrays or JSON lines. A directory holding a snapshot of the hub repo works too: when
  ``<part>/<split>-*.parquet`` shards are present they are read in preference to
  ``<part>/<split>.json`` (the hub keeps stale ``.json`` files of an older format next to the
  current Parquet shards, e.g. ``verbmem/forget.json``).
* The hub, ``muse-bench/MUSE-News``: one Parquet shard per split,
  ``<part>/<split>-00000-of-00001.parquet``, fetched with ``hf_hub_download``. Verified from the
  hub's file listings and dataset card at ``main`` (2024-07 onward): ``raw/{forget,retain1,retain2,
  holdout}``, ``verbmem/forget``, ``knowmem/{forget_qa,retain_qa,forget_qa_icl,retain_qa_icl}``,
  ``privleak/{forget,retain,holdout}``. The hub's ``raw`` has no ``retain`` split: MUSE unlearns
  with ``retain1`` as the retain set (open-unlearning's default) and evaluates utility on
  ``retain2``; the local copy's ``raw/retain`` and ``raw/extra_*`` exist only locally.
  Older revisions used other names (``retain2_qa``, ``privleak/retain2``); pass ``revision`` and
  the split name of that revision if you pin one.

Rows: texts as ``{"text": ...}``, verbmem as ``{"prompt", "gt"}``, knowmem as
``{"question", "answer"}``.

Chunking (:func:`chunk_texts`) follows MUSE's convention (muse_bench ``baselines/dataset.py``,
and open-unlearning's ``PretrainingDataset``): the corpus is one token stream, articles joined
by a separator, cut into consecutive windows of the model's context; windows cross article
boundaries.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from pareto._registry import did_you_mean
from pareto.data.custom import read_parquet_records, read_records, require_fields
from pareto.data.qa import text_ids
from pareto.data.tofu import hub_file, local_directory

MUSE_NEWS_REPO = "muse-bench/MUSE-News"

# Split names a local directory may have (the original layout, or a hub snapshot).
MUSE_NEWS_SPLITS: dict[str, tuple[str, ...]] = {
    "raw": ("forget", "retain", "extra_1", "extra_2", "retain1", "retain2", "holdout"),
    "verbmem": ("forget",),
    "knowmem": ("forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl"),
    "privleak": ("forget", "retain", "holdout"),
}
# Splits of muse-bench/MUSE-News at main (dataset card and file listing).
MUSE_NEWS_HUB_SPLITS: dict[str, tuple[str, ...]] = {
    "raw": ("forget", "retain1", "retain2", "holdout"),
    "verbmem": ("forget",),
    "knowmem": ("forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl"),
    "privleak": ("forget", "retain", "holdout"),
}
FIELDS = {"raw": ("text",), "verbmem": ("prompt", "gt"), "knowmem": ("question", "answer"),
          "privleak": ("text",)}


def hub_filename(part: str, split: str) -> str:
    return f"{part}/{split}-00000-of-00001.parquet"


def _check(part: str, split: str, splits: dict[str, tuple[str, ...]]) -> None:
    if part not in splits:
        raise ValueError(f"unknown MUSE-News part {part!r}.{did_you_mean(str(part), list(splits))} "
                         f"Parts: {', '.join(splits)}")
    valid = splits[part]
    if split not in valid:
        raise ValueError(f"unknown MUSE-News {part} split {split!r}.{did_you_mean(str(split), list(valid))} "
                         f"{part} splits: {', '.join(valid)}")


def _check_hub(part: str, split: str, repo: str) -> None:
    _check(part, split, MUSE_NEWS_SPLITS)
    valid = MUSE_NEWS_HUB_SPLITS[part]
    if split not in valid:
        hint = (" On the hub the retain articles are 'retain1' (MUSE's retain set for unlearning) "
                "and 'retain2' (used for evaluation)." if part == "raw" and split == "retain" else "")
        raise ValueError(f"MUSE-News {part} split {split!r} exists only in the local layout, not in "
                         f"{repo} (its {part} splits: {', '.join(valid)}).{hint} Pass a local "
                         f"directory that has {part}/{split}.json, or use a hub split.")


def _read_local(directory: Path, part: str, split: str) -> tuple[list[dict], str]:
    folder = directory / part
    shards = sorted(folder.glob(f"{split}-*.parquet"))
    if shards:
        rows: list[dict] = []
        for shard in shards:
            rows.extend(read_parquet_records(shard))
        return rows, str(shards[0]) if len(shards) == 1 else f"{folder}/{split}-*.parquet"
    for name in (f"{split}.json", f"{split}.jsonl"):
        if (folder / name).is_file():
            return read_records(folder / name), str(folder / name)
    present = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    where = (f"{folder} has: {', '.join(present)}" if present
             else f"{folder} has no .json files" if folder.is_dir() else f"{folder} does not exist")
    raise FileNotFoundError(
        f"MUSE-News {part}/{split}: {folder / (split + '.json')} does not exist ({where}). Use a "
        f"directory laid out like the MUSE-News copy (raw/forget.json, verbmem/forget.json, "
        f"knowmem/forget_qa.json, privleak/holdout.json, ...), or source={MUSE_NEWS_REPO!r} for the hub.")


def load_muse_news(part: str, split: str, source: str | Path = MUSE_NEWS_REPO, *, cache_dir=None,
                   local_files_only: bool = False, revision: str | None = None) -> list[dict]:
    """Rows of one MUSE-News split: ``{"text"}`` for raw/privleak, ``{"prompt", "gt"}`` for
    verbmem, ``{"question", "answer"}`` for knowmem.

    `source`: an existing directory (local layout, see the module docstring) or a hub dataset
    repo id (default ``muse-bench/MUSE-News``), whose ``<part>/<split>-00000-of-00001.parquet``
    is fetched with ``hf_hub_download`` (``cache_dir``, ``local_files_only``, ``revision``).
    """
    directory = local_directory(source)
    if directory is not None:
        _check(part, split, MUSE_NEWS_SPLITS)
        rows, where = _read_local(directory, part, split)
    else:
        repo = str(source)
        _check_hub(part, split, repo)
        path = hub_file(repo, hub_filename(part, split), cache_dir=cache_dir,
                        local_files_only=local_files_only, revision=revision,
                        what=f"MUSE-News {part}/{split}", local_hint=f"<directory>/{part}/{split}.json")
        rows, where = read_parquet_records(path), str(path)
    rows = [{"text": r} if isinstance(r, str) else r for r in rows]
    require_fields(rows, FIELDS[part], where)
    return rows


def _text_of(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return item["text"]
    raise ValueError(f"chunk_texts takes strings or {{'text': ...}} rows, got {type(item).__name__}"
                     + (f" with fields {', '.join(map(str, item))}" if isinstance(item, dict) else ""))


def chunk_texts(texts: Sequence[str | dict], tokenizer, max_length: int, stride: int | None = None, *,
                separator: str = "\n\n", add_bos: bool = False,
                cross_texts: bool = True) -> list[list[int]]:
    """Token-id windows of at most `max_length` over a corpus, for pretraining-style unlearning.

    Concatenate-then-chunk, MUSE's convention: each text is tokenised on its own
    (``add_special_tokens=False``), the texts are joined into one stream with the token ids of
    `separator` between them ("\\n\\n" as in open-unlearning's MUSE loader), and the stream is cut
    into windows starting every `stride` tokens (default: the window size, i.e. no overlap).
    Windows cross text boundaries, as in MUSE. The last window is kept even if shorter (MUSE
    instead wraps it round with tokens from the start of the corpus; open-unlearning keeps it
    short); no window is empty, and with a stride below the window size no window lies wholly
    inside the previous one.

    `add_bos`: start every window with the tokenizer's BOS (MUSE's ``add_bos_token``), taking
    one of the `max_length` positions. `cross_texts=False` chunks each text on its own instead.
    Tokenising texts separately can differ from tokenising the joined string at the joins for
    BPE tokenizers (a merge across the separator); it avoids feeding a whole corpus to the
    tokenizer as one string.
    """
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
    bos = getattr(tokenizer, "bos_token_id", None) if add_bos else None
    if add_bos and bos is None:
        raise ValueError("add_bos=True but the tokenizer has no bos_token_id")
    body = max_length - 1 if bos is not None else max_length
    if body < 1:
        raise ValueError(f"max_length={max_length} leaves no room for text after BOS")
    stride = body if stride is None else stride
    if not isinstance(stride, int) or not 1 <= stride <= body:
        raise ValueError(f"stride must be an integer in 1..{body} (the window's text length), "
                         f"got {stride!r}; a larger stride would skip tokens")

    def ids(text: str) -> list[int]:
        return text_ids(tokenizer, text)

    strings = [_text_of(t) for t in texts]
    if cross_texts:
        sep = ids(separator) if separator else []
        stream: list[int] = []
        for i, text in enumerate(strings):
            if i:
                stream.extend(sep)
            stream.extend(ids(text))
        streams = [stream]
    else:
        streams = [ids(text) for text in strings]

    windows: list[list[int]] = []
    for stream in streams:
        for start in range(0, len(stream), stride):
            window = stream[start:start + body]
            windows.append([bos] + window if bos is not None else window)
            if start + body >= len(stream):
                break
    return windows


# ----------------------------------------------------------------------------------------------
# the CPU subset: evaluation items that refer to the articles actually used

#: Verbmem prompts built from an article's beginning: this many whitespace-separated words.
VERBMEM_PROMPT_WORDS = 32
#: ... and an article must have at least this many words after the prompt to give an item.
VERBMEM_MIN_GT_WORDS = 32


def verbmem_from_articles(articles: Sequence[dict], *, prompt_words: int = VERBMEM_PROMPT_WORDS,
                          min_gt_words: int = VERBMEM_MIN_GT_WORDS,
                          ids: Sequence[int] | None = None) -> list[dict]:
    """MUSE-style verbmem items from `articles` (``{"text"}`` rows): prompt = the article's first
    `prompt_words` words, gt = the rest of the article, from the next word on (the metric keeps
    the first 128 tokens of gt, as MUSE does). MUSE's own items (verbmem/forget.json) are pieces
    of ~600 words from anywhere in a forget text followed by its next 128 tokens; prompts that
    long do not fit a CPU-sized model's context, and an article's beginning is where a model
    trained on per-article windows (pareto.data.encode) saw it. Articles with fewer than
    `prompt_words + min_gt_words` words give no item. `ids` label the items
    (``item_id = "verbmem:article<id>"``; default: the position in `articles`)."""
    items = []
    for j, row in enumerate(articles):
        words = list(re.finditer(r"\S+", row["text"]))
        if len(words) < prompt_words + min_gt_words:
            continue
        text = row["text"]
        items.append({"prompt": text[:words[prompt_words - 1].end()], "gt": text[words[prompt_words].start():],
                      "item_id": f"verbmem:article{ids[j] if ids is not None else j}"})
    return items


def occurs(phrase: str, text: str) -> bool:
    """`phrase` in `text` as whole words (case-sensitive): "16" is not found in "2016"."""
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text) is not None


def knowmem_in_articles(qa: Sequence[dict], articles: Sequence[dict], split: str) -> list[dict]:
    """The knowmem QA items whose answer occurs (`occurs`) in one of `articles`, in their order,
    each with ``item_id = "knowmem_<split>:<index in the full QA file>"``. This links an item to
    the chosen articles by its answer string only: a short answer (a year, "16") can occur in an
    article that is not about the question (see docs/muse_news.md)."""
    texts = [a["text"] for a in articles]
    return [{**r, "item_id": f"knowmem_{split}:{i}"} for i, r in enumerate(qa)
            if any(occurs(r["answer"], t) for t in texts)]
