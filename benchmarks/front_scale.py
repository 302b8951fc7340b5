#!/usr/bin/env python
"""Fronts at scale: the non-dominated mask of many points, old (hand-written) vs new (moocore).

    python benchmarks/front_scale.py                        # the issue's sizes (a few minutes)
    python benchmarks/front_scale.py --n2 1000000 --n3 20000 --table-n 20000   # quicker
    python benchmarks/front_scale.py --json out.json        # also write every number to a file

Timed, on seeded synthetic points (uniform [0, 1)^k, objectives (min, max[, min])):

    2-D mask   10⁷ points: old = the sort-and-sweep this repository used for two objectives
               (np.lexsort + a running minimum, copied below), new = analysis.non_dominated_mask
               (the points one pivot dominates dropped, then moocore.is_nondominated with
               keep_weakly=True); target ≤ 5 s
    3-D mask   10⁵ points: old = the vectorised O(k n²) pairwise check used for k ≥ 3 (copied
               below), new = analysis.non_dominated_mask; target ≤ 2 s. --old-n3 times the old
               one on fewer points (10⁵ takes about half an hour on 2 loaded cores)
    3-D ranks  10⁵ points: analysis.front_ranks (moocore.pareto_rank)
    table      analysis.frontier_table on 10⁵ trials (3 objectives): ranks, front and up to 3
               front dominators per dominated row; old = every dominator of every row
               (all_dominators=True, O(k n²)), timed on --old-table-n rows only

Each new timing is the median of --repeats runs after a warm-up; the old ones run once (they
take long). Both answers are compared (the masks must be equal). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import front_ranks, frontier_table, non_dominated_mask  # noqa: E402

_BLOCK_ELEMENTS = 1 << 22


# ------------------------------------------------- the previous implementations (as they were)
def old_mask_2d(p: np.ndarray) -> np.ndarray:
    """Non-dominated mask of minimised [n, 2] points: sort by (x, y), running minimum of y."""
    n = p.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((p[:, 1], p[:, 0]))
    x, y = p[order, 0], p[order, 1]
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    block = np.cumsum(np.r_[True, x[1:] != x[:-1]]) - 1
    block_min_y = y[starts]
    best_before = np.r_[np.inf, np.minimum.accumulate(block_min_y)[:-1]]
    survives = (y == block_min_y[block]) & (best_before[block] > block_min_y[block])
    mask = np.empty(n, dtype=bool)
    mask[order] = survives
    return mask


def old_mask_general(p: np.ndarray) -> np.ndarray:
    """Non-dominated mask of minimised [n, k] points: pairwise, in row blocks (O(k n²))."""
    n, k = p.shape
    mask = np.empty(n, dtype=bool)
    step = max(1, _BLOCK_ELEMENTS // max(1, n * k))
    for start in range(0, n, step):
        q = p[start:start + step, None, :]
        le = np.all(p[None, :, :] <= q, axis=2)
        lt = np.any(p[None, :, :] < q, axis=2)
        mask[start:start + step] = ~(le & lt).any(axis=1)
    return mask


def minimised(points: np.ndarray, dirs: tuple[str, ...]) -> np.ndarray:
    """What the old entry point did before its algorithm: finiteness check, max columns negated."""
    if not np.isfinite(points).all():
        raise ValueError("non-finite")
    return points * np.array([1.0 if d == "min" else -1.0 for d in dirs])


# ------------------------------------------------------------------------------------- timing
def timed(fn, repeats: int, warm: bool = True) -> tuple[float, object]:
    if warm:
        fn()
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n2", type=int, default=10_000_000, help="points of the 2-D front (default 10⁷)")
    ap.add_argument("--n3", type=int, default=100_000, help="points of the 3-D front (default 10⁵)")
    ap.add_argument("--table-n", type=int, default=100_000, help="rows of the frontier table (default 10⁵)")
    ap.add_argument("--old-table-n", type=int, default=10_000, help="rows for the all-dominators table")
    ap.add_argument("--old-n3", type=int, default=None,
                    help="points for the old 3-D pairwise mask (default --n3; at 10⁵ it takes minutes)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []

    dirs2 = ("min", "max")
    p2 = rng.random((args.n2, 2))
    old_s, old = timed(lambda: old_mask_2d(minimised(p2, dirs2)), 1, warm=False)
    new_s, new = timed(lambda: non_dominated_mask(p2, dirs2), args.repeats)
    assert np.array_equal(old, new), "2-D masks differ"
    rows.append(("2-D mask", args.n2, old_s, new_s, 5.0, int(new.sum())))
    p2 = old = new = None  # free 10⁷ points before the next part

    dirs3 = ("min", "max", "min")
    p3 = rng.random((args.n3, 3))
    old_n3 = min(args.n3, args.old_n3 or args.n3)
    part = p3[:old_n3]
    old_s, old = timed(lambda: old_mask_general(minimised(part, dirs3)), 1, warm=False)
    new_s, new = timed(lambda: non_dominated_mask(part, dirs3), args.repeats)
    assert np.array_equal(old, new), "3-D masks differ"
    rows.append(("3-D mask", old_n3, old_s, new_s, 2.0 if old_n3 == args.n3 else None, int(new.sum())))
    if old_n3 < args.n3:
        new_s, new = timed(lambda: non_dominated_mask(p3, dirs3), args.repeats)
        rows.append(("3-D mask", args.n3, None, new_s, 2.0, int(new.sum())))
    rank_s, ranks = timed(lambda: front_ranks(p3, dirs3), args.repeats)
    assert np.array_equal(ranks == 0, new)
    rows.append(("3-D ranks", args.n3, None, rank_s, None, int(ranks.max()) + 1))

    objs = [("a", "min"), ("b", "max"), ("c", "min")]
    t = rng.random((args.table_n, 3))
    df = pd.DataFrame({"trial_id": [f"t{i}" for i in range(args.table_n)], "status": "ok",
                       "a": t[:, 0], "b": t[:, 1], "c": t[:, 2]})
    small = df.head(args.old_table_n)
    old_small_s, _ = timed(lambda: frontier_table(small, objs, all_dominators=True), 1, warm=False)
    new_small_s, _ = timed(lambda: frontier_table(small, objs), args.repeats)
    rows.append(("frontier_table", args.old_table_n, old_small_s, new_small_s, None, None))
    new_s, table = timed(lambda: frontier_table(df, objs), args.repeats)
    rows.append(("frontier_table", args.table_n, None, new_s, None, int((~table.rows["dominated"]).sum())))

    cmd = "python " + " ".join([sys.argv[0], *sys.argv[1:]])
    print(f"`{cmd}` — {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}, moocore {__import__('moocore').__version__}\n")
    print("| what | n | old (s) | new (s) | old / new | target (s) | front size (ranks) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for what, n, old_s, new_s, target, size in rows:
        ratio = f"{old_s / new_s:.3g}×" if old_s is not None else ""
        print(f"| {what} | {n:,} | {'' if old_s is None else f'{old_s:.3g}'} | {new_s:.3g} | {ratio} | "
              f"{'' if target is None else f'≤ {target:g}' + (' ✓' if new_s <= target else ' ✗')} | "
              f"{'' if size is None else size} |")
    print("\nold: the hand-written mask (2-D sort-and-sweep, k ≥ 3 pairwise O(k n²)) and a frontier table "
          "listing every dominator; new: a pivot's dominated points dropped, then moocore (keep_weakly=True), "
          "and at most 3 front dominators per row above 2000 rows. Old rows left empty were not run (O(k n²)).")
    if args.json:
        Path(args.json).write_text(json.dumps([dict(zip(("what", "n", "old_s", "new_s", "target_s", "size"), r))
                                               for r in rows], indent=1))


if __name__ == "__main__":
    main()
