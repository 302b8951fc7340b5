"""The forget/retain frontier of a sweep as a table: which trials are dominated, and by whom.

Analysis computes tables; plotting only draws them. ``frontier_table`` takes one row per trial
(as read from the results Parquet), leaves out the trials that cannot be placed on a frontier
(status other than "ok", or a NaN/inf objective) and reports them with a reason, then marks
every remaining trial ``dominated`` / ``rank`` / ``dominated_by``. ``format_table`` renders it.

At scale (a group of more than ``ALL_DOMINATORS_MAX_ROWS`` rows, e.g. every evaluation of a large
sweep, or synthetic benchmarks) ``dominated_by`` names at most ``DOMINATORS_LIMIT`` dominators
per row, taken from the front (see :func:`frontier_table`), so a table of 10⁵ rows costs the
front, the ranks and O(k · dominated · front) instead of O(k n²).

>>> import pandas as pd
>>> trials = pd.DataFrame({
...     "trial_id": ["a", "b", "c", "d"],
...     "status": ["ok", "ok", "ok", "diverged"],
...     "retain_loss": [1.0, 2.0, 2.5, 9.0],
...     "forget_loss": [3.0, 5.0, 4.0, 1.0],
... })
>>> t = frontier_table(trials, [("retain_loss", "min"), ("forget_loss", "max")])
>>> t.rows[["trial_id", "dominated", "rank", "dominated_by"]].values.tolist()
[['a', False, 0, ''], ['b', False, 0, ''], ['c', True, 1, 'b']]
>>> t.excluded[["trial_id", "reason"]].values.tolist()
[['d', 'status=diverged']]
"""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.dominance import _signs, dominators, front_dominators, front_ranks

__all__ = ["FrontierTable", "frontier_table", "format_table", "FORMATS", "ALL_DOMINATORS_MAX_ROWS",
           "DOMINATORS_LIMIT"]

#: Up to this many rows in a group, ``dominated_by`` lists every dominator (O(k n²)); above it,
#: at most DOMINATORS_LIMIT of them, from the front.
ALL_DOMINATORS_MAX_ROWS = 2000
DOMINATORS_LIMIT = 3

# Columns frontier_table adds; an input that already has one is rejected rather than overwritten.
_ROW_COLUMNS = ("dominated", "rank", "dominated_by")
_REASON = "reason"


@dataclass(frozen=True, eq=False)  # eq=False: DataFrames have no truth value, so no __eq__/__hash__
class FrontierTable:
    """Result of :func:`frontier_table`.

    objectives: ((column, "min"|"max"), ...) in the order given.
    rows:       the trials placed on the frontier, input columns kept, plus ``dominated`` (bool),
                ``rank`` (int, 0 = non-dominated) and ``dominated_by`` (comma-separated ids of
                the trials that dominate this one, "" when none); non-dominated first, then by
                the first objective, best first.
    excluded:   the trials left out, input columns kept, plus ``reason`` (e.g. "status=failed",
                "nan in rouge_f"; several reasons are joined with "; ").
    id_col:     the column whose values appear in ``dominated_by``.
    by:         the grouping column when fronts were computed per group, else None.
    dominators_limit: None when ``dominated_by`` lists every dominator of every row; else the
                most it names per row (some group was large: see :func:`frontier_table`).
    """

    objectives: tuple[tuple[str, str], ...]
    rows: pd.DataFrame
    excluded: pd.DataFrame
    id_col: str = "trial_id"
    by: str | None = None
    dominators_limit: int | None = None

    @property
    def front(self) -> pd.DataFrame:
        """The non-dominated rows (rank 0)."""
        return self.rows[~self.rows["dominated"]]


# --------------------------------------------------------------------------------- validation
def _missing_column_error(what: str, names: Sequence[str], available: Sequence[str]) -> ValueError:
    hints = ""
    for name in names:
        close = difflib.get_close_matches(name, [str(c) for c in available], n=1, cutoff=0.6)
        if close:
            hints += f" Did you mean {close[0]!r} for {name!r}?"
    return ValueError(
        f"{what} {', '.join(map(repr, names))} not in the trials table.{hints} "
        f"Available columns: {', '.join(map(str, available))}"
    )


