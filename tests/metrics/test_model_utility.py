"""Model Utility: the harmonic mean of exactly nine parts."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.stats import hmean

from pareto.metrics.model_utility import MODEL_UTILITY_KEYS, model_utility


def parts_from(values):
    return dict(zip(MODEL_UTILITY_KEYS, values))


def test_keys():
    assert len(MODEL_UTILITY_KEYS) == 9 and len(set(MODEL_UTILITY_KEYS)) == 9
    assert {"retain/prob", "retain/rouge", "retain/truth_ratio", "real_authors/prob",
            "real_authors/rouge", "real_authors/truth_ratio", "world_facts/prob",
            "world_facts/rouge", "world_facts/truth_ratio"} == set(MODEL_UTILITY_KEYS)


def test_by_hand():
    values = [0.9, 0.5, 0.4, 0.8, 0.7, 0.6, 0.85, 0.75, 0.55]
    mu = model_utility(parts_from(values))
    assert mu == pytest.approx(9 / sum(1 / v for v in values), rel=1e-14)
    assert mu == pytest.approx(hmean(values), rel=1e-14)
    assert model_utility(parts_from([0.5] * 9)) == pytest.approx(0.5, rel=1e-15)
    assert isinstance(mu, float)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-6, 1.0), min_size=9, max_size=9))
def test_equals_scipy_hmean(values):
    mu = model_utility(parts_from(values))
    assert mu == pytest.approx(hmean(values), rel=1e-12)
    assert mu == pytest.approx(9 / math.fsum(1 / v for v in values), rel=1e-12)
    assert min(values) * (1 - 1e-12) <= mu <= max(values) * (1 + 1e-12)


def test_zero_part_gives_zero():
    values = [0.9, 0.5, 0.0, 0.8, 0.7, 0.6, 0.85, 0.75, 0.55]
    assert model_utility(parts_from(values)) == 0.0
    assert hmean(values) == 0.0  # scipy's convention, the one followed


def test_missing_and_extra_keys():
    parts = parts_from([0.5] * 9)
    del parts["world_facts/rouge"]
    with pytest.raises(ValueError, match="world_facts/rouge"):
        model_utility(parts)
    parts = dict(parts_from([0.5] * 9), **{"forget/rouge": 0.1})
    with pytest.raises(ValueError, match="forget/rouge"):
        model_utility(parts)
    with pytest.raises(ValueError, match="missing"):
        model_utility({})


def test_nan_negative_inf_named():
    for bad, pattern in ((float("nan"), "NaN"), (-0.1, ">= 0"), (float("inf"), "finite")):
        parts = parts_from([0.5] * 9)
        parts["real_authors/truth_ratio"] = bad
        with pytest.raises(ValueError, match=pattern) as err:
            model_utility(parts)
        assert "real_authors/truth_ratio" in str(err.value)


def test_accepts_numpy_scalars():
    values = np.linspace(0.1, 0.9, 9)
    assert model_utility(parts_from(values)) == pytest.approx(hmean(values), rel=1e-12)
