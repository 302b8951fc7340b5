"""The data a sweep unlearns and evaluates, from the spec's `data:` section.

    embedded  the built-in synthetic authors (made together with the embedded target)
    tofu      TOFU from a local directory in the official layout or the hub (`path`), the
              forget split `forget` (forget01/05/10) or, for CPU-sized runs, the last `authors`
              authors of `full` with the last `forget_fraction` of them forgotten
    custom    your own forget/retain files (JSON, JSONL or Parquet) with question/answer fields
    muse_news MUSE-News (`path`: a local directory in its layout or the hub repo): a corpus of
              news articles, rows {"text"}; `articles` N keeps the first N forget and N retain
              articles (CPU-sized runs, see `load_muse_news_data`)

Evaluation splits beyond forget/retain (TOFU's real_authors and world_facts with their
perturbed answers) come along where the source has them; TOFU's retain metrics use the retain
rows that TOFU ships perturbed answers for (retain_perturbed), as TOFU's own evaluation does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pareto.data.custom import load_custom
from pareto.data.muse import (MUSE_NEWS_REPO, knowmem_in_articles, load_muse_news, verbmem_from_articles)
from pareto.data.tofu import (TOFU_REPO, load_tofu, local_directory, tofu_attach_perturbed, tofu_author_subset,
                              tofu_split)


@dataclass
class DataBundle:
    name: str
    forget: list[dict]
    retain: list[dict]
    eval_splits: dict[str, list[dict]] = field(default_factory=dict)


def load_data(data: dict) -> DataBundle:
    """`data` is the spec's data section as a dict (see pareto.spec.DataSpec)."""
    source = data["source"]
    if source == "tofu":
        path = data.get("path") or TOFU_REPO
        perturbed = [load_tofu(c, path) for c in ("forget10_perturbed", "retain_perturbed")]
        if data.get("authors"):
            forget, retain = tofu_author_subset(load_tofu("full", path), data["authors"], data["forget_fraction"])
            name = f"tofu:last{data['authors']}authors:forget{data['forget_fraction']:g}"
        else:
            forget_cfg, retain_cfg = tofu_split(data["forget"])
            forget, retain = load_tofu(forget_cfg, path), load_tofu(retain_cfg, path)
            name = f"tofu:{data['forget']}"
        forget, retain = tofu_attach_perturbed(forget, *perturbed), tofu_attach_perturbed(retain, *perturbed)
        eval_splits = {split: load_tofu(f"{split}_perturbed", path) for split in ("real_authors", "world_facts")}
        # retain metrics on the retain rows TOFU ships perturbed answers for (its retain_perturbed)
        eval_splits["retain"] = [r for r in retain if "perturbed_answer" in r]
        return DataBundle(name, forget, retain, eval_splits)
    if source == "custom":
        forget = load_custom(data["forget_file"], kind="qa")
        retain = load_custom(data["retain_file"], kind="qa")
        return DataBundle(f"custom:{data['forget_file']}", forget, retain)
    if source == "muse_news":
        return load_muse_news_data(data.get("path") or MUSE_NEWS_REPO, data.get("articles"), data.get("context"))
    raise ValueError(f"data source {source!r} is built with its target; load_data takes 'tofu', 'custom' "
                     f"or 'muse_news'")


def _retain_split(path: str) -> str:
    """raw/retain in the local layout; raw/retain1 on the hub (MUSE's retain set for unlearning)."""
    directory = local_directory(path)
    if directory is not None and (any((directory / "raw").glob("retain.json*"))
                                  or any((directory / "raw").glob("retain-*.parquet"))):
        return "retain"
    return "retain1"


def first_words(text: str, n: int) -> str:
    """`text` up to the end of its `n`-th whitespace-separated word."""
    words = list(re.finditer(r"\S+", text))
    return text if len(words) <= n else text[:words[n - 1].end()]


