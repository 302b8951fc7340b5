"""Pareto dominance over k objectives, each minimised or maximised.

The ngdiff paper's Definition 1 (two objectives: retain loss L_R minimised, forget loss L_F
maximised) says θ is dominated by θ' when L_R(θ) ≥ L_R(θ') and L_F(θ) ≤ L_F(θ') with at least
one inequality strict. Generalised to k objectives: ``a`` dominates ``b`` when ``a`` is at least
as good as ``b`` on every objective and strictly better on at least one. Equal points never
dominate each other, so every copy of a non-dominated point is non-dominated.

Every function first maps the points to "all objectives minimised" (a maximised column is
negated, which is exact for floats) and then works on that copy.

>>> import numpy as np
>>> pts = np.array([[1.0, 5.0], [2.0, 3.0], [3.0, 3.0], [1.0, 5.0]])
>>> non_dominated_mask(pts, ("min", "min")).tolist()
[True, True, False, True]
>>> dominators(pts, ("min", "min"))
[[], [], [1], []]
>>> front_ranks(pts, ("min", "min")).tolist()
[0, 0, 1, 0]
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

__all__ = ["DIRECTIONS", "dominates", "non_dominated_mask", "dominators", "front_ranks"]

DIRECTIONS = ("min", "max")

# Pairwise comparisons are done in row blocks so that memory stays near this many booleans.
_BLOCK_ELEMENTS = 1 << 22


def _signs(directions: Sequence[str], k: int | None = None) -> np.ndarray:
    """+1 for "min", -1 for "max"; checks every entry and (if given) the count against k."""
    if isinstance(directions, str):
        raise ValueError(
            f"directions must be a sequence such as ('min', 'max'), got the string {directions!r}"
        )
    directions = list(directions)
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad:
        raise ValueError(
            f"directions must each be one of {', '.join(DIRECTIONS)}; got {bad!r} in {directions!r}"
        )
    if k is not None and len(directions) != k:
        raise ValueError(
            f"directions has {len(directions)} entries {directions!r} but the points have "
            f"{k} objectives"
        )
    if not directions:
        raise ValueError("directions must name at least one objective, got an empty sequence")
    return np.array([1.0 if d == "min" else -1.0 for d in directions])


def _as_minimised(points: np.ndarray | Sequence, directions: Sequence[str]) -> np.ndarray:
    """A float [n, k] copy with every objective turned into one to minimise; rejects NaN/inf."""
    arr = np.asarray(points, dtype=float)
    if arr.size == 0 and arr.ndim == 1:  # [] -> no points
        arr = arr.reshape(0, len(directions) if not isinstance(directions, str) else 1)
    if arr.ndim != 2:
        raise ValueError(f"points must be a 2-D array [n, k], got shape {arr.shape}")
    signs = _signs(directions, arr.shape[1])
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        n_bad = int((~finite).sum())
        raise ValueError(
            f"points row {row} is not finite: {arr[row].tolist()} ({n_bad} such row(s) in all); "
            "drop NaN/inf rows before computing dominance (frontier_table() does this and "
            "reports them)"
        )
    return arr * signs


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True iff ``a`` is at least as good as ``b`` on every objective and strictly better on one.

    >>> dominates([0.5, 3.0], [0.7, 2.0], ("min", "max"))   # lower L_R and higher L_F
    True
    >>> dominates([0.5, 3.0], [0.5, 3.0], ("min", "max"))   # equal points: no
    False
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.ndim != 1 or a_arr.shape != b_arr.shape:
        raise ValueError(
            f"a and b must be 1-D and the same length, got shapes {a_arr.shape} and {b_arr.shape}"
        )
    pair = _as_minimised(np.stack([a_arr, b_arr]), directions)
    return bool(np.all(pair[0] <= pair[1]) and np.any(pair[0] < pair[1]))


# --------------------------------------------------------------------------- non-dominated set
def _mask_2d(p: np.ndarray) -> np.ndarray:
    """Non-dominated mask for minimised [n, 2] points in O(n log n).

    Sort by (x, y). Within a block of equal x only the rows with the block's smallest y can
    survive (larger y is dominated by the same x with smaller y). Those rows, all equal to each
    other, are dominated iff an earlier block (strictly smaller x) reached a y at most as large.
    """
    n = p.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((p[:, 1], p[:, 0]))
    x, y = p[order, 0], p[order, 1]
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])   # first row of each equal-x block
    block = np.cumsum(np.r_[True, x[1:] != x[:-1]]) - 1      # block id per sorted row
    block_min_y = y[starts]                                   # sorted by y within a block
    best_before = np.r_[np.inf, np.minimum.accumulate(block_min_y)[:-1]]
    survives = (y == block_min_y[block]) & (best_before[block] > block_min_y[block])
    mask = np.empty(n, dtype=bool)
    mask[order] = survives
    return mask


def _dominated_by_matrix_rows(p: np.ndarray, rows: slice) -> np.ndarray:
    """D[i, j] = "point j dominates point i" for i in ``rows`` (minimised points)."""
    q = p[rows, None, :]                     # [b, 1, k]: the points being judged
    le = np.all(p[None, :, :] <= q, axis=2)  # j at least as good as i everywhere
    lt = np.any(p[None, :, :] < q, axis=2)   # ... and strictly better somewhere
    return le & lt


def _row_blocks(n: int, k: int):
    step = max(1, _BLOCK_ELEMENTS // max(1, n * k))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _mask_general(p: np.ndarray) -> np.ndarray:
    """Non-dominated mask for minimised [n, k] points, any k, in O(k n²) (vectorised)."""
    n, k = p.shape
    mask = np.empty(n, dtype=bool)
    for rows in _row_blocks(n, k):
        mask[rows] = ~_dominated_by_matrix_rows(p, rows).any(axis=1)
    return mask


def _mask(p: np.ndarray) -> np.ndarray:
    return _mask_2d(p) if p.shape[1] == 2 else _mask_general(p)


def non_dominated_mask(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean [n] mask of the points no other point dominates (the Pareto front).

    ``points`` is [n, k] and must be finite (a NaN/inf row raises ValueError naming the row).
    k == 2 uses an O(n log n) sort-and-sweep; other k a vectorised O(k n²) pairwise check.
    Duplicates of a non-dominated point are all non-dominated.
    """
    return _mask(_as_minimised(points, directions))


