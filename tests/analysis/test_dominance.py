"""analysis.dominance against a brute-force, loop-by-loop reading of Definition 1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis.dominance as dom
from analysis import dominates, dominators, front_ranks, non_dominated_mask


# ------------------------------------------------------------------------- brute-force oracle
def bf_dominates(a, b, directions) -> bool:
    """Definition 1 generalised, one objective at a time: no sign tricks, no numpy."""
    at_least_as_good, strictly_better = True, False
    for x, y, d in zip(a, b, directions):
        if d == "min":
            at_least_as_good &= x <= y
            strictly_better |= x < y
        else:
            at_least_as_good &= x >= y
            strictly_better |= x > y
    return at_least_as_good and strictly_better


def bf_dominators(points, directions) -> list[list[int]]:
    pts = [list(map(float, p)) for p in points]
    return [[j for j, q in enumerate(pts) if bf_dominates(q, p, directions)] for p in pts]


def bf_mask(points, directions) -> np.ndarray:
    return np.array([not d for d in bf_dominators(points, directions)], dtype=bool)


# --------------------------------------------------------------------------------- strategies
@st.composite
def point_sets(draw, k=None, max_n=30):
    """[n, k] finite points + directions; values drawn so that ties and duplicates are common."""
    k = draw(st.integers(1, 4)) if k is None else k
    n = draw(st.integers(0, max_n))
    kind = draw(st.sampled_from(["grid", "tiny_grid", "float", "dups"]))
    if kind == "grid":  # integer-valued grid: many ties on each objective
        elems = st.integers(-3, 3).map(float)
    elif kind == "tiny_grid":  # two values per objective: mostly duplicates
        elems = st.sampled_from([0.0, 1.0])
    else:
        elems = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    pts = np.array(draw(st.lists(st.lists(elems, min_size=k, max_size=k),
                                 min_size=n, max_size=n)), dtype=float).reshape(n, k)
    if kind == "dups" and n:  # re-use a few distinct rows many times
        picks = draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n))
        pts = pts[picks]
    directions = tuple(draw(st.lists(st.sampled_from(["min", "max"]), min_size=k, max_size=k)))
    return pts, directions


# ------------------------------------------------------------- the mask against brute force
def pairwise_mask(points, directions) -> np.ndarray:
    """An independent float64 pairwise check: n² comparisons, one objective at a time."""
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    le = np.ones((n, n), dtype=bool)   # le[i, j]: j at least as good as i everywhere
    lt = np.zeros((n, n), dtype=bool)  # lt[i, j]: j strictly better than i somewhere
    for c, d in enumerate(directions):
        col = p[:, c]
        better_eq = col[None, :] <= col[:, None] if d == "min" else col[None, :] >= col[:, None]
        better = col[None, :] < col[:, None] if d == "min" else col[None, :] > col[:, None]
        le &= better_eq
        lt |= better
    return ~(le & lt).any(axis=1)


@pytest.mark.parametrize("k", [2, 3, 4])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mask_and_ranks_match_brute_force_with_ties_and_duplicates(k, data):
    pts, dirs = data.draw(point_sets(k=k, max_n=40))
    expected = bf_mask(pts, dirs)
    np.testing.assert_array_equal(pairwise_mask(pts, dirs), expected)  # the two oracles agree
    np.testing.assert_array_equal(non_dominated_mask(pts, dirs), expected)
    assert front_ranks(pts, dirs).tolist() == bf_ranks(pts, dirs)


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("seed", range(4))
def test_mask_matches_pairwise_check_on_larger_sets_with_many_copies(k, seed):
    """Hundreds of points on a coarse grid (ties on every objective, many exact copies) and
    continuous ones, mixed directions: moocore's mask equals the float64 pairwise check."""
    rng = np.random.default_rng(seed)
    dirs = tuple(rng.choice(["min", "max"], size=k))
    grid = rng.integers(0, 6, size=(600, k)).astype(float)
    cont = rng.normal(size=(600, k))
    copies = np.repeat(cont[:50], 4, axis=0)  # each of 50 points four times
    for pts in (grid, cont, np.concatenate([cont, copies]), -grid * 0.0):  # -0.0 vs 0.0 too
        np.testing.assert_array_equal(non_dominated_mask(pts, dirs), pairwise_mask(pts, dirs))


