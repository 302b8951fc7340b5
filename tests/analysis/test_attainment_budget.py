"""EAF surfaces and differences (moocore) against brute-force counts, and tuning-budget curves
against the exact average over all k-subsets."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis.attainment import attainment_surfaces, eaf_difference
from analysis.budget import budget_curves, trials_to_reach
from analysis.hypervolume import hypervolume

OBJ = [("x", "min"), ("y", "max")]


def runs(seed: int, n_seeds=(3, 2)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for m, n in zip(("a", "b"), n_seeds):
        for s in range(n):
            for _ in range(int(rng.integers(1, 6))):
                rows.append({"method": m, "seed": s, "status": "ok", "combiner": m,
                             "x": float(rng.integers(0, 6)) + (0.5 if m == "b" else 0.0),
                             "y": float(rng.integers(0, 6))})
    return pd.DataFrame(rows)


def attained(df: pd.DataFrame, z) -> float:
    """Brute force: the fraction of seeds with a point at least as good as z (x ≤, y ≥)."""
    hit = [((g.x <= z[0]) & (g.y >= z[1])).any() for _, g in df.groupby("seed")]
    return float(np.mean(hit))


@pytest.mark.parametrize("seed", range(5))
def test_the_eaf_difference_matches_brute_force_counts_with_unequal_seeds(seed):
    t = runs(seed)
    d = eaf_difference(t, OBJ, "a", "b")
    assert len(d)
    for r in d.itertuples():
        xs = [r.x_lo, r.x_hi if np.isfinite(r.x_hi) else r.x_lo + 1]
        ys = [r.y_lo if np.isfinite(r.y_lo) else r.y_hi - 1, r.y_hi]
        z = (np.mean(xs), np.mean(ys))  # inside the rectangle
        expected = attained(t[t.method == "a"], z) - attained(t[t.method == "b"], z)
        assert r.diff == pytest.approx(expected), (r, z)
    # and somewhere not listed, the difference is 0
    for z in [(100.0, -100.0)]:
        assert attained(t[t.method == "a"], z) - attained(t[t.method == "b"], z) == 0


@pytest.mark.parametrize("seed", range(5))
def test_a_surface_point_is_attained_by_at_least_its_share_of_seeds(seed):
    t = runs(seed)
    s = attainment_surfaces(t, OBJ, percentiles=(34, 50, 100))
    for r in s.itertuples():
        share = attained(t[t.method == r.method], (r.x, r.y))
        assert share >= r.percentile / 100 - 1e-12
        # just better than a surface point on both axes is attained by fewer seeds
        assert attained(t[t.method == r.method], (r.x - 1e-9, r.y + 1e-9)) < share + 1e-12


def test_bad_input_names_the_fix():
    t = runs(0)
    with pytest.raises(ValueError, match="no trials of 'c'.*it has: a, b"):
        eaf_difference(t, OBJ, "a", "c")
    with pytest.raises(ValueError, match="2 objectives"):
        attainment_surfaces(t, OBJ + [("z", "min")])


def test_budget_curves_are_the_exact_subset_average_and_end_at_the_full_volume():
    rng = np.random.default_rng(1)
    t = pd.DataFrame({"method": "m", "combiner": ["no-unlearn"] + ["m"] * 6, "status": "ok",
                      "x": np.r_[10.0, rng.random(6) * 10], "y": np.r_[0.0, rng.random(6) * 10]})
    c = budget_curves(t, OBJ, orderings=4000, rng_seed=3)
    pts = t[t.combiner == "m"][["x", "y"]].to_numpy()
    ref = (10.0, 0.0)
    for k in range(1, 7):
        exact = np.mean([hypervolume(pts[list(s)], ["min", "max"], ref) for s in itertools.combinations(range(6), k)])
        row = c[c.k == k].iloc[0]
        assert row.hv == pytest.approx(exact, rel=0.03), k
        assert row.hv_lo <= row.hv + 1e-12 <= row.hv_hi + 2e-12
    assert c.hv.iloc[-1] == pytest.approx(hypervolume(pts, ["min", "max"], ref))
    assert (np.diff(c.hv) >= -1e-9).all()  # more trials never lose volume on average
    need = trials_to_reach(c, 0.9)
    first = int(c[c.hv >= 0.9 * c.hv_final].k.min())
    assert need.k_needed.iloc[0] == first and need.n_trials.iloc[0] == 6
    with pytest.raises(ValueError, match="no 'no-unlearn' trial"):
        budget_curves(t[t.combiner == "m"], OBJ)