def dominators(points: np.ndarray, directions: Sequence[str]) -> list[list[int]]:
    """For each point, the ascending indices of the points that dominate it (O(k n²))."""
    p = _as_minimised(points, directions)
    n, k = p.shape
    out: list[list[int]] = []
    for rows in _row_blocks(n, k):
        d = _dominated_by_matrix_rows(p, rows)
        out.extend(np.flatnonzero(r).tolist() for r in d)
    return out


def _ranks_2d(p: np.ndarray) -> np.ndarray:
    """Front ranks of minimised [n, 2] points in O(n log n) (one sort, one binary search each).

    A point's rank is the length of the longest dominance chain ending at it. Visit the points
    sorted by (x, y); every point that can dominate the current one was visited before it, and
    a visited point q ≠ p dominates p iff q.y ≤ p.y. ``tails[r]`` is the smallest y visited so
    far at rank r; it is non-decreasing in r (a rank-r point has a rank-(r-1) dominator with
    y at most its own), so the ranks blocked for p are a prefix and its rank is
    ``bisect_right(tails, p.y)``. Copies of one point are visited together and share a rank.
    """
    n = p.shape[0]
    ranks = np.zeros(n, dtype=np.int64)
    if n == 0:
        return ranks
    order = np.lexsort((p[:, 1], p[:, 0]))
    x, y = p[order, 0], p[order, 1]
    new = np.r_[True, (x[1:] != x[:-1]) | (y[1:] != y[:-1])].tolist()
    tails: list[float] = []
    out = np.empty(n, dtype=np.int64)
    r = 0
    for i, (yi, first) in enumerate(zip(y.tolist(), new)):
        if first:
            r = bisect_right(tails, yi)
            if r == len(tails):
                tails.append(yi)
            else:
                tails[r] = yi
        out[i] = r
    ranks[order] = out
    return ranks


def front_ranks(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Non-dominated sorting: rank 0 is the front, rank r the front once ranks < r are removed.

    Every rank-r point (r > 0) is dominated by some rank-(r-1) point and by no point of
    rank ≥ r. k == 2: O(n log n) (:func:`_ranks_2d`); other k: peels one front at a time,
    each with the same mask as non_dominated_mask.
    """
    p = _as_minimised(points, directions)
    if p.shape[1] == 2:
        return _ranks_2d(p)
    ranks = np.full(p.shape[0], -1, dtype=np.int64)
    remaining = np.arange(p.shape[0])
    rank = 0
    while remaining.size:
        front = _mask(p[remaining])
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
        rank += 1
    return ranks