@pytest.mark.parametrize("k", [2, 3, 4])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_pivot_prefilter_is_exact(k, data):
    """The prefilter (used from _PREFILTER_MIN_ROWS points on) forced onto small sets: same mask."""
    pts, dirs = data.draw(point_sets(k=k, max_n=40))
    old = dom._PREFILTER_MIN_ROWS
    dom._PREFILTER_MIN_ROWS = 0
    try:
        np.testing.assert_array_equal(non_dominated_mask(pts, dirs), bf_mask(pts, dirs))
        assert dom.front_dominators(pts, dirs, limit=2) == [
            [j for j in d if not bf_dominators(pts, dirs)[j]][:2] for d in bf_dominators(pts, dirs)]
    finally:
        dom._PREFILTER_MIN_ROWS = old


def test_pivot_prefilter_on_large_sets_with_scales_far_apart():
    """5000-point sets (the prefilter runs): uniform, a large front (anti-correlated), objectives
    on scales 10⁻⁶ and 10⁶, coarse grids with copies; equal to the pairwise check."""
    rng = np.random.default_rng(7)
    n = 5000
    t = rng.random(n)
    sets = {
        "uniform3": (rng.random((n, 3)), ("min", "max", "min")),
        "front2": (np.column_stack([t, -t + 1e-3 * rng.standard_normal(n)]), ("min", "min")),
        "scales": (rng.random((n, 2)) * [1e-6, 1e6], ("max", "min")),
        "grid4": (rng.integers(0, 4, size=(n, 4)).astype(float), ("min", "min", "max", "max")),
    }
    for name, (pts, dirs) in sets.items():
        assert len(pts) >= dom._PREFILTER_MIN_ROWS
        np.testing.assert_array_equal(non_dominated_mask(pts, dirs), pairwise_mask(pts, dirs), err_msg=name)


