"""Hypervolume: the area (in 2-D) a set of trials dominates up to a reference point.

With objectives converted to minimisation (a "max" objective is negated), the hypervolume of a
point set P with reference r is the Lebesgue measure of ∪_{p ∈ P, p ≤ r} [p, r]. Points that do
not dominate the reference contribute nothing. Exact in 2-D: sort by the first objective and add
the strips each point of the front adds, O(n log n); exact for k ≥ 3 through moocore.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def hypervolume(points, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Exact hypervolume for any number of objectives (NaN rows ignored): `moocore.hypervolume`
    (a maintained library: the best known exact algorithms, e.g. HV3D+ in 3-D, WFG-style beyond),
    on the points that strictly dominate the reference. 2-D uses `hypervolume_2d` above, which
    tests check against moocore and a brute-force grid count."""
    directions = list(directions)
    k = len(directions)
    pts = np.asarray(points, dtype=float).reshape(-1, k)
    pts = pts[~np.isnan(pts).any(axis=1)]
    if k == 2:
        return hypervolume_2d(pts, directions, reference)
    p = _to_min(pts, directions)
    r = _to_min(np.asarray(reference, dtype=float).reshape(1, k), directions)[0]
    p = p[(p < r).all(axis=1)]
    if not len(p):
        return 0.0
    if k == 1:
        return float(r[0] - p[:, 0].min())
    import moocore

    return float(moocore.hypervolume(p, ref=r))


def prefix_hypervolumes(points, directions: Sequence[str], reference: Sequence[float]) -> np.ndarray:
    """``hypervolume(points[:k], directions, reference)`` for k = 1..n, in one pass.

    2-D: the front so far is kept as a staircase and each point adds the area it alone dominates
    (O(n log n) comparisons; the same volumes as :func:`hypervolume_2d`, summed in another order,
    so equal up to float rounding). k ≠ 2: one :func:`hypervolume` per prefix."""
    from bisect import bisect_left, bisect_right

    directions = list(directions)
    k = len(directions)
    pts = np.asarray(points, dtype=float).reshape(-1, k)
    if k != 2:
        return np.array([hypervolume(pts[:i], directions, reference) for i in range(1, len(pts) + 1)], dtype=float)
    p = _to_min(pts, directions)
    rx, ry = _to_min(np.asarray(reference, dtype=float).reshape(1, 2), directions)[0].tolist()
    xs: list[float] = []  # the front so far: x ascending, y descending
    ys: list[float] = []
    out = np.empty(len(p))
    total = 0.0
    for i, (x, y) in enumerate(p.tolist()):
        if x < rx and y < ry:  # (False for NaN: a NaN row adds nothing, as in hypervolume_2d)
            left = bisect_right(xs, x)
            if not (left and ys[left - 1] <= y):  # not dominated by (nor equal to) a front point
                j = bisect_left(xs, x)
                t, h = x, (ys[j - 1] if j else ry)  # the staircase's height just right of x
                m = j
                while m < len(xs) and ys[m] >= y:  # front points the new one dominates: their steps go
                    total += (xs[m] - t) * (h - y)
                    t, h = xs[m], ys[m]
                    m += 1
                total += ((xs[m] if m < len(xs) else rx) - t) * (h - y)
                xs[j:m], ys[j:m] = [x], [y]
        out[i] = total
    return out


def _bootstrap_mean_ci(values: np.ndarray, n_boot: int, level: float, rng: np.random.Generator
                       ) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (resampled with replacement)."""
    if len(values) < 2:
        return (float(values[0]), float(values[0])) if len(values) else (np.nan, np.nan)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def nadir_point(trials, objectives: Sequence[tuple[str, str]]) -> np.ndarray:
    """The worst finite value of each objective over the trials with status "ok"."""
    import pandas as pd

    ok = trials if "status" not in trials else trials[trials["status"] == "ok"]
    out = []
    for col, d in objectives:
        v = pd.to_numeric(ok[col], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        out.append(np.nan if not len(v) else (v.max() if d == "min" else v.min()))
    return np.asarray(out, dtype=float)


def baseline_reference(ok, cols: Sequence[str], reference=None, baseline: str = "no-unlearn") -> np.ndarray:
    """The reference point: ``reference`` checked (one value per objective), or by default the
    baseline trial's point (``combiner == baseline``: the No-unlearn model) among ``ok``."""
    import pandas as pd

    if reference is None:
        base = ok[ok.get("combiner", pd.Series("", index=ok.index)) == baseline]
        if base.empty:
            raise ValueError(f"no {baseline!r} trial to take the reference point from; pass "
                             "reference= explicitly (one value per objective)")
        reference = base[list(cols)].astype(float).iloc[0].to_numpy()
    reference = np.asarray(reference, dtype=float)
    if reference.shape != (len(cols),):
        raise ValueError(f"reference needs {len(cols)} values, got {reference.tolist()}")
    return reference


def hypervolume_table(trials, objectives: Sequence[tuple[str, str]], reference=None,
                      by: str = "method", seed_col: str = "seed", baseline: str = "no-unlearn",
                      n_boot: int = 2000, level: float = 0.95, rng_seed: int = 0):
    """Hypervolume per group (``by``) and overall ("all"), with a bootstrap CI over seeds.

    trials:     one row per trial; only status "ok" rows with finite objectives count.
    objectives: [(column, "min"|"max"), ...], any number of them (k ≥ 3 exact through moocore).
    reference:  the point the volume is measured to. Default (None): the baseline trial's point
                (``combiner == baseline``, the No-unlearn model), so a method's volume is what
                it gains over not unlearning at all. Or a sequence of numbers.
    Per group and seed s, HV_s = hypervolume of the group's trials with seed s (its lrs, c's
    and lr rules together). ``hv`` is the mean of HV_s over seeds, ``ci_lo``/``ci_hi`` the
    percentile bootstrap CI of that mean (seeds resampled with replacement; ``n_boot`` draws;
    with one seed the CI is that value), ``hv_pooled`` the volume of all the group's trials
    together. The baseline's own row is left out of the groups (it adds nothing at the
    reference) but counts in "all".
    """
    import pandas as pd

    cols = [c for c, _ in objectives]
    dirs = [d for _, d in objectives]
    ok = trials if "status" not in trials else trials[trials["status"] == "ok"]
    vals = ok[cols].apply(pd.to_numeric, errors="coerce")
    ok = ok[np.isfinite(vals.to_numpy(float)).all(axis=1)]
    is_base = ok.get("combiner", pd.Series("", index=ok.index)) == baseline
    reference = baseline_reference(ok, cols, reference, baseline)
    seeds = ok[seed_col] if seed_col in ok else pd.Series(0, index=ok.index)
    rng = np.random.default_rng(rng_seed)
    rows = []
    groups = [(g, df) for g, df in ok[~is_base].groupby(by, sort=True)] if by in ok else []
    for name, df in groups + [("all", ok)]:
        per_seed = np.array([hypervolume(d[cols].to_numpy(float), dirs, reference)
                             for _, d in df.groupby(seeds.loc[df.index], sort=True)])
        lo, hi = _bootstrap_mean_ci(per_seed, n_boot, level, rng)
        rows.append({by: name, "hv": float(per_seed.mean()) if len(per_seed) else 0.0,
                     "ci_lo": lo, "ci_hi": hi, "n_seeds": len(per_seed), "n_trials": len(df),
                     "hv_pooled": hypervolume(df[cols].to_numpy(float), dirs, reference)})
    out = pd.DataFrame(rows)
    out.attrs["reference"] = dict(zip(cols, reference.tolist()))
    return out
