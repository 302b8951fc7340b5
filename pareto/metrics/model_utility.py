"""TOFU Model Utility: the harmonic mean of nine numbers (field-notes §3).

{retain, real_authors, world_facts} × {prob, rouge, truth_ratio}, keyed "<split>/<metric>"
(see MODEL_UTILITY_KEYS), each the split-level mean:

* "<split>/prob": retain — mean P(answer|question) (`answer_probability`); real_authors /
  world_facts — mean normalised probability P_c / (P_c + Σ P_pert) (`normalized_probability`).
* "<split>/rouge": mean ROUGE-L recall of the greedy answers (`rouge_l_recall`).
* "<split>/truth_ratio": `truth_ratio_stat(tr, split)` = mean(max(0, 1 − tr)).

Harmonic-mean convention as scipy.stats.hmean: any part equal to 0 makes the utility 0.
"""

from __future__ import annotations

import math
from typing import Mapping

__all__ = ["model_utility", "MODEL_UTILITY_KEYS", "MU_SPLITS", "MU_METRICS"]

MU_SPLITS = ("retain", "real_authors", "world_facts")
MU_METRICS = ("prob", "rouge", "truth_ratio")
#: The nine keys `model_utility` requires, exactly.
MODEL_UTILITY_KEYS = tuple(f"{s}/{m}" for s in MU_SPLITS for m in MU_METRICS)


def model_utility(parts: Mapping[str, float]) -> float:
    """Harmonic mean of exactly the nine MODEL_UTILITY_KEYS parts; 0 if any part is 0.

    ValueError on missing or extra keys (both listed), NaN, infinite or negative parts (named).
    """
    missing = [k for k in MODEL_UTILITY_KEYS if k not in parts]
    extra = sorted(k for k in parts if k not in MODEL_UTILITY_KEYS)
    if missing or extra:
        raise ValueError(f"model_utility needs exactly {list(MODEL_UTILITY_KEYS)}; "
                         f"missing {missing}, extra {extra}")
    values = {k: float(parts[k]) for k in MODEL_UTILITY_KEYS}
    nan = [k for k, v in values.items() if math.isnan(v)]
    if nan:
        raise ValueError(f"model_utility part(s) {nan} are NaN")
    bad = [f"{k}={v}" for k, v in values.items() if math.isinf(v) or v < 0]
    if bad:
        raise ValueError(f"model_utility parts must be finite and >= 0: {bad}")
    if any(v == 0.0 for v in values.values()):
        return 0.0
    return len(values) / math.fsum(1.0 / v for v in values.values())
