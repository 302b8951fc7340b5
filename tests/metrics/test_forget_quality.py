"""Forget Quality = scipy.stats.ks_2samp(...).pvalue, checked against scipy and by hand."""

import itertools
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from pareto.metrics.forget_quality import forget_quality


def ks_statistic(a, b) -> float:
    """sup_x |F_a(x) − F_b(x)| over the pooled points (the ECDFs are right-continuous steps)."""
    return max(abs(sum(v <= x for v in a) / len(a) - sum(v <= x for v in b) / len(b))
               for x in list(a) + list(b))


def exact_p_by_enumeration(a, b) -> float:
    """P(D >= D_obs) under H0 for continuous data (no ties): every way of labelling the pooled
    ranks as sample a or sample b is equally likely; count those whose D reaches D_obs."""
    pooled = sorted(list(a) + list(b))
    d_obs = ks_statistic(a, b)
    n, hits, total = len(a), 0, 0
    for pick in itertools.combinations(range(len(pooled)), n):
        chosen = set(pick)
        aa = [pooled[i] for i in pick]
        bb = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        hits += ks_statistic(aa, bb) >= d_obs - 1e-12
        total += 1
    assert total == math.comb(len(pooled), n)
    return hits / total


@pytest.mark.parametrize("n1,n2,seed", [(40, 40, 0), (30, 45, 1), (400, 400, 2), (5, 200, 3)])
def test_equals_scipy_ks_2samp(n1, n2, seed):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 1.0, n1)
    b = rng.lognormal(0.3, 1.2, n2)
    fq = forget_quality(a, b)
    assert isinstance(fq, float)
    assert fq == ks_2samp(a, b).pvalue
    assert fq == forget_quality(b, a)  # two-sided: symmetric


@pytest.mark.parametrize("a,b", [
    ([0.11, 0.52, 0.93, 1.74], [0.35, 1.20, 2.60, 3.10]),
    ([0.2, 0.4, 0.6, 0.8, 1.0], [1.1, 1.3, 1.5, 1.7]),          # fully separated
    ([0.15, 0.9, 1.6, 2.2, 3.7], [0.5, 0.7, 1.05, 2.9]),
])
def test_small_samples_by_hand(a, b):
    d = ks_statistic(a, b)
    res = ks_2samp(a, b)
    assert res.statistic == pytest.approx(d, abs=1e-12)
    want = exact_p_by_enumeration(a, b)
    assert forget_quality(np.array(a), np.array(b)) == pytest.approx(want, rel=1e-10)


def test_fully_separated_samples_by_formula():
    # D = 1 is reached only by the 2 labellings that put one sample entirely below the other
    a, b = [0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0]
    assert forget_quality(a, b) == pytest.approx(2 / math.comb(8, 4), rel=1e-12)


def test_identical_distributions_give_one():
    x = np.random.default_rng(0).lognormal(size=50)
    assert forget_quality(x, x) == 1.0
    assert forget_quality(x, x[::-1].copy()) == 1.0


def test_invariant_to_reciprocal_and_log():
    """open-unlearning feeds raw tr, legacy TOFU feeds 1/tr: the p-values agree (ranks only)."""
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(0, 1, 60), rng.lognormal(0.4, 1, 50)
    fq = forget_quality(a, b)
    assert forget_quality(1 / a, 1 / b) == pytest.approx(fq, rel=1e-12)
    assert forget_quality(np.log(a), np.log(b)) == pytest.approx(fq, rel=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="tr_unlearned"):
        forget_quality([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        forget_quality([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="tr_retain_model"):
        forget_quality([1.0], [[1.0, 2.0]])


def test_infinite_ratios_are_ordered_like_any_other():
    """A wrecked model's truth ratios overflow to inf; the KS test only compares their order, so
    the p-value equals that of the same samples with inf replaced by any larger finite value."""
    inf = float("inf")
    a, b = [0.5, inf, inf, 2.0], [0.4, 0.6, 1.0, 1.5, 3.0]
    assert forget_quality(a, b) == pytest.approx(forget_quality([0.5, 1e9, 1e9, 2.0], b), rel=1e-12)
