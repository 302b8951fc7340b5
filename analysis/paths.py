"""The training-path frontier: every evaluation (trial, step) of a sweep as a point.

``evals.parquet`` holds one row per trial per evaluation point (every ``eval.every`` steps and
the end), wide: ``trial_id``, ``eval_step``, ``wall_s`` and one column per metric.
:func:`path_points` turns it into one row per (trial, step) carrying its trial's columns
(status, combiner, method, lr, label, …), so the frontier table, ``--by method`` and every
format work on it unchanged: the point's id is ``trial@step`` (``t003@20``), its metric values
and ``wall_s`` are the evaluation's. :func:`path_lines` orders the placed points along each
trial's path for the figure (analysis computes, plotting only draws).

A point keeps its trial's status, so a diverged or failed trial's evaluations are excluded
with the same reason as on the final front ("status=diverged"): the path front is the final
front's trials, at every evaluation they had.

>>> import pandas as pd
>>> trials = pd.DataFrame({"trial_id": ["t0", "t1"], "status": ["ok", "ok"], "method": ["a", "b"],
...                        "rouge_f": [0.9, 0.2]})
>>> evals = pd.DataFrame({"trial_id": ["t1", "t0", "t1"], "eval_step": [20, 0, 10],
...                       "rouge_f": [0.2, 0.9, 0.5]})
>>> p = path_points(trials, evals)
>>> p.points[["point", "trial_id", "step", "method", "rouge_f"]].values.tolist()
[['t0@0', 't0', 0, 'a', 0.9], ['t1@10', 't1', 10, 'b', 0.5], ['t1@20', 't1', 20, 'b', 0.2]]
>>> p.single_evaluation, p.unevaluated
(False, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["POINT_COL", "STEP_COL", "PathPoints", "path_points", "path_lines"]

#: The id column of a path point ("t003@20") and its step column.
POINT_COL = "point"
STEP_COL = "step"


@dataclass(frozen=True, eq=False)  # eq=False: DataFrames have no truth value
class PathPoints:
    """Result of :func:`path_points`.

    points:      one row per (trial, step): ``point`` ("t003@20"), ``trial_id``, ``step``, the
                 trial's columns, then the evaluation's (its metrics and ``wall_s`` replace the
                 trial's final ones); in the trials' order, each trial's steps ascending.
    unevaluated: ids of the trials with no row in evals.parquet (none are dropped silently).
    per_trial:   evaluation count per trial id (0 for the unevaluated).
    """

    points: pd.DataFrame
    unevaluated: list = field(default_factory=list)
    per_trial: dict = field(default_factory=dict)

    @property
    def single_evaluation(self) -> bool:
        """True when no trial has more than one evaluation (``eval.every`` was 0): the path
        front is then the final front."""
        return max(self.per_trial.values(), default=0) <= 1


def path_points(trials: pd.DataFrame, evals: pd.DataFrame) -> PathPoints:
    """One row per evaluation (trial, step) of ``evals``, with its trial's columns.

    ``trials``: trials.parquet as a DataFrame (``trial_id`` required; ``method`` and the rest
    are carried along). ``evals``: evals.parquet (``trial_id``, ``eval_step``, metrics). Rows of
    evals whose trial is not in ``trials`` are ignored; a (trial, step) evaluated twice (a
    retried trial) keeps its last row.
    """
    for name, df, cols in (("trials", trials, ["trial_id"]), ("evals", evals, ["trial_id", "eval_step"])):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in cols if c not in df]
        if missing:
            raise ValueError(f"{name} has no column(s) {missing!r}: pass the {name}.parquet of a sweep "
                             f"(columns: {', '.join(map(str, df.columns))})")
    for clash in (POINT_COL, STEP_COL):
        if clash in trials or clash in evals:
            raise ValueError(f"column {clash!r} already exists in trials or evals; path_points adds it")
    ids = trials["trial_id"].tolist()
    if len(set(ids)) != len(ids):
        raise ValueError("trials has repeated trial_id values: pass one sweep's trials.parquet")
    ev = evals[evals["trial_id"].isin(set(ids))]
    ev = ev.drop_duplicates(["trial_id", "eval_step"], keep="last").rename(columns={"eval_step": STEP_COL})
    ev = ev.assign(**{STEP_COL: ev[STEP_COL].astype(np.int64)})
    carried = trials[[c for c in trials.columns if c == "trial_id" or c not in ev.columns]]
    # A trial's columns repeat on each of its points: pyarrow-backed strings would copy every value
    # at every point (a 3 kB spec × 20 evaluations × 10⁴ trials is 600 MB per copy); Python-backed
    # strings (the same "str" dtype, values and missing values) share one object per trial.
    carried = carried.astype({c: pd.StringDtype("python", na_value=dt.na_value) for c, dt in carried.dtypes.items()
                              if c != "trial_id" and isinstance(dt, pd.StringDtype) and dt.storage == "pyarrow"})
    order = {tid: i for i, tid in enumerate(ids)}
    pts = carried.merge(ev, on="trial_id", how="inner", validate="one_to_many")
    pts = pts.iloc[np.lexsort((pts[STEP_COL].to_numpy(), pts["trial_id"].map(order).to_numpy()))]
    pts.insert(0, POINT_COL, [f"{t}@{s}" for t, s in zip(pts["trial_id"], pts[STEP_COL])])
    rest = [c for c in pts.columns if c not in (POINT_COL, "trial_id", STEP_COL)]
    pts = pts[[POINT_COL, "trial_id", STEP_COL, *rest]].reset_index(drop=True)
    counts = pts["trial_id"].value_counts().to_dict()
    per_trial = {tid: int(counts.get(tid, 0)) for tid in ids}
    return PathPoints(pts, [t for t, k in per_trial.items() if k == 0], per_trial)


def path_lines(table) -> pd.DataFrame:
    """The placed points of a path frontier table (``frontier_table`` over ``path_points``) in
    drawing order: ``trial_id``, ``step``, ``point``, ``x``, ``y`` (the first two objectives),
    ``dominated``; each trial's steps ascending, trials in order of first appearance."""
    rows = table.rows
    if rows.empty or len(table.objectives) < 2:
        return pd.DataFrame(columns=["trial_id", STEP_COL, POINT_COL, "x", "y", "dominated"])
    x, y = table.objectives[0][0], table.objectives[1][0]
    out = pd.DataFrame({"trial_id": rows["trial_id"], STEP_COL: rows[STEP_COL], POINT_COL: rows[table.id_col],
                        "x": pd.to_numeric(rows[x]), "y": pd.to_numeric(rows[y]), "dominated": rows["dominated"]})
    first = {t: i for i, t in enumerate(dict.fromkeys(out["trial_id"]))}
    out = out.iloc[np.lexsort((out[STEP_COL].to_numpy(), out["trial_id"].map(first).to_numpy()))]
    return out.reset_index(drop=True)
