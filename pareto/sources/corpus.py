"""Your own text corpus: `data.forget_file` and `data.retain_file`, each JSON, JSON lines or Parquet
with a `text` per record (documents, articles, chapters; pareto.data.custom, kind corpus).

The target trains on each text in windows of `data.context` tokens, as for MUSE-News. Besides the
losses over every window (loss_f_eval, loss_r_eval), `verbmem_f` measures verbatim memorisation
of the forget texts as MUSE does (ROUGE-L F1 of the model's continuation): its items are built
from each forget text with at least 64 words, its first 32 words the prompt and the rest the
reference (pareto.data.muse.verbmem_from_articles).
"""

from __future__ import annotations

from pareto.data.muse import VERBMEM_MIN_GT_WORDS, VERBMEM_PROMPT_WORDS
from pareto.sources._base import DataBundle, SourceCheck, register_source
from pareto.sources.custom import Custom

LOSS_PLANE = ("loss_f_eval", "loss_r_eval")


@register_source("corpus")
class Corpus(Custom):
    eval_splits = ("verbmem",)
    metric_data = ("text",)
    metrics = (*LOSS_PLANE, "verbmem_f")
    family, planes = "corpus", (LOSS_PLANE, ("verbmem_f", "loss_r_eval"))
    kind, record = "corpus", "record with a text"
    summary = "your own forget/retain text corpus (JSON, JSONL or Parquet records with a `text`)"

    def preflight(self, data: dict, out: SourceCheck) -> dict:
        rows = super().preflight(data, out)
        forget = rows.get("forget_file")
        if forget:
            short = sum(len(r["text"].split()) < VERBMEM_PROMPT_WORDS + VERBMEM_MIN_GT_WORDS for r in forget)
            if short:
                out.warnings.append(f"data: {short} of {len(forget)} forget texts are shorter than "
                                    f"{VERBMEM_PROMPT_WORDS + VERBMEM_MIN_GT_WORDS} words and give no verbmem_f item"
                                    + (" (so verbmem_f has none to score)" if short == len(forget) else ""))
        return rows

    def load(self, data: dict) -> DataBundle:
        from pareto.data.muse import verbmem_from_articles

        bundle = super().load(data)
        bundle.eval_splits["verbmem"] = verbmem_from_articles(bundle.forget)
        return bundle
