"""Hypervolume: the area (in 2-D) a set of trials dominates up to a reference point.

With objectives converted to minimisation (a "max" objective is negated), the hypervolume of a
point set P with reference r is the Lebesgue measure of ∪_{p ∈ P, p ≤ r} [p, r]. Points that do
not dominate the reference contribute nothing. Exact in 2-D: sort by the first objective and add
the strips each point of the front adds, O(n log n).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _to_min(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    signs = np.array([1.0 if d == "min" else -1.0 for d in directions])
    if any(d not in ("min", "max") for d in directions):
        raise ValueError(f"directions must be 'min' or 'max', got {list(directions)}")
    return points * signs


def hypervolume_2d(points, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Exact 2-D hypervolume of `points` (n × 2) w.r.t. `reference`, in the objectives' units.

    `directions`: ("min" | "max") per objective. NaN rows are ignored (a failed trial adds no area).
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    pts = pts[~np.isnan(pts).any(axis=1)]
    p = _to_min(pts, directions)
    r = _to_min(np.asarray(reference, dtype=float).reshape(1, 2), directions)[0]
    p = p[(p[:, 0] < r[0]) & (p[:, 1] < r[1])]
    if not len(p):
        return 0.0
    p = p[np.lexsort((p[:, 1], p[:, 0]))]  # by x, then y
    area, best_y = 0.0, r[1]
    for i, (x, y) in enumerate(p):
        if y < best_y:  # on the front: it adds the strip from x to the next front point's x
            best_y = y
        next_x = p[i + 1, 0] if i + 1 < len(p) else r[0]
        area += (next_x - x) * (r[1] - best_y)
    return float(area)
