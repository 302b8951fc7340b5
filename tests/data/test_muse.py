import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pareto.data.muse import (
    MUSE_NEWS_HUB_SPLITS, MUSE_NEWS_SPLITS, chunk_texts, hub_filename, load_muse_news,
)
from pareto.data.tofu import HubUnavailableError

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"

LOCAL_COUNTS = {
    ("raw", "forget"): 889, ("raw", "retain"): 889,
    ("verbmem", "forget"): 100,
    ("knowmem", "forget_qa"): 100, ("knowmem", "retain_qa"): 100,
    ("knowmem", "forget_qa_icl"): 10, ("knowmem", "retain_qa_icl"): 10,
    ("privleak", "forget"): 100, ("privleak", "retain"): 100, ("privleak", "holdout"): 100,
}
KEYS = {"raw": {"text"}, "privleak": {"text"}, "verbmem": {"prompt", "gt"}, "knowmem": {"question", "answer"}}


@pytest.fixture(scope="module")
def muse_dir(real_data) -> Path:
    return real_data("muse_news")


@pytest.mark.parametrize("part,split", sorted(LOCAL_COUNTS))
def test_local_counts_and_row_shapes(muse_dir, part, split):
    rows = load_muse_news(part, split, muse_dir)
    assert len(rows) == LOCAL_COUNTS[(part, split)]
    assert all(set(r) == KEYS[part] for r in rows)
    assert all(isinstance(v, str) for r in rows for v in r.values())
    if part != "raw":  # raw/forget.json has one empty article (index 821) in the official copy
        assert all(v for r in rows for v in r.values())


def test_extra_raw_splits_when_present(muse_dir):
    for split in ("extra_1", "extra_2"):
        if (muse_dir / "raw" / f"{split}.json").is_file():
            rows = load_muse_news("raw", split, muse_dir)
            assert rows and all(set(r) == {"text"} for r in rows)


def test_raw_texts_are_the_file_strings(muse_dir):
    strings = json.loads((muse_dir / "raw" / "forget.json").read_text())
    assert load_muse_news("raw", "forget", muse_dir) == [{"text": s} for s in strings]


