"""Pareto dominance over k objectives, each minimised or maximised.

The ngdiff paper's Definition 1 (two objectives: retain loss L_R minimised, forget loss L_F
maximised) says θ is dominated by θ' when L_R(θ) ≥ L_R(θ') and L_F(θ) ≤ L_F(θ') with at least
one inequality strict. Generalised to k objectives: ``a`` dominates ``b`` when ``a`` is at least
as good as ``b`` on every objective and strictly better on at least one. Equal points never
dominate each other, so every copy of a non-dominated point is non-dominated.

Every function first maps the points to "all objectives minimised" (a maximised column is
negated, which is exact for floats) and then works on that copy.

At scale the non-dominated mask and the ranks come from ``moocore`` (Kung, Luccio and Preparata's
dimension sweep, O(n log n) for k ≤ 3 and O(n log^(k-2) n) above; Jensen's O(n log n) ranks for
k = 2, front peeling for k ≥ 3); on many points the mask first drops those one pivot dominates. Its ``keep_weakly=True`` keeps every copy of a non-dominated
point, which is this module's rule: a point is only weakly dominated by its own copies, and a
point weakly dominated by a *different* point is dominated (Definition 1). ``dominators`` lists
every dominator of every point, O(k n²) by nature (the output can be n²/2 pairs);
``front_dominators`` names at most a few, taken from the front, in O(k · n · |front|).

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

from collections.abc import Sequence

import moocore
import numpy as np

__all__ = ["DIRECTIONS", "dominates", "non_dominated_mask", "dominators", "front_dominators",
           "front_ranks"]

DIRECTIONS = ("min", "max")

# Pairwise comparisons are done in row blocks so that memory stays near this many booleans.
_BLOCK_ELEMENTS = 1 << 22
# From this many points on, the mask first drops the points one pivot dominates (see _mask).
_PREFILTER_MIN_ROWS = 4096


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
    if not np.isfinite(arr).all():  # one pass over the values; rows only to name the bad one
        finite = np.isfinite(arr).all(axis=1)
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
def _pivot_survivors(p: np.ndarray) -> np.ndarray:
    """Indices of the points that one pivot does not dominate; exact to drop the others.

    A point dominated by the pivot f cannot change anyone's status: whatever it dominates, f
    dominates too (dominance is transitive), and f itself is kept (nothing dominates itself;
    its copies are kept too). Any pivot is exact; this one minimises the sum of the range-scaled
    objectives, so (up to rounding) it sits on the front, near its middle; on typical data it dominates almost every point, and
    the O(n log n) sort then runs on the few left (10⁷ uniform points: 3·10³). Cost: a few
    vectorised passes over the points.
    """
    lo, hi = p.min(axis=0), p.max(axis=0)
    span = hi - lo
    span[~np.isfinite(span) | (span <= 0)] = 1.0
    score = np.zeros(p.shape[0])
    for j in range(p.shape[1]):
        score += p[:, j] / span[j]
    f = p[int(np.argmin(score))]
    at_least_as_bad = np.ones(p.shape[0], dtype=bool)
    worse = np.zeros(p.shape[0], dtype=bool)
    for j in range(p.shape[1]):
        at_least_as_bad &= p[:, j] >= f[j]
        worse |= p[:, j] > f[j]
    return np.flatnonzero(~(at_least_as_bad & worse))


def _mask(p: np.ndarray) -> np.ndarray:
    """Non-dominated mask of minimised [n, k] points (moocore; k == 1 directly)."""
    n, k = p.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    if k == 1:
        return p[:, 0] == p[:, 0].min()
    if n >= _PREFILTER_MIN_ROWS:
        keep = _pivot_survivors(p)
        if keep.size < n:
            mask = np.zeros(n, dtype=bool)
            mask[keep] = _moocore_mask(p[keep])
            return mask
    return _moocore_mask(p)


def _moocore_mask(p: np.ndarray) -> np.ndarray:
    # keep_weakly=True: every copy of a non-dominated point stays (moocore's default keeps one)
    return np.asarray(moocore.is_nondominated(p, keep_weakly=True), dtype=bool)


def _dominated_by_matrix_rows(p: np.ndarray, rows: slice, by: np.ndarray | None = None) -> np.ndarray:
    """D[i, j] = "point j of ``by`` (default ``p``) dominates point i of ``p``" for i in ``rows``."""
    by = p if by is None else by
    q = p[rows]                                # [b, k]: the points being judged
    le = np.ones((q.shape[0], by.shape[0]), dtype=bool)   # j at least as good as i everywhere
    lt = np.zeros((q.shape[0], by.shape[0]), dtype=bool)  # ... and strictly better somewhere
    for j in range(p.shape[1]):  # one [b, n] comparison per objective (not a reduction over a k-axis)
        le &= by[None, :, j] <= q[:, j, None]
        lt |= by[None, :, j] < q[:, j, None]
    return le & lt


def _row_blocks(n: int, width: int):
    """Row slices of [n] such that a block times ``width`` stays near _BLOCK_ELEMENTS."""
    step = max(1, _BLOCK_ELEMENTS // max(1, width))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def non_dominated_mask(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean [n] mask of the points no other point dominates (the Pareto front).

    ``points`` is [n, k] and must be finite (a NaN/inf row raises ValueError naming the row).
    moocore's dimension sweep: O(n log n) for k ≤ 3, O(n log^(k-2) n) for k ≥ 4 (its naive
    O(k n²) check on small inputs), on the points a pivot does not dominate when there are many
    (:func:`_pivot_survivors`, exact). Duplicates of a non-dominated point are all non-dominated.
    """
    return _mask(_as_minimised(points, directions))


