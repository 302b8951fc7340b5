#!/usr/bin/env python
"""What the 2-D frontier costs: non-dominated mask and front ranks of 10⁶ points.

    python benchmarks/frontier_cost.py                  # n = 10⁶, 5 repeats, three point sets
    python benchmarks/frontier_cost.py --n 100000 --repeats 3
    python benchmarks/frontier_cost.py --json out.json  # also write every number to a file

Point sets (objectives (min, max), as the paper's loss plane L_R ↓, L_F ↑):

    uniform   independent uniform [0, 1)² — a front of a few dozen points
    grid      integers 0..999 on both axes — ties and duplicates everywhere
    front     anti-correlated points on a line with a little noise — a large front (worst case
              for anything that is linear in the front's size)

Timed: ``analysis.non_dominated_mask`` (the O(n log n) sort-and-sweep used for two objectives)
and ``analysis.front_ranks`` (O(n log n) for two objectives), each from a float [n, 2] array
to the result, after one untimed warm-up; the median of ``--repeats`` runs is reported with
the target of ≤ 2 s for the mask. Only numpy runs; one process, one thread of Python.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import front_ranks, non_dominated_mask  # noqa: E402

DIRS = ("min", "max")
TARGET_S = 2.0


def point_sets(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.random(n)
    return {
        "uniform": rng.random((n, 2)),
        "grid": rng.integers(0, 1000, size=(n, 2)).astype(float),
        "front": np.column_stack([t, t + 1e-3 * rng.standard_normal(n)]),
    }


def timed(fn, pts: np.ndarray, repeats: int) -> tuple[list[float], object]:
    out = fn(pts, DIRS)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(pts, DIRS)
        times.append(time.perf_counter() - t0)
    return times, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    print(f"n = {args.n:,} points, {args.repeats} repeats, numpy {np.__version__}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(f"{'set':8} {'what':9} {'median s':>9} {'min s':>7} {'max s':>7} {'front':>9} {'ranks':>6}")
    for name, pts in point_sets(args.n).items():
        for what, fn in (("mask", non_dominated_mask), ("ranks", front_ranks)):
            times, out = timed(fn, pts, args.repeats)
            front = int(out.sum()) if what == "mask" else int((out == 0).sum())
            n_ranks = int(out.max()) + 1 if what == "ranks" else None
            med = statistics.median(times)
            rows.append({"set": name, "what": what, "n": args.n, "median_s": med, "min_s": min(times),
                         "max_s": max(times), "front_size": front, "n_ranks": n_ranks})
            print(f"{name:8} {what:9} {med:9.3f} {min(times):7.3f} {max(times):7.3f} {front:9,} "
                  f"{'' if n_ranks is None else n_ranks:>6}")
    worst = max(r["median_s"] for r in rows if r["what"] == "mask")
    ok = worst <= TARGET_S
    print(f"slowest 2-D mask median: {worst:.3f} s — target ≤ {TARGET_S} s: {'met' if ok else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "target_s": TARGET_S, "met": ok}, indent=1))


if __name__ == "__main__":
    main()
