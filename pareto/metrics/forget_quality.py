"""TOFU Forget Quality: the two-sample KS-test p-value between forget-set truth ratios.

forget_quality(tr_unlearned, tr_retain_model) = scipy.stats.ks_2samp(tr_unlearned,
tr_retain_model).pvalue (default two-sided, method "auto": exact for up to 10,000 items per
sample), where each argument is the per-item forget-split truth ratio of one model
(`pareto.metrics.probability.truth_ratios(..., correct_field="paraphrased_answer")` on the
forget split): the unlearned model's and that of the reference model fine-tuned on the retain
set only. Higher is better (indistinguishable from the retain-only model).

Which values go in: the RAW per-item ratios tr = P_pert / P_correct, as open-unlearning passes
them (`value_by_index` of its truth_ratio metric) — not the aggregated min(tr, 1/tr) transform,
which is not monotone and would change the test. Legacy TOFU passes
exp(mean perturbed loss − paraphrased loss) = 1/tr instead; the KS statistic depends only on
the ranks of the pooled sample, so any strictly monotone map applied to both samples (1/tr,
log tr) gives the same p-value, and the two references agree.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import ks_2samp

__all__ = ["forget_quality"]


def _sample(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {x.shape}")
    if np.any(np.isnan(x)):  # ±inf are fine: the KS test only orders the values
        bad = np.flatnonzero(np.isnan(x))
        raise ValueError(f"{name} has NaN values at items {bad[:10].tolist()}")
    return x


def forget_quality(tr_unlearned: np.ndarray, tr_retain_model: np.ndarray) -> float:
    """KS-test p-value between the raw per-item forget truth ratios of the two models."""
    a = _sample("tr_unlearned", tr_unlearned)
    b = _sample("tr_retain_model", tr_retain_model)
    return float(ks_2samp(a, b).pvalue)
