"""Where a method's front lands across seeds: empirical attainment functions (EAF) and their differences.

A method run with several seeds gives one point set per seed (its trials of that seed: every lr,
c and lr rule together). The EAF at a point z of the objective space is the fraction of those
sets with at least one point that weakly dominates z. Its p %-attainment surface is the boundary
of the region attained by at least p % of the seeds: the 50 % surface is the median front, the
100 % one what every seed reached, the smallest positive level what the best seed reached. The
EAF difference of methods A and B at z is (sets of A attaining z) / n_A − (sets of B) / n_B:
positive where A's fronts reach more often than B's.

Computed by moocore (`moocore.eaf`, `moocore.eafdiff`; López-Ibáñez, Paquete and Stützle's exact
algorithms), on objectives turned to "minimise" (a maximised column negated) and turned back.
Tables in, tables out; `analysis.plots` draws them.

>>> import pandas as pd
>>> t = pd.DataFrame({"method": ["a"] * 4, "seed": [0, 0, 1, 1],
...                   "x": [1.0, 2.0, 1.5, 3.0], "y": [2.0, 1.0, 1.5, 0.5]})
>>> s = attainment_surfaces(t, [("x", "min"), ("y", "min")], percentiles=(50, 100))
>>> s[s.percentile == 100][["x", "y"]].values.tolist()
[[1.5, 2.0], [2.0, 1.5], [3.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["attainment_surfaces", "eaf_difference"]


def _sets(trials: pd.DataFrame, objectives: Sequence[tuple[str, str]], set_col: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows with finite objectives, minimised, and the set (seed) of each, numbered 1..n."""
    cols = [c for c, _ in objectives]
    signs = np.array([1.0 if d == "min" else -1.0 for _, d in objectives])
    ok = trials if "status" not in trials else trials[trials["status"] == "ok"]
    vals = ok[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    keep = np.isfinite(vals).all(axis=1)
    seeds = (ok[set_col] if set_col in ok else pd.Series(0, index=ok.index)).to_numpy()[keep]
    _, numbered = np.unique(seeds, return_inverse=True)
    return vals[keep] * signs, numbered + 1


def attainment_surfaces(trials: pd.DataFrame, objectives: Sequence[tuple[str, str]], *, by: str = "method",
                        set_col: str = "seed", percentiles: Sequence[float] = (50,)) -> pd.DataFrame:
    """The p %-attainment surfaces of each group (``by``) over its seeds (``set_col``).

    One row per surface point: ``by``, ``percentile``, ``n_sets`` (the group's seeds) and the
    objectives' columns in their own units. A group with one seed has one surface at every
    level: its front. Trials with status other than "ok" or a non-finite objective are left out.
    """
    if len(objectives) != 2:
        raise ValueError(f"attainment surfaces are drawn for 2 objectives, got {len(objectives)}")
    import moocore

    cols = [c for c, _ in objectives]
    signs = np.array([1.0 if d == "min" else -1.0 for _, d in objectives])
    out = []
    groups = trials.groupby(by, sort=True) if by in trials else [("all", trials)]
    for name, df in groups:
        points, sets = _sets(df, objectives, set_col)
        if not len(points):
            continue
        surf = moocore.eaf(points, sets, percentiles=list(percentiles))
        part = pd.DataFrame(surf[:, :2] * signs, columns=cols)
        part.insert(0, "n_sets", int(sets.max()))
        part.insert(0, "percentile", surf[:, 2])
        part.insert(0, by, name)
        out.append(part)
    columns = [by, "percentile", "n_sets", *cols]
    return pd.concat(out, ignore_index=True)[columns] if out else pd.DataFrame(columns=columns)


def eaf_difference(trials: pd.DataFrame, objectives: Sequence[tuple[str, str]], a: str, b: str, *,
                   by: str = "method", set_col: str = "seed") -> pd.DataFrame:
    """Where method ``a``'s fronts attain more often than ``b``'s, and by how much.

    One row per rectangle of constant difference: ``x_lo, y_lo, x_hi, y_hi`` (the objectives'
    own units; ±inf where the region is unbounded) and ``diff`` = the fraction of a's seeds
    attaining it minus the fraction of b's (in [−1, 1]; > 0 favours a). Rectangles of zero
    difference are left out.
    """
    if len(objectives) != 2:
        raise ValueError(f"an EAF difference is drawn for 2 objectives, got {len(objectives)}")
    import moocore

    missing = [m for m in (a, b) if by not in trials or not (trials[by] == m).any()]
    if missing:
        have = sorted(map(str, trials[by].dropna().unique())) if by in trials else []
        raise ValueError(f"no trials of {', '.join(map(repr, missing))} in column {by!r}; it has: {', '.join(have)}")
    sides = []
    for m in (a, b):
        points, sets = _sets(trials[trials[by] == m], objectives, set_col)
        if not len(points):
            raise ValueError(f"{m!r} has no trial with finite {objectives[0][0]} and {objectives[1][0]}")
        sides.append((np.column_stack([points, sets]), int(sets.max())))
    (x, n_a), (y, n_b) = sides
    rect = moocore.eafdiff(x, y, rectangles=True)
    # moocore gives the difference in sets of x minus sets of y; with unequal seed counts turn
    # each side into a fraction: recompute from the two EAFs at each rectangle's lower corner.
    signs = np.array([1.0 if d == "min" else -1.0 for _, d in objectives])
    lo, hi = rect[:, 0:2], rect[:, 2:4]
    frac = _fraction_attaining(x, n_a, lo) - _fraction_attaining(y, n_b, lo)
    corners = np.column_stack([lo * signs, hi * signs])
    # after negating a maximised objective, lo and hi swap on that axis: keep lo ≤ hi
    x_lo, x_hi = np.minimum(corners[:, 0], corners[:, 2]), np.maximum(corners[:, 0], corners[:, 2])
    y_lo, y_hi = np.minimum(corners[:, 1], corners[:, 3]), np.maximum(corners[:, 1], corners[:, 3])
    table = pd.DataFrame({"x_lo": x_lo, "y_lo": y_lo, "x_hi": x_hi, "y_hi": y_hi, "diff": frac})
    return table[table["diff"] != 0].reset_index(drop=True)


def _fraction_attaining(data: np.ndarray, n_sets: int, z: np.ndarray) -> np.ndarray:
    """For each row of z (minimised), the fraction of the sets in ``data`` ([points, set]) with a
    point that weakly dominates it."""
    points, sets = data[:, :-1], data[:, -1].astype(int)
    dominated = (points[None, :, :] <= z[:, None, :]).all(axis=2)  # z's coordinates are the data's: exact
    hit = np.zeros((len(z), n_sets + 1), dtype=bool)
    for s in range(1, n_sets + 1):
        hit[:, s] = dominated[:, sets == s].any(axis=1)
    return hit[:, 1:].sum(axis=1) / n_sets