def test_every_copy_of_a_front_point_survives():
    """moocore keeps one copy unless keep_weakly=True; the module keeps all of them."""
    pts = np.array([[1.0, 1.0, 1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [0.0, 2.0, 1.0], [2.0, 2.0, 2.0]])
    assert non_dominated_mask(pts, ("min",) * 3).tolist() == [True, True, True, True, False]
    assert front_ranks(pts, ("min",) * 3).tolist() == [0, 0, 0, 0, 1]
    assert non_dominated_mask(pts[:, :2], ("min", "min")).tolist() == [True, True, True, True, False]


@settings(max_examples=100, deadline=None)
@given(point_sets(k=2), st.randoms(use_true_random=False))
def test_mask_is_permutation_equivariant(case, rnd):
    pts, dirs = case
    perm = np.arange(len(pts))
    rnd.shuffle(perm)
    np.testing.assert_array_equal(non_dominated_mask(pts[perm], dirs),
                                  non_dominated_mask(pts, dirs)[perm])


@settings(max_examples=50, deadline=None)
@given(point_sets(k=3, max_n=25))
def test_general_path_row_blocks(case):
    """Row blocking (memory bound) changes nothing: force tiny blocks."""
    pts, dirs = case
    old = dom._BLOCK_ELEMENTS
    dom._BLOCK_ELEMENTS = 7  # a few rows per block
    try:
        np.testing.assert_array_equal(non_dominated_mask(pts, dirs), bf_mask(pts, dirs))
        assert dominators(pts, dirs) == bf_dominators(pts, dirs)
    finally:
        dom._BLOCK_ELEMENTS = old


def test_2d_mask_on_a_large_integer_grid():
    rng = np.random.default_rng(0)
    p = rng.integers(0, 30, size=(3000, 2)).astype(float)
    np.testing.assert_array_equal(non_dominated_mask(p, ("min", "min")), pairwise_mask(p, ("min", "min")))


# ------------------------------------------------------------------------------ edge cases
@pytest.mark.parametrize("k", [1, 2, 3])
def test_empty_input(k):
    dirs = ("min",) * k
    pts = np.empty((0, k))
    assert non_dominated_mask(pts, dirs).shape == (0,)
    assert non_dominated_mask(pts, dirs).dtype == bool
    assert dominators(pts, dirs) == []
    assert front_ranks(pts, dirs).shape == (0,)


def test_empty_list_input():
    assert non_dominated_mask([], ("min", "max")).tolist() == []


@pytest.mark.parametrize("k", [1, 2, 3])
def test_single_point(k):
    dirs = ("max",) * k
    pts = np.ones((1, k))
    assert non_dominated_mask(pts, dirs).tolist() == [True]
    assert dominators(pts, dirs) == [[]]
    assert front_ranks(pts, dirs).tolist() == [0]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_all_equal_points_are_all_non_dominated(k):
    dirs = ("min",) * k
    pts = np.full((6, k), 0.25)
    assert non_dominated_mask(pts, dirs).all()
    assert dominators(pts, dirs) == [[]] * 6
    assert (front_ranks(pts, dirs) == 0).all()


def test_duplicates_of_front_point_all_survive_and_ties_on_first_objective():
    # (1, 5) twice: front. (1, 6): same x, worse y -> dominated by both copies of (1, 5).
    # (2, 5): same y as (1, 5), worse x -> dominated. (0, 9): front.
    pts = np.array([[1, 5], [1, 6], [1, 5], [2, 5], [0, 9], [2, 4]], dtype=float)
    dirs = ("min", "min")
    assert non_dominated_mask(pts, dirs).tolist() == [True, False, True, False, True, True]
    assert dominators(pts, dirs) == [[], [0, 2], [], [0, 2, 5], [], []]


def test_definition_1_mixed_directions():
    # Paper's setting: L_R minimised, L_F maximised. theta' = (0.5, 4.0) dominates (0.6, 4.0).
    dirs = ("min", "max")
    assert dominates([0.5, 4.0], [0.6, 4.0], dirs)
    assert dominates([0.5, 4.1], [0.5, 4.0], dirs)
    assert not dominates([0.5, 4.0], [0.4, 5.0], dirs)
    assert not dominates([0.5, 4.0], [0.5, 4.0], dirs)  # equal: neither dominates
    assert not dominates([0.4, 3.0], [0.5, 4.0], dirs)  # trade-off: neither dominates
    assert not dominates([0.5, 4.0], [0.4, 3.0], dirs)


def test_k3_example():
    pts = np.array([[1, 1, 1], [0, 2, 1], [1, 1, 2], [2, 2, 2], [1, 1, 1]], dtype=float)
    dirs = ("min", "min", "min")
    assert non_dominated_mask(pts, dirs).tolist() == [True, True, False, False, True]
    assert front_ranks(pts, dirs).tolist() == [0, 0, 1, 2, 0]


@settings(max_examples=200, deadline=None)
@given(point_sets(max_n=8))
def test_dominates_matches_brute_force_and_is_a_strict_order(case):
    pts, dirs = case
    for a in pts:
        assert not dominates(a, a, dirs)
        for b in pts:
            assert dominates(a, b, dirs) == bf_dominates(a, b, dirs)
            assert not (dominates(a, b, dirs) and dominates(b, a, dirs))


# ------------------------------------------------------------------- dominators and front ranks
@settings(max_examples=200, deadline=None)
@given(point_sets())
def test_dominators_match_brute_force_and_mask(case):
    pts, dirs = case
    doms = dominators(pts, dirs)
    assert doms == bf_dominators(pts, dirs)
    assert all(isinstance(j, int) for d in doms for j in d)
    mask = non_dominated_mask(pts, dirs)
    assert [not d for d in doms] == mask.tolist()  # non-dominated iff no dominators


@settings(max_examples=200, deadline=None)
@given(point_sets())
def test_front_ranks_are_a_non_dominated_sorting(case):
    pts, dirs = case
    ranks = front_ranks(pts, dirs)
    assert ranks.dtype.kind == "i"
    assert ranks.shape == (len(pts),)
    if not len(pts):
        return
    np.testing.assert_array_equal(ranks == 0, non_dominated_mask(pts, dirs))
    assert set(ranks.tolist()) == set(range(int(ranks.max()) + 1))  # no gaps
    doms = dominators(pts, dirs)
    for i, r in enumerate(ranks):
        dom_ranks = [ranks[j] for j in doms[i]]
        assert all(dr < r for dr in dom_ranks), "dominated by a point of rank >= its own"
        if r > 0:
            assert r - 1 in dom_ranks, "rank-r point not dominated by any rank-(r-1) point"


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_raise_naming_the_row(bad):
    pts = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, bad]])
    for fn in (non_dominated_mask, dominators, front_ranks):
        with pytest.raises(ValueError, match=r"row 2\b"):
            fn(pts, ("min", "min"))
    with pytest.raises(ValueError, match="row 0"):
        non_dominated_mask(np.array([[bad, 0.0, 0.0]]), ("min", "min", "min"))