def write_parquet(rows, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_hub_path_from_a_prefilled_cache(muse_dir, tmp_path):
    local = load_muse_news("knowmem", "forget_qa", muse_dir)
    shard = tmp_path / "src" / "shard.parquet"
    write_parquet(local, shard)
    repo_dir = tmp_path / "hf" / "datasets--muse-bench--MUSE-News"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    dst = repo_dir / "snapshots" / COMMIT / hub_filename("knowmem", "forget_qa")
    dst.parent.mkdir(parents=True)
    shutil.copyfile(shard, dst)
    assert hub_filename("knowmem", "forget_qa") == "knowmem/forget_qa-00000-of-00001.parquet"
    hub = load_muse_news("knowmem", "forget_qa", "muse-bench/MUSE-News", cache_dir=tmp_path / "hf",
                         local_files_only=True)
    assert hub == local


def test_empty_cache_offline_gives_a_clear_error(tmp_path):
    with pytest.raises(HubUnavailableError) as info:
        load_muse_news("verbmem", "forget", cache_dir=tmp_path / "empty", local_files_only=True)
    msg = str(info.value)
    assert "verbmem/forget-00000-of-00001.parquet of muse-bench/MUSE-News is not in the Hugging Face cache" in msg
    assert "<directory>/verbmem/forget.json" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_hub_split_names():
    assert MUSE_NEWS_HUB_SPLITS["raw"] == ("forget", "retain1", "retain2", "holdout")
    for part, splits in MUSE_NEWS_HUB_SPLITS.items():
        assert set(splits) <= set(MUSE_NEWS_SPLITS[part])
    with pytest.raises(ValueError, match="'retain1'"):
        load_muse_news("raw", "retain", "muse-bench/MUSE-News", local_files_only=True)
    with pytest.raises(ValueError, match="only in the local layout"):
        load_muse_news("raw", "extra_1", "muse-bench/MUSE-News", local_files_only=True)


def test_unknown_part_and_split(tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'knowmem'"):
        load_muse_news("knowmen", "forget_qa", tmp_path)
    with pytest.raises(ValueError, match="Did you mean 'forget_qa'.*forget_qa_icl"):
        load_muse_news("knowmem", "forget-qa", tmp_path)


def test_missing_local_file_names_path(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "forget.json").write_text('["a text"]')
    with pytest.raises(FileNotFoundError) as info:
        load_muse_news("raw", "retain", tmp_path)
    assert str(tmp_path / "raw" / "retain.json") in str(info.value) and "forget" in str(info.value)
    assert load_muse_news("raw", "forget", tmp_path) == [{"text": "a text"}]


def test_hub_snapshot_directory_prefers_parquet_shards(tmp_path):
    write_parquet([{"prompt": "p", "gt": "g"}], tmp_path / "verbmem" / "forget-00000-of-00001.parquet")
    (tmp_path / "verbmem" / "forget.json").write_text(json.dumps(["stale old-format text"]))
    assert load_muse_news("verbmem", "forget", tmp_path) == [{"prompt": "p", "gt": "g"}]


def test_wrong_fields_are_named(tmp_path):
    (tmp_path / "verbmem").mkdir()
    (tmp_path / "verbmem" / "forget.json").write_text(json.dumps([{"prompt": "p", "answer": "g"}]))
    with pytest.raises(ValueError, match=r"forget\.json row 0 has no 'gt' field \(fields present: prompt, answer\)"):
        load_muse_news("verbmem", "forget", tmp_path)


class CharTokenizer:
    """One token per character; BOS = 0."""

    bos_token_id = 0

    def __call__(self, text, add_special_tokens=False):
        assert add_special_tokens is False
        return {"input_ids": [ord(c) for c in text]}


def decode(ids):
    return "".join(chr(i) for i in ids if i != 0)


def test_chunks_concatenate_then_cut():
    texts = ["abcdefg", "hij", "klmnopqrstu"]
    chunks = chunk_texts(texts, CharTokenizer(), max_length=5)
    stream = "abcdefg\n\nhij\n\nklmnopqrstu"
    assert [decode(c) for c in chunks] == [stream[i:i + 5] for i in range(0, len(stream), 5)]
    assert all(len(c) == 5 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 5
    assert any("\n" in decode(c) and decode(c).strip("\n") for c in chunks)  # crosses a text boundary
    assert chunk_texts([{"text": t} for t in texts], CharTokenizer(), 5) == chunks


def test_chunks_exact_multiple_has_no_empty_window():
    chunks = chunk_texts(["abcdef"], CharTokenizer(), max_length=3)
    assert [decode(c) for c in chunks] == ["abc", "def"]
    assert chunk_texts([], CharTokenizer(), 4) == []


def test_chunks_with_stride_bos_and_per_text():
    tok = CharTokenizer()
    overlap = chunk_texts(["abcdefgh"], tok, max_length=4, stride=2)
    assert [decode(c) for c in overlap] == ["abcd", "cdef", "efgh"]
    with_bos = chunk_texts(["abcdefgh"], tok, max_length=4, add_bos=True)
    assert with_bos == [[0, 97, 98, 99], [0, 100, 101, 102], [0, 103, 104]]
    per_text = chunk_texts(["abcde", "xy"], tok, max_length=3, cross_texts=False)
    assert [decode(c) for c in per_text] == ["abc", "de", "xy"]
    assert [decode(c) for c in chunk_texts(["ab", "cd"], tok, 10, separator="")] == ["abcd"]


def test_chunk_argument_errors():
    tok = CharTokenizer()
    with pytest.raises(ValueError, match="max_length"):
        chunk_texts(["abc"], tok, 0)
    with pytest.raises(ValueError, match="stride"):
        chunk_texts(["abc"], tok, 4, stride=5)
    with pytest.raises(ValueError, match="no room"):
        chunk_texts(["abc"], tok, 1, add_bos=True)
    with pytest.raises(ValueError, match="fields question"):
        chunk_texts([{"question": "q"}], tok, 4)


def test_chunk_real_corpus(muse_dir):
    rows = load_muse_news("privleak", "forget", muse_dir)
    chunks = chunk_texts(rows, CharTokenizer(), max_length=2048)
    joined = "\n\n".join(r["text"] for r in rows)
    assert "".join(decode(c) for c in chunks) == joined
    assert len(chunks) == -(-len(joined) // 2048)
