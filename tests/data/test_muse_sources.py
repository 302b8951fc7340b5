"""MUSE-News as a sweep data source: the whole benchmark, and the CPU subset of `articles`."""

import json
import re

import pytest

from pareto.data.muse import occurs, verbmem_from_articles
from pareto.sources import load_data

SPLITS = {"verbmem", "knowmem_forget", "knowmem_forget_icl", "knowmem_retain", "knowmem_retain_icl",
          "privleak_forget", "privleak_holdout"}


@pytest.fixture(scope="module")
def muse_dir(real_data):
    return real_data("muse_news")


def load(path, **kw):
    return load_data({"source": "muse_news", "path": str(path), **kw})


def raw(path, split):
    return json.loads((path / split).read_text())


def test_whole_benchmark(muse_dir):
    data = load(muse_dir)
    assert data.name == "muse_news"
    forget = [t for t in raw(muse_dir, "raw/forget.json") if t.strip()]  # one empty article (821) dropped
    assert [r["text"] for r in data.forget] == forget and len(forget) == 888
    assert [r["text"] for r in data.retain] == raw(muse_dir, "raw/retain.json")
    assert set(data.eval_splits) == SPLITS
    assert {k: len(v) for k, v in data.eval_splits.items()} == {
        "verbmem": 100, "knowmem_forget": 100, "knowmem_retain": 100, "knowmem_forget_icl": 10,
        "knowmem_retain_icl": 10, "privleak_forget": 100, "privleak_holdout": 100}
    assert data.eval_splits["verbmem"] == raw(muse_dir, "verbmem/forget.json")
    assert [r["text"] for r in data.eval_splits["privleak_holdout"]] == raw(muse_dir, "privleak/holdout.json")


def test_cpu_subset_items_refer_to_the_chosen_articles(muse_dir):
    data = load(muse_dir, articles=8)
    assert data.name == "muse_news:first8articles"
    assert [r["text"] for r in data.forget] == raw(muse_dir, "raw/forget.json")[:8]
    assert [r["text"] for r in data.retain] == raw(muse_dir, "raw/retain.json")[:8]
    s = data.eval_splits
    assert set(s) == SPLITS
    assert {k: len(v) for k, v in s.items()} == {
        "verbmem": 8, "knowmem_forget": 2, "knowmem_retain": 7, "knowmem_forget_icl": 10,
        "knowmem_retain_icl": 10, "privleak_forget": 8, "privleak_holdout": 100}
    # verbmem: an article's first 32 words, then the rest of it
    for item, article in zip(s["verbmem"], data.forget):
        assert article["text"].startswith(item["prompt"]) and article["text"].endswith(item["gt"])
        assert len(item["prompt"].split()) == 32 and item["gt"].split() == article["text"].split()[32:]
    assert s["verbmem"][0]["item_id"] == "verbmem:article0"
    # knowmem: MUSE's items whose answer occurs in a chosen article, with their index in the full file
    full = raw(muse_dir, "knowmem/forget_qa.json")
    for item in s["knowmem_forget"]:
        i = int(item["item_id"].split(":")[1])
        assert (item["question"], item["answer"]) == (full[i]["question"], full[i]["answer"])
        assert any(occurs(item["answer"], a["text"]) for a in data.forget)
    assert not any(occurs(q["answer"], a["text"]) for q in full if q["question"] not in
                   {x["question"] for x in s["knowmem_forget"]} for a in data.forget)
    assert all(any(occurs(q["answer"], a["text"]) for a in data.retain) for q in s["knowmem_retain"])
    assert s["knowmem_forget_icl"] == raw(muse_dir, "knowmem/forget_qa_icl.json")
    # privleak: the chosen forget articles (members) against MUSE's holdout texts
    assert [r["text"] for r in s["privleak_forget"]] == [r["text"] for r in data.forget]
    assert [r["text"] for r in s["privleak_holdout"]] == raw(muse_dir, "privleak/holdout.json")


def test_context_cuts_holdout_texts_to_the_scored_words(muse_dir):
    full = raw(muse_dir, "privleak/holdout.json")
    cut = load(muse_dir, articles=8, context=64).eval_splits["privleak_holdout"]
    for r, text in zip(cut, full):
        assert text.startswith(r["text"]) and len(r["text"].split()) == 64
        assert r["text"].split() == text.split()[:64]


def test_helpers():
    assert occurs("16", "aged 16.") and not occurs("16", "in 2016") and not occurs("May", "Mayor")
    items = verbmem_from_articles([{"text": "short one"}, {"text": " ".join(map(str, range(70)))}],
                                  prompt_words=32, min_gt_words=32, ids=[5, 9])
    assert len(items) == 1 and items[0]["item_id"] == "verbmem:article9"
    assert items[0]["prompt"].split() == [str(i) for i in range(32)]
    assert re.match(r"^32 33 ", items[0]["gt"])