def dominators(points: np.ndarray, directions: Sequence[str]) -> list[list[int]]:
    """For each point, the ascending indices of every point that dominates it.

    O(k n²) time (vectorised in row blocks, memory bounded) and up to n²/2 indices of output:
    for small inputs. :func:`front_dominators` names a few per point and scales.
    """
    p = _as_minimised(points, directions)
    n, k = p.shape
    out: list[list[int]] = []
    for rows in _row_blocks(n, n * k):
        d = _dominated_by_matrix_rows(p, rows)
        out.extend(np.flatnonzero(r).tolist() for r in d)
    return out


def front_dominators(points: np.ndarray, directions: Sequence[str], limit: int = 3) -> list[list[int]]:
    """For each point, at most ``limit`` points *of the front* that dominate it, ascending index.

    Every dominated point of a finite set is dominated by some non-dominated point (follow
    dominators until none is left: dominance is transitive), so a point gets an empty list iff
    it is on the front. Of its front dominators the ``limit`` with the smallest indices are
    named (deterministic, and a subset of :func:`dominators`'s list). Cost: the front (moocore)
    plus O(k · n_dominated · n_front), vectorised in blocks.
    """
    if not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    p = _as_minimised(points, directions)
    n, k = p.shape
    mask = _mask(p)
    front = np.flatnonzero(mask)
    dominated = np.flatnonzero(~mask)
    out: list[list[int]] = [[] for _ in range(n)]
    if not dominated.size:
        return out
    fp, dp = p[front], p[dominated]
    width = min(limit, len(front))
    for rows in _row_blocks(len(dominated), len(front) * k):
        d = _dominated_by_matrix_rows(dp, rows, by=fp)         # [b, n_front]
        count = np.minimum(d.sum(axis=1), width)               # how many each row names
        cols = np.empty((d.shape[0], width), dtype=np.intp)    # each row's first `width` dominators, ascending
        every = np.arange(d.shape[0])
        for t in range(width):
            cols[:, t] = d.argmax(axis=1)                      # the first True left (0 when none: cut by count)
            d[every, cols[:, t]] = False
        first = front[cols].tolist()
        for i in np.flatnonzero(count):
            out[int(dominated[rows.start + i])] = first[i][:count[i]]
    return out


def front_ranks(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Non-dominated sorting: rank 0 is the front, rank r the front once ranks < r are removed.

    Every rank-r point (r > 0) is dominated by some rank-(r-1) point and by no point of
    rank ≥ r; copies of a point share its rank. ``moocore.pareto_rank``: O(n log n) for k == 2
    (Jensen), one front at a time for k ≥ 3; k == 1 ranks the distinct values.
    """
    p = _as_minimised(points, directions)
    n, k = p.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if k == 1:
        return np.unique(p[:, 0], return_inverse=True)[1].astype(np.int64).reshape(n)
    return np.asarray(moocore.pareto_rank(p), dtype=np.int64)
