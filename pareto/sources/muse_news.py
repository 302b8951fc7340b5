"""MUSE-News (Shi et al. 2024; muse-bench/MUSE-News) from the hub or a local folder in its layout
(pareto.data.muse): a corpus of news articles, rows {"text"}, with MUSE's evaluation splits for
verbmem, knowmem and privleak. `data.articles` N keeps the first N forget and N retain articles
(CPU-sized runs, see `load_muse_news_data`); `data.context` is the tokens per training window.
"""

from __future__ import annotations

import re

from pareto.sources._base import PROMPT_KEYS, DataBundle, DataSource, register_source
from pareto.sources.tofu import local_path_problem


@register_source("muse_news")
class MuseNews(DataSource):
    eval_splits = ("verbmem", "knowmem_forget", "knowmem_retain", "knowmem_forget_icl", "knowmem_retain_icl",
                   "privleak_forget", "privleak_holdout")
    keys = ("path", "articles") + PROMPT_KEYS
    metric_data = ("text", "muse")
    metrics = ("loss_f_eval", "loss_r_eval", "verbmem_f", "knowmem_f", "knowmem_r")
    family, planes = "muse", (("loss_f_eval", "loss_r_eval"), ("verbmem_f", "knowmem_f", "knowmem_r"))
    hub_repo, label = "muse-bench/MUSE-News", "MUSE-News"
    summary = "MUSE-News articles with verbmem, knowmem and privleak (the hub or a local copy); `articles` for CPU"

    def check(self, data: dict, add) -> None:
        why = local_path_problem(data["path"], self.label, self.hub_repo)
        if why:
            add(("data", "path"), why)

    def load(self, data: dict) -> DataBundle:
        return load_muse_news_data(data.get("path") or self.hub_repo, data.get("articles"), data.get("context"))

    def not_estimated(self, data: dict) -> str | None:
        return "MUSE-News: not estimated yet"

    def departures(self, data: dict) -> dict[str, list[str]]:
        n, out = data.get("articles"), {}
        if n is not None:  # load_muse_news_data: the items of the first N articles, not MUSE's own
            subset = f"subset mode (data.articles: {n})"
            out = {"verbmem_f": [f"{subset}: prompts are the first 32 words of each chosen forget article "
                                 "(MUSE's verbmem/forget.json prompts are ~674 words)"],
                   "knowmem_f": [f"{subset}: only MUSE's forget QA items whose answer occurs in a chosen article"],
                   "knowmem_r": [f"{subset}: only MUSE's retain QA items whose answer occurs in a chosen article"],
                   "privleak": [f"{subset}: the forget texts are the chosen forget articles, not privleak/forget.json"]}
        if data.get("context") is not None:
            out.setdefault("privleak", []).append(f"holdout texts cut to their first {data['context']} words "
                                                  "(data.context; MUSE scores whole texts)")
        return out

    def hub_parts(self, data: dict) -> list[tuple[str, str]]:
        parts = [("raw", "forget"), ("raw", "retain1"), ("privleak", "holdout")]
        parts += [("knowmem", f"{s}_qa{icl}") for s in ("forget", "retain") for icl in ("", "_icl")]
        if data.get("articles") is None:  # the whole benchmark: MUSE's own verbmem and privleak items
            parts += [("verbmem", "forget"), ("privleak", "forget")]
        return parts

    def hub_filename(self, part: str, split: str) -> str:
        from pareto.data.muse import hub_filename

        return hub_filename(part, split)


def _retain_split(path: str) -> str:
    """raw/retain in the local layout; raw/retain1 on the hub (MUSE's retain set for unlearning)."""
    from pareto.data.tofu import local_directory

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
    from pareto.data.muse import knowmem_in_articles, load_muse_news, verbmem_from_articles

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