def load_muse_news_data(path: str, articles: int | None = None, context: int | None = None) -> DataBundle:
    """MUSE-News as a sweep's data: forget = raw/forget, retain = raw/retain (local layout) or
    raw/retain1 (hub), as {"text"} rows (empty articles dropped: the local raw/forget has one,
    index 821), and the evaluation splits of `pareto.metrics.muse`:

        verbmem                           {prompt, gt}
        knowmem_forget, knowmem_retain    {question, answer}; *_icl the few-shot examples
        privleak_forget, privleak_holdout {text}

    `articles` None: the benchmark as published — verbmem/forget, knowmem/{forget,retain}_qa,
    privleak/{forget,holdout}. `articles` N (a CPU-sized subset): the first N forget and first N
    retain articles, and evaluation items that refer to them (MUSE's own items are spread over
    all 889 articles):
      * verbmem: built from the chosen forget articles (`verbmem_from_articles`: the first 32
        words as prompt, the rest as gt) instead of verbmem/forget.json;
      * knowmem_forget / knowmem_retain: the QA items whose answer occurs as whole words in a
        chosen forget / retain article (`knowmem_in_articles`); the ICL examples are MUSE's,
        unchanged;
      * privleak_forget: the chosen forget articles themselves (members of the target's training
        data) instead of privleak/forget.json; privleak_holdout is privleak/holdout, unchanged.
    `context` (tokens per window, the target's max_length): privleak texts are scored over their
    first `context` tokens (pareto.metrics.muse.privleak_auc), so the holdout texts are cut to
    their first `context` words, which hold at least that many tokens: the scores do not change,
    and a tiny word-level tokenizer need not learn the ~10,000 words of the unscored rest.

    Training (either way) cuts each article into its own windows (`pareto.data.encode`), where
    MUSE cuts one stream of all articles. MUSE's 10-shot knowmem prompts are ≈ 300 tokens: a
    model needs a context of at least that plus 32.

    A split the subset leaves empty (no knowmem answer in the first few articles) stays empty; a
    metric that reads it says so. On the local copy, articles 8 gives 2 knowmem_forget and 7
    knowmem_retain items, 16 gives 6 and 8, 32 gives 10 and 8.
    """
    retain_split = _retain_split(path)
    forget = [r for r in load_muse_news("raw", "forget", path) if r["text"].strip()]
    retain = [r for r in load_muse_news("raw", retain_split, path) if r["text"].strip()]
    icl = {s: load_muse_news("knowmem", f"{s}_qa_icl", path) for s in ("forget", "retain")}
    qa = {s: load_muse_news("knowmem", f"{s}_qa", path) for s in ("forget", "retain")}
    holdout = load_muse_news("privleak", "holdout", path)
    if context is not None:
        holdout = [{**r, "text": first_words(r["text"], context)} for r in holdout]
    if articles is None:
        splits = {"verbmem": load_muse_news("verbmem", "forget", path),
                  "knowmem_forget": qa["forget"], "knowmem_retain": qa["retain"],
                  "privleak_forget": load_muse_news("privleak", "forget", path)}
        name = "muse_news"
    else:
        if not isinstance(articles, int) or articles < 1:
            raise ValueError(f"articles must be a positive integer (or None for the whole benchmark), got {articles!r}")
        forget, retain = forget[:articles], retain[:articles]
        splits = {"verbmem": verbmem_from_articles(forget),
                  "knowmem_forget": knowmem_in_articles(qa["forget"], forget, "forget"),
                  "knowmem_retain": knowmem_in_articles(qa["retain"], retain, "retain"),
                  "privleak_forget": [{"text": r["text"], "item_id": f"privleak_forget:article{i}"}
                                      for i, r in enumerate(forget)]}
        name = f"muse_news:first{articles}articles"
    splits.update(knowmem_forget_icl=icl["forget"], knowmem_retain_icl=icl["retain"], privleak_holdout=holdout)
    return DataBundle(name, forget, retain, splits)
