"""2-D hypervolume against a brute-force count of covered unit cells."""

import numpy as np
import pytest

from analysis.hypervolume import hypervolume_2d


def covered_cells(points: np.ndarray, size: int) -> int:
    """Unit cells [i, i+1] × [j, j+1] of [0, size]² dominated (minimisation) by an integer point."""
    return sum(bool(((points[:, 0] <= i) & (points[:, 1] <= j)).any()) for i in range(size) for j in range(size))


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_with_ties_duplicates_and_directions(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        pts = rng.integers(0, 7, size=(int(rng.integers(1, 15)), 2)).astype(float)
        expected = covered_cells(pts, 7)
        assert hypervolume_2d(pts, ("min", "min"), (7, 7)) == pytest.approx(expected)
        flipped = pts * [1, -1]  # the same set with the second objective maximised
        assert hypervolume_2d(flipped, ("min", "max"), (7, -7)) == pytest.approx(expected)


def test_points_beyond_the_reference_and_nan_add_nothing():
    assert hypervolume_2d([[8, 1], [np.nan, 0]], ("min", "min"), (7, 7)) == 0.0
    assert hypervolume_2d([[1, 1], [8, 0]], ("min", "min"), (2, 2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'min' or 'max'"):
        hypervolume_2d([[1, 1]], ("min", "zero"), (2, 2))


# ------------------------------------------------------------------------ 1-D and 3-D, exact
import pandas as pd  # noqa: E402

from analysis.hypervolume import hypervolume, hypervolume_table, nadir_point  # noqa: E402


def covered_cells_k(points: np.ndarray, size: int, k: int) -> int:
    grid = np.stack(np.meshgrid(*[np.arange(size)] * k, indexing="ij"), axis=-1).reshape(-1, k)
    return int(sum(bool((points <= cell).all(axis=1).any()) for cell in grid))


@pytest.mark.parametrize("seed", range(4))
def test_3d_matches_brute_force_with_ties_and_directions(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        pts = rng.integers(0, 5, size=(int(rng.integers(1, 10)), 3)).astype(float)
        expected = covered_cells_k(pts, 5, 3)
        assert hypervolume(pts, ("min",) * 3, (5, 5, 5)) == pytest.approx(expected)
        flipped = pts * [1, -1, -1]
        assert hypervolume(flipped, ("min", "max", "max"), (5, -5, -5)) == pytest.approx(expected)
        assert hypervolume(pts[:, :2], ("min", "min"), (5, 5)) == pytest.approx(covered_cells(pts[:, :2], 5))


def test_1d_and_errors():
    assert hypervolume([[1.0], [3.0]], ("min",), (4.0,)) == 3.0
    assert hypervolume([[1.0], [3.0]], ("max",), (0.0,)) == 3.0
    with pytest.raises(ValueError, match="'min' or 'max'"):
        hypervolume(np.zeros((1, 2)), ("min", "up"), (1, 1))


@pytest.mark.parametrize("k", [3, 4])
def test_4d_and_3d_through_moocore_match_brute_force(k):
    """k ≥ 3 goes through moocore: checked against counting covered unit cells."""
    rng = np.random.default_rng(k)
    for _ in range(15):
        pts = rng.integers(0, 4, size=(int(rng.integers(1, 8)), k)).astype(float)
        assert hypervolume(pts, ("min",) * k, (4,) * k) == pytest.approx(covered_cells_k(pts, 4, k))


def _trials():
    # No-unlearn at (L_R, L_F) = (2, 0): every method is measured against it.
    return pd.DataFrame({
        "trial_id": list("abcdefg"),
        "status": ["ok"] * 6 + ["failed"],
        "combiner": ["no-unlearn", "m1", "m1", "m2", "m2", "m2", "m2"],
        "seed": [0, 0, 1, 0, 1, 1, 0],
        "lr_r": [2.0, 1.0, 0.0, 1.0, 1.0, 0.0, -100.0],
        "lf": [0.0, 1.0, 1.0, 2.0, 1.0, 1.0, 100.0],
    }).assign(method=lambda d: d["combiner"])


def test_table_per_method_and_overall_with_seed_bootstrap():
    objs = [("lr_r", "min"), ("lf", "max")]
    t = hypervolume_table(_trials(), objs, n_boot=500).set_index("method")
    assert t.attrs["reference"] == {"lr_r": 2.0, "lf": 0.0}
    # m1: seed 0 → box [1,2]×[0,1] = 1; seed 1 → [0,2]×[0,1] = 2; mean 1.5
    assert t.loc["m1", "hv"] == pytest.approx(1.5) and t.loc["m1", "n_seeds"] == 2
    assert 1.0 <= t.loc["m1", "ci_lo"] <= 1.5 <= t.loc["m1", "ci_hi"] <= 2.0
    assert t.loc["m1", "hv_pooled"] == pytest.approx(2.0)
    # m2: seed 0 → [1,2]×[0,2] = 2; seed 1 → (1,1),(0,1) → 2; the failed trial is out
    assert t.loc["m2", "hv"] == pytest.approx(2.0) and t.loc["m2", "n_trials"] == 3
    assert t.loc["m2", "ci_lo"] == pytest.approx(2.0) and t.loc["m2", "ci_hi"] == pytest.approx(2.0)
    # all: seed 0 → (1,1),(1,2) → 2; seed 1 → (0,1),(1,1),(0,1) → 2
    assert t.loc["all", "hv"] == pytest.approx(2.0) and t.loc["all", "hv_pooled"] == pytest.approx(3.0)
    assert "no-unlearn" not in t.index


def test_reference_options():
    objs = [("lr_r", "min"), ("lf", "max")]
    t = hypervolume_table(_trials(), objs, reference=(3.0, 0.0)).set_index("method")
    assert t.loc["m1", "hv_pooled"] == pytest.approx(3.0)
    assert nadir_point(_trials(), objs).tolist() == [2.0, 0.0]  # the failed trial is ignored
    with pytest.raises(ValueError, match="no 'no-unlearn' trial"):
        hypervolume_table(_trials().iloc[1:], objs)
    with pytest.raises(ValueError, match="needs 2 values"):
        hypervolume_table(_trials(), objs, reference=(1.0,))
