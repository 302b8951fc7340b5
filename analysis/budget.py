"""Is a method better, or just easier to tune? Hypervolume against the number of trials spent.

For a method with n trials (its lrs, c's, lr rules and seeds), a tuning budget of k trials is k of
them drawn without replacement. ``budget_curves`` gives, for k = 1..n, the hypervolume of the front
of k random trials: the mean over ``orderings`` random orders of the method's trials (the first k
of each order) and the central ``level`` interval of those orders. ``trials_to_reach`` is the
smallest k whose mean reaches ``fraction`` (default 90 %) of the method's own hypervolume with
all n trials. Every method is measured to one reference point (default: the No-unlearn trial's,
as in `hypervolume_table`), so the curves are comparable. Tables in, tables out.

>>> import pandas as pd
>>> t = pd.DataFrame({"method": ["m"] * 3, "combiner": ["m"] * 3, "status": ["ok"] * 3,
...                   "x": [1.0, 2.0, 3.0], "y": [3.0, 2.0, 1.0]})
>>> c = budget_curves(t, [("x", "min"), ("y", "min")], reference=(4.0, 4.0), orderings=500)
>>> c["hv"].round(1).tolist()  # one trial: 3, 4 or 3 (mean 10/3); any two: 5; all three: 6
[3.3, 5.0, 6.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.hypervolume import baseline_reference, hypervolume, prefix_hypervolumes

__all__ = ["budget_curves", "trials_to_reach"]


def budget_curves(trials: pd.DataFrame, objectives: Sequence[tuple[str, str]], *, by: str = "method",
                  reference=None, baseline: str = "no-unlearn", orderings: int = 200, level: float = 0.9,
                  rng_seed: int = 0) -> pd.DataFrame:
    """One row per (group, k): ``hv`` (mean over orderings), ``hv_lo`` / ``hv_hi`` (the central
    ``level`` interval over orderings), ``hv_final`` (all the group's trials), ``n_trials``.

    Only status "ok" trials with finite objectives count; the baseline trial is the reference and
    no group's. Each group draws its orders from its own generator seeded by ``rng_seed``, so a
    group's curve does not depend on the others.
    """
    cols, dirs = [c for c, _ in objectives], [d for _, d in objectives]
    ok = trials if "status" not in trials else trials[trials["status"] == "ok"]
    ok = ok[np.isfinite(ok[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)).all(axis=1)]
    reference = baseline_reference(ok, cols, reference, baseline)
    is_base = ok.get("combiner", pd.Series("", index=ok.index)) == baseline
    rows = []
    for name, df in ok[~is_base].groupby(by, sort=True):
        points = df[cols].to_numpy(float)
        n = len(points)
        rng = np.random.default_rng(rng_seed)
        hv = np.empty((orderings, n))
        for o in range(orderings):
            order = rng.permutation(n)
            hv[o] = prefix_hypervolumes(points[order], dirs, reference)  # the first k, k = 1..n
        final = hypervolume(points, dirs, reference)
        alpha = (1.0 - level) / 2.0
        for k in range(1, n + 1):
            rows.append({by: name, "k": k, "hv": float(hv[:, k - 1].mean()),
                         "hv_lo": float(np.quantile(hv[:, k - 1], alpha)),
                         "hv_hi": float(np.quantile(hv[:, k - 1], 1.0 - alpha)),
                         "hv_final": float(final), "n_trials": n})
    return pd.DataFrame(rows, columns=[by, "k", "hv", "hv_lo", "hv_hi", "hv_final", "n_trials"])


def trials_to_reach(curves: pd.DataFrame, fraction: float = 0.9, *, by: str = "method") -> pd.DataFrame:
    """Per group: the smallest k whose mean hypervolume reaches ``fraction`` of its own final one
    (``k_needed``; of ``n_trials``), or NaN when the final volume is 0 (nothing to reach)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rows = []
    for name, c in curves.groupby(by, sort=True):
        final = float(c["hv_final"].iloc[0])
        reached = c[c["hv"] >= fraction * final - 1e-12 * abs(final)]
        k = int(reached["k"].min()) if final > 0 and len(reached) else np.nan
        rows.append({by: name, "k_needed": k, "n_trials": int(c["n_trials"].iloc[0]),
                     "fraction": fraction, "hv_final": final})
    return pd.DataFrame(rows, columns=[by, "k_needed", "n_trials", "fraction", "hv_final"])
