"""Direction agreement from the Gram matrix against explicit vectors. (That IMTL-G, MGDA-l2 and
Nash-MTL share NGDiff's direction is tested on the combiners themselves, in tests/core/test_combiners.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.agreement import agreement_table, ngdiff_cosine


def _row(g_r, g_f, w_r, w_f) -> dict:
    return {"gram_rr": g_r @ g_r, "gram_rf": g_r @ g_f, "gram_ff": g_f @ g_f, "w_r": w_r, "w_f": w_f}


def _explicit(g_r, g_f, w_r, w_f) -> float:
    d = w_r * g_r - w_f * g_f
    u = lambda g: g / np.linalg.norm(g) if np.linalg.norm(g) else 0 * g  # noqa: E731
    n = u(g_r) - u(g_f)
    if not np.linalg.norm(d) or not np.linalg.norm(n):
        return np.nan
    return float(d @ n / (np.linalg.norm(d) * np.linalg.norm(n)))


def test_matches_explicit_vectors():
    rng = np.random.default_rng(0)
    rows, expected = [], []
    for _ in range(300):
        k = int(rng.integers(2, 20))
        g_r, g_f = rng.standard_normal(k), rng.standard_normal(k) * rng.uniform(0.01, 100)
        w_r, w_f = rng.uniform(-1, 2, size=2)
        rows.append(_row(g_r, g_f, w_r, w_f))
        expected.append(_explicit(g_r, g_f, w_r, w_f))
    got = ngdiff_cosine(pd.DataFrame(rows)).to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_zero_and_degenerate_cases():
    g = np.array([1.0, 2.0, 0.0])
    z = np.zeros(3)
    rows = [_row(z, g, 0.0, 1.0),        # g_R = 0: n = −g_F/‖g_F‖, d = −g_F → 1
            _row(g, 2 * g, 1.0, 1.0),    # parallel, same direction: n = 0 → NaN
            _row(g, -g, 0.0, 0.0),       # d = 0 → NaN
            _row(g, -g, 1.0, 0.0)]       # opposite: n = 2 g/‖g‖ ∥ g_R → 1
    c = ngdiff_cosine(pd.DataFrame(rows)).tolist()
    assert c[0] == pytest.approx(1.0) and np.isnan(c[1]) and np.isnan(c[2]) and c[3] == pytest.approx(1.0)


def test_static_gdiff_is_not_ngdiff_and_the_table():
    rng = np.random.default_rng(2)
    rows = []
    for tid in ("g", "n"):
        for _ in range(20):
            g_r, g_f = rng.standard_normal(8), 5 * rng.standard_normal(8)
            w = (0.2, 0.8) if tid == "g" else (1 / np.linalg.norm(g_r), 1 / np.linalg.norm(g_f))
            rows.append({"trial_id": tid, **_row(g_r, g_f, *w)})
    steps = pd.DataFrame(rows)
    trials = pd.DataFrame({"trial_id": ["g", "n"], "method": ["gdiff(c=0.2)", "ngdiff"]})
    t = agreement_table(steps, trials).set_index("method")
    assert t.loc["ngdiff", "at_1"] == 1.0 and t.loc["ngdiff", "cos_min"] == pytest.approx(1.0)
    assert t.loc["gdiff(c=0.2)", "cos_mean"] < 0.99 and t.loc["gdiff(c=0.2)", "steps"] == 20