def test_bad_directions():
    pts = np.zeros((2, 2))
    with pytest.raises(ValueError, match="'minimize'"):
        non_dominated_mask(pts, ("minimize", "max"))
    with pytest.raises(ValueError, match="3 entries"):
        non_dominated_mask(pts, ("min", "max", "min"))
    with pytest.raises(ValueError, match="string"):
        non_dominated_mask(pts, "min")
    with pytest.raises(ValueError, match="2-D"):
        non_dominated_mask(np.zeros((2, 2, 2)), ("min", "min"))
    with pytest.raises(ValueError, match="same length"):
        dominates([1.0, 2.0], [1.0], ("min", "min"))


# --------------------------------------------------------------- 2-D ranks in O(n log n)
def bf_ranks(points, directions) -> list[int]:
    """Non-dominated sorting by repeated brute-force peeling (O(n³) at worst, no numpy)."""
    pts = [list(map(float, p)) for p in points]
    left, ranks, r = set(range(len(pts))), [-1] * len(pts), 0
    while left:
        front = [i for i in left if not any(bf_dominates(pts[j], pts[i], directions) for j in left)]
        for i in front:
            ranks[i] = r
        left -= set(front)
        r += 1
    return ranks


@settings(max_examples=300, deadline=None)
@given(point_sets(k=2, max_n=40))
def test_2d_ranks_fast_path_matches_brute_force_peeling(case):
    pts, dirs = case
    expected = bf_ranks(pts, dirs)
    assert front_ranks(pts, dirs).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(point_sets(max_n=20))
def test_ranks_match_brute_force_peeling_any_k(case):
    pts, dirs = case
    assert front_ranks(pts, dirs).tolist() == bf_ranks(pts, dirs)


def test_2d_ranks_on_a_large_grid_match_peeling():
    rng = np.random.default_rng(1)
    p = rng.integers(0, 40, size=(1500, 2)).astype(float)  # ties everywhere, 76 ranks
    peeled = np.full(len(p), -1)
    rest, r = np.arange(len(p)), 0
    while rest.size:
        f = pairwise_mask(p[rest], ("min", "min"))
        peeled[rest[f]] = r
        rest, r = rest[~f], r + 1
    np.testing.assert_array_equal(front_ranks(p, ("min", "min")), peeled)


@pytest.mark.parametrize("k", [3, 4])
def test_ranks_on_a_large_grid_match_pairwise_peeling(k):
    rng = np.random.default_rng(k)
    p = rng.integers(0, 8, size=(800, k)).astype(float)
    dirs = ("min",) * k
    peeled = np.full(len(p), -1)
    rest, r = np.arange(len(p)), 0
    while rest.size:
        f = pairwise_mask(p[rest], dirs)
        peeled[rest[f]] = r
        rest, r = rest[~f], r + 1
    np.testing.assert_array_equal(front_ranks(p, dirs), peeled)


# ------------------------------------------------------------------------ front_dominators
@settings(max_examples=200, deadline=None)
@given(point_sets(), st.integers(1, 4))
def test_front_dominators_are_the_first_front_dominators(case, limit):
    pts, dirs = case
    doms = bf_dominators(pts, dirs)
    front = [not d for d in doms]
    expected = [[j for j in d if front[j]][:limit] for d in doms]
    got = dom.front_dominators(pts, dirs, limit=limit)
    assert got == expected
    assert all((not g) == f for g, f in zip(got, front))  # empty iff on the front


def test_front_dominators_row_blocks_and_bad_limit():
    rng = np.random.default_rng(5)
    pts = rng.integers(0, 5, size=(200, 3)).astype(float)
    dirs = ("min", "max", "min")
    whole = dom.front_dominators(pts, dirs, limit=2)
    old = dom._BLOCK_ELEMENTS
    dom._BLOCK_ELEMENTS = 11
    try:
        assert dom.front_dominators(pts, dirs, limit=2) == whole
    finally:
        dom._BLOCK_ELEMENTS = old
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="limit"):
            dom.front_dominators(pts, dirs, limit=bad)
