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