def _check_objectives(
    objectives: Sequence[tuple[str, str]], columns: Sequence[str]
) -> tuple[tuple[str, str], ...]:
    if isinstance(objectives, str) or not len(objectives):
        raise ValueError(
            "objectives must be a non-empty sequence of (column, direction) pairs such as "
            f"[('retain_loss', 'min'), ('forget_loss', 'max')], got {objectives!r}"
        )
    pairs: list[tuple[str, str]] = []
    for item in objectives:
        if isinstance(item, str) or len(item) != 2:
            raise ValueError(
                f"each objective must be a (column, direction) pair, got {item!r} in {objectives!r}"
            )
        pairs.append((item[0], item[1]))
    _signs([d for _, d in pairs])  # names every bad direction
    names = [c for c, _ in pairs]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise ValueError(f"objective column(s) {dupes!r} given more than once in {objectives!r}")
    missing = [c for c in names if c not in columns]
    if missing:
        raise _missing_column_error("objective column(s)", missing, list(columns))
    return tuple(pairs)


def _as_float(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64 with NaN for missing/unparseable, mask of non-missing non-numbers)."""
    numeric = pd.to_numeric(series, errors="coerce")
    values = numeric.to_numpy(dtype=float, na_value=np.nan)
    unparseable = (numeric.isna() & series.notna()).to_numpy()
    return values, unparseable


# ------------------------------------------------------------------------------- frontier_table
def frontier_table(
    trials: pd.DataFrame,
    objectives: Sequence[tuple[str, str]],
    id_col: str = "trial_id",
    status_col: str = "status",
    by: str | None = None,
    all_dominators: bool | None = None,
) -> FrontierTable:
    """Mark which trials are Pareto-dominated on ``objectives`` (ngdiff Definition 1, k objectives).

    objectives: [(column, "min" | "max"), ...], e.g. [("retain_loss", "min"),
                ("forget_loss", "max")]. A column that does not exist raises ValueError listing
                the available columns.
    id_col:     trial identifier used in ``dominated_by``; must be unique within each group.
    status_col: if this column exists, only trials whose status is "ok" are placed; others are
                excluded with reason "status=<value>". Trials with a NaN/inf/non-numeric
                objective value are excluded too ("nan in <column>"). Nothing is dropped
                silently: see ``FrontierTable.excluded``.
    by:         compute a separate front within each value of this column (e.g. "combiner":
                one front per method) instead of one over all rows.
    all_dominators: True: ``dominated_by`` lists every dominator of every row (O(k n²) time,
                up to n²/2 names). False: a dominated row names at most ``DOMINATORS_LIMIT`` (3)
                dominators, all on its group's front (rank 0; every dominated row has one), the
                ones that come first in the input order (deterministic; a subset of the full
                list). None (default): True for groups of at most ``ALL_DOMINATORS_MAX_ROWS``
                (2000) rows, False above. ``FrontierTable.dominators_limit`` says which happened.
    """
    if not isinstance(trials, pd.DataFrame):
        raise TypeError(f"trials must be a pandas DataFrame, got {type(trials).__name__}")
    columns = list(trials.columns)
    objs = _check_objectives(objectives, columns)
    for what, name in (("id_col", id_col), ("by", by)):
        if name is not None and name not in columns:
            raise _missing_column_error(what, [name], columns)
    clash = [c for c in (*_ROW_COLUMNS, _REASON) if c in columns]
    if clash:
        raise ValueError(
            f"trials already has column(s) {clash!r}, which frontier_table adds; rename them first"
        )

    # 1. Why each trial cannot be placed (empty list: it can).
    n = len(trials)
    reasons: list[list[str]] = [[] for _ in range(n)]
    if status_col in columns:
        for i, s in enumerate(trials[status_col].tolist()):
            if s is None or (not isinstance(s, str) and pd.isna(s)):
                reasons[i].append(f"{status_col} missing")
            elif s != "ok":
                reasons[i].append(f"{status_col}={s}")
    values = np.empty((n, len(objs)))
    for j, (col, _) in enumerate(objs):
        v, unparseable = _as_float(trials[col])
        values[:, j] = v
        for i in np.flatnonzero(unparseable):
            reasons[i].append(f"non-numeric {trials[col].iloc[i]!r} in {col}")
        for i in np.flatnonzero(~np.isfinite(v) & ~unparseable):
            reasons[i].append(f"{'nan' if np.isnan(v[i]) else ('inf' if v[i] > 0 else '-inf')} in {col}")
    keep = np.array([not r for r in reasons], dtype=bool)

    excluded = trials.iloc[np.flatnonzero(~keep)].reset_index(drop=True)
    excluded[_REASON] = pd.Series(["; ".join(r) for r in reasons if r], dtype=object)

    # 2. Dominance within each group of the placed trials (their rows are copied once, in step 3).
    placed_at = np.flatnonzero(keep)
    pts = values[keep]
    directions = [d for _, d in objs]
    m = len(placed_at)
    if by is None:
        groups = [np.arange(m)]
    else:
        codes, _ = pd.factorize(trials[by].iloc[placed_at].reset_index(drop=True), use_na_sentinel=False)
        groups = [np.flatnonzero(codes == c) for c in np.unique(codes)]
    ids = trials[id_col].iloc[placed_at].tolist()
    rank = np.zeros(m, dtype=np.int64)
    dominated_by = [""] * m
    limit = None
    for idx in groups:
        group_ids = [ids[i] for i in idx]
        dup = sorted({str(x) for x, c in Counter(group_ids).items() if c > 1})
        if dup:
            where = "" if by is None else f" within a {by!r} group"
            raise ValueError(
                f"{id_col!r} values must be unique{where}, but {dup[:10]!r} repeat; "
                "pass id_col= a unique column"
            )
        rank[idx] = front_ranks(pts[idx], directions)
        every = len(idx) <= ALL_DOMINATORS_MAX_ROWS if all_dominators is None else bool(all_dominators)
        if every:
            doms_of = dominators(pts[idx], directions)
        else:
            limit = DOMINATORS_LIMIT
            doms_of = front_dominators(pts[idx], directions, limit=DOMINATORS_LIMIT)
        for i, doms in zip(idx, doms_of):
            if doms:
                dominated_by[i] = ",".join(str(ids[idx[d]]) for d in doms)

    # 3. Non-dominated first, then the first objective best first; input order breaks ties.
    first = pts[:, 0] * (1.0 if objs[0][1] == "min" else -1.0)
    order = np.lexsort((first, rank > 0))
    rows = trials.iloc[placed_at[order]].reset_index(drop=True).assign(
        dominated=pd.Series(rank[order] > 0, dtype=bool),
        rank=pd.Series(rank[order], dtype=np.int64),
        dominated_by=pd.Series([dominated_by[i] for i in order], dtype=object),
    )
    return FrontierTable(objectives=objs, rows=rows, excluded=excluded, id_col=id_col, by=by,
                         dominators_limit=limit)


# ---------------------------------------------------------------------------------- rendering
def _cell(v: object) -> str:
    """A value for a human-readable table: floats to 4 significant digits."""
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _right_aligned(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _excluded_note(table: FrontierTable) -> str:
    notes = []
    if table.dominators_limit is not None:
        notes.append(f"dominated_by: at most {table.dominators_limit} dominators per row, from the front "
                     f"(groups of more than {ALL_DOMINATORS_MAX_ROWS} rows)")
    if not table.excluded.empty:
        counts = Counter(table.excluded[_REASON])
        parts = ", ".join(f"{reason} ({k})" for reason, k in counts.most_common())
        noun = "trial" if table.id_col == "trial_id" else str(table.id_col)
        notes.append(f"excluded {len(table.excluded)} {noun}(s): {parts}")
    return "\n".join(notes)


def _cells(s: pd.Series) -> list[str]:
    """_cell of every value, a float64 column without a test per value."""
    values = s.tolist()
    if s.dtype == np.float64:  # Python floats (NaN included): what _cell does to a float
        return [f"{v:.4g}" for v in values]
    return [_cell(v) for v in values]


def _fmt_table(df: pd.DataFrame, table: FrontierTable) -> str:
    cols = list(df.columns)
    cells = [_cells(df[c]) for c in cols]
    widths = [max([len(str(c))] + [len(x) for x in cells[j]]) for j, c in enumerate(cols)]
    right = [_right_aligned(df[c]) for c in cols]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)
        ).rstrip()

    out = [line([str(c) for c in cols]), line(["-" * w for w in widths])]
    padded = [[v.rjust(w) for v in col] if r else [v.ljust(w) for v in col]  # column by column, then the rows
              for col, w, r in zip(cells, widths, right)]
    out += ["  ".join(row).rstrip() for row in zip(*padded)]
    note = _excluded_note(table)
    return "\n".join(out + ([note] if note else [])) + "\n"


def _fmt_markdown(df: pd.DataFrame, table: FrontierTable) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    cols = list(df.columns)
    out = ["| " + " | ".join(esc(str(c)) for c in cols) + " |",
           "|" + "|".join("---:" if _right_aligned(df[c]) else "---" for c in cols) + "|"]
    for rec in df.itertuples(index=False, name=None):
        out.append("| " + " | ".join(esc(_cell(v)) for v in rec) + " |")
    note = _excluded_note(table)
    return "\n".join(out + (["", note] if note else [])) + "\n"


def _fmt_csv(df: pd.DataFrame, table: FrontierTable) -> str:
    return df.to_csv(index=False, lineterminator="\n")


def _json_value(v: object) -> object:
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
        return None  # JSON has no NaN; only non-objective columns can hold one here
    if isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (pd.Timestamp, pd.Timedelta)):
        return v.isoformat()
    return str(v)


def _fmt_json(df: pd.DataFrame, table: FrontierTable) -> str:
    cols = [str(c) for c in df.columns]
    records = [dict(zip(cols, map(_json_value, rec)))
               for rec in df.itertuples(index=False, name=None)]
    return json.dumps(records, allow_nan=False)


def _fmt_latex(df: pd.DataFrame, table: FrontierTable) -> str:
    def tex(s: str) -> str:
        s = "".join("\\" + ch if ch in "&%$#_{}" else ch for ch in s)
        return s.replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$").replace("~", r"\~{}")

    cols = list(df.columns)
    spec = "".join("r" if _right_aligned(df[c]) else "l" for c in cols)
    out = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(tex(str(c)) for c in cols) + r" \\",
           r"\midrule"]
    out += [" & ".join(tex(_cell(v)) for v in rec) + r" \\" for rec in df.itertuples(index=False, name=None)]
    out += [r"\bottomrule", r"\end{tabular}"]
    note = _excluded_note(table)
    return "\n".join(out + [f"% {line}" for line in note.splitlines()]) + "\n"


FORMATS: dict[str, Callable[[pd.DataFrame, FrontierTable], str]] = {
    "table": _fmt_table,
    "csv": _fmt_csv,
    "json": _fmt_json,
    "markdown": _fmt_markdown,
    "latex": _fmt_latex,
}


def format_table(
    table: FrontierTable, fmt: str = "table", columns: Sequence[str] | None = None
) -> str:
    """Render ``table.rows`` as "table" (aligned text), "csv", "json" (records), "markdown" or
    "latex" (a booktabs tabular).

    "table", "markdown" and "latex" are for reading: floats to 4 significant digits and a closing line
    that counts the excluded trials by reason. "csv" and "json" keep full precision and hold
    the rows only (the excluded trials are in ``table.excluded``). ``columns`` picks and orders
    the columns (default: all).
    """
    if fmt not in FORMATS:
        close = difflib.get_close_matches(str(fmt), list(FORMATS), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown fmt {fmt!r}.{hint} Valid: {', '.join(FORMATS)}")
    df = table.rows
    if columns is not None:
        columns = list(columns)
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise _missing_column_error("columns", missing, list(df.columns))
        df = df[columns]
    return FORMATS[fmt](df, table)
