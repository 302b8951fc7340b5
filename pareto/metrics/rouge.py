"""ROUGE-L recall of generated answers against the ground truth.

The definition of open-unlearning and legacy TOFU: `rouge_score`'s RougeScorer(["rougeL"],
use_stemmer=True).score(target=ground_truth, prediction=generation)["rougeL"].recall.
(MUSE's own code turns the stemmer off and reports F1; see field-notes.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from rouge_score import rouge_scorer


@lru_cache(maxsize=2)
def _scorer(use_stemmer: bool) -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


def rouge_l_recall(generations: Sequence[str], references: Sequence[str], use_stemmer: bool = True) -> list[float]:
    scorer = _scorer(use_stemmer)
    return [scorer.score(target=ref, prediction=gen)["rougeL"].recall for gen, ref in zip(generations, references)]
