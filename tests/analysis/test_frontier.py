"""analysis.frontier: exclusion with reasons, per-group fronts, sorting, rendering."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import FORMATS, FrontierTable, format_table, frontier_table

OBJ = [("retain_loss", "min"), ("forget_loss", "max")]


def bf_dominates(a, b, directions) -> bool:
    ge = all((x <= y) if d == "min" else (x >= y) for x, y, d in zip(a, b, directions))
    gt = any((x < y) if d == "min" else (x > y) for x, y, d in zip(a, b, directions))
    return ge and gt


@pytest.fixture
def trials() -> pd.DataFrame:
    return pd.DataFrame({
        "trial_id": [f"t{i}" for i in range(9)],
        "combiner": ["gd", "gd", "gd", "ngdiff", "ngdiff", "ngdiff", "gd", "gd", "ngdiff"],
        "status": ["ok", "ok", "ok", "ok", "ok", "diverged", "failed", "ok", "ok"],
        "retain_loss": [1.0, 2.0, 3.0, 1.5, 2.5, 0.1, 0.1, np.nan, 2.0],
        "forget_loss": [2.0, 4.0, 3.0, 5.0, 6.0, 99.0, 99.0, 9.0, np.inf],
        "lr": [1e-5, 2e-5, 3e-5, 1e-5, 2e-5, 3e-5, 1e-4, 1e-5, 5e-5],
    })


# ---------------------------------------------------------------------------------- exclusion
def test_excludes_non_ok_and_non_finite_with_reasons(trials):
    t = frontier_table(trials, OBJ)
    assert isinstance(t, FrontierTable)
    assert t.objectives == (("retain_loss", "min"), ("forget_loss", "max"))
    reasons = dict(zip(t.excluded["trial_id"], t.excluded["reason"]))
    assert reasons == {
        "t5": "status=diverged",
        "t6": "status=failed",
        "t7": "nan in retain_loss",
        "t8": "inf in forget_loss",
    }
    # never silently dropped: every trial is in exactly one of rows / excluded
    assert sorted([*t.rows["trial_id"], *t.excluded["trial_id"]]) == sorted(trials["trial_id"])
    assert set(t.rows["trial_id"]).isdisjoint(t.excluded["trial_id"])
    # input columns kept on both sides
    assert list(t.rows.columns) == [*trials.columns, "dominated", "rank", "dominated_by"]
    assert list(t.excluded.columns) == [*trials.columns, "reason"]


def test_several_reasons_are_joined_and_missing_status_reported():
    df = pd.DataFrame({"trial_id": [1, 2, 3], "status": ["failed", None, "ok"],
                       "a": [np.nan, 1.0, -np.inf], "b": [np.nan, 1.0, 1.0]})
    t = frontier_table(df, [("a", "min"), ("b", "min")])
    assert t.rows.empty
    assert t.excluded["reason"].tolist() == [
        "status=failed; nan in a; nan in b", "status missing", "-inf in a"]


def test_non_numeric_objective_value_is_excluded_not_coerced_silently():
    df = pd.DataFrame({"trial_id": [1, 2], "a": ["0.5", "oops"], "b": [1.0, 2.0]})
    t = frontier_table(df, [("a", "min"), ("b", "min")])
    assert t.rows["trial_id"].tolist() == [1]
    assert t.excluded["reason"].tolist() == ["non-numeric 'oops' in a"]


def test_nullable_dtypes_are_handled():
    df = pd.DataFrame({"trial_id": [1, 2, 3],
                       "a": pd.array([1.0, None, 0.5], dtype="Float64"),
                       "b": pd.array([1, 2, None], dtype="Int64")})
    t = frontier_table(df, [("a", "min"), ("b", "max")])
    assert t.rows["trial_id"].tolist() == [1]
    assert t.excluded["reason"].tolist() == ["nan in a", "nan in b"]


def test_without_status_column_only_values_decide():
    df = pd.DataFrame({"trial_id": [1, 2], "a": [0.0, 1.0], "b": [0.0, 1.0]})
    t = frontier_table(df, [("a", "min"), ("b", "min")])
    assert t.excluded.empty and list(t.excluded.columns) == ["trial_id", "a", "b", "reason"]
    assert t.rows["dominated"].tolist() == [False, True]
    assert t.rows["dominated_by"].tolist() == ["", "1"]


def test_empty_and_all_excluded_inputs():
    empty = pd.DataFrame({"trial_id": [], "status": [], "a": [], "b": []})
    t = frontier_table(empty, [("a", "min"), ("b", "max")])
    assert t.rows.empty and t.excluded.empty
    assert {"dominated", "rank", "dominated_by"} <= set(t.rows.columns)
    for fmt in FORMATS:
        assert isinstance(format_table(t, fmt), str)


# ------------------------------------------------------------------------ dominance and order
def test_dominance_rank_and_dominated_by(trials):
    t = frontier_table(trials, OBJ)
    r = t.rows.set_index("trial_id")
    # placed: t0 (1,2) t1 (2,4) t2 (3,3) t3 (1.5,5) t4 (2.5,6)
    assert r["dominated"].to_dict() == {"t0": False, "t3": False, "t4": False,
                                        "t1": True, "t2": True}
    assert r.loc["t1", "dominated_by"] == "t3"
    assert r.loc["t2", "dominated_by"] == "t1,t3,t4"
    assert r.loc["t2", "rank"] == 2 and r.loc["t1", "rank"] == 1
    assert t.rows["dominated"].dtype == bool
    assert t.rows["rank"].dtype == np.int64
    assert t.front["trial_id"].tolist() == ["t0", "t3", "t4"]


def test_sorted_non_dominated_first_then_first_objective_best_first(trials):
    t = frontier_table(trials, OBJ)
    assert t.rows["trial_id"].tolist() == ["t0", "t3", "t4", "t1", "t2"]
    t = frontier_table(trials, [("forget_loss", "max"), ("retain_loss", "min")])
    assert t.rows["trial_id"].tolist() == ["t4", "t3", "t0", "t1", "t2"]


def test_by_gives_per_group_fronts(trials):
    t = frontier_table(trials, OBJ, by="combiner")
    assert t.by == "combiner"
    r = t.rows.set_index("trial_id")
    # within gd: t0 (1,2), t1 (2,4), t2 (3,3): only t2 is dominated (by t1)
    # within ngdiff: t3 (1.5,5), t4 (2.5,6): both on the front
    assert r["dominated"].to_dict() == {"t0": False, "t1": False, "t2": True,
                                        "t3": False, "t4": False}
    assert r.loc["t2", "dominated_by"] == "t1"  # not t3/t4: other group
    # same as computing each group on its own
    for name, group in trials.groupby("combiner"):
        alone = frontier_table(group, OBJ).rows.set_index("trial_id")
        cols = ["dominated", "rank", "dominated_by"]
        pd.testing.assert_frame_equal(r.loc[alone.index, cols], alone[cols])


def test_by_group_with_missing_key_is_its_own_group():
    df = pd.DataFrame({"trial_id": [1, 2, 3], "g": ["x", None, "x"],
                       "a": [1.0, 0.0, 2.0], "b": [1.0, 0.0, 2.0]})
    r = frontier_table(df, [("a", "min"), ("b", "min")], by="g").rows.set_index("trial_id")
    assert r["dominated"].to_dict() == {1: False, 2: False, 3: True}
    assert r.loc[3, "dominated_by"] == "1"


@st.composite
def trial_tables(draw):
    n = draw(st.integers(0, 25))
    val = st.one_of(st.integers(0, 3).map(float), st.sampled_from([np.nan, np.inf, -np.inf]),
                    st.floats(-10, 10))
    cols = {c: draw(st.lists(val, min_size=n, max_size=n)) for c in ("a", "b", "c")}
    status = draw(st.lists(st.sampled_from(["ok", "ok", "ok", "failed", "diverged"]),
                           min_size=n, max_size=n))
    group = draw(st.lists(st.sampled_from(["g1", "g2"]), min_size=n, max_size=n))
    k = draw(st.integers(1, 3))
    objs = [(c, draw(st.sampled_from(["min", "max"]))) for c in ("a", "b", "c")[:k]]
    by = draw(st.sampled_from([None, "group"]))
    df = pd.DataFrame({"trial_id": range(100, 100 + n), "status": status, "group": group, **cols})
    return df, objs, by


@settings(max_examples=100, deadline=None)
@given(trial_tables())
def test_frontier_table_invariants(case):
    df, objs, by = case
    t = frontier_table(df, objs, by=by)
    cols = [c for c, _ in objs]
    dirs = [d for _, d in objs]
    finite = np.isfinite(df[cols].to_numpy(float)).all(axis=1)
    placed = (df["status"] == "ok").to_numpy() & finite
    assert sorted(t.rows["trial_id"]) == sorted(df.loc[placed, "trial_id"])
    assert sorted(t.excluded["trial_id"]) == sorted(df.loc[~placed, "trial_id"])
    assert (t.excluded["reason"].str.len() > 0).all()
    rows = t.rows.to_dict("records")
    for r in rows:
        same = [q for q in rows if by is None or q[by] == r[by]]
        expected = sorted(q["trial_id"] for q in same
                          if bf_dominates([q[c] for c in cols], [r[c] for c in cols], dirs))
        got = sorted(int(x) for x in r["dominated_by"].split(",") if x)
        assert got == expected
        assert r["dominated"] == bool(expected) == (r["rank"] > 0)
    # order: non-dominated first, then first objective best first
    key = t.rows[cols[0]].to_numpy() * (1 if dirs[0] == "min" else -1)
    for dominated in (False, True):
        part = key[t.rows["dominated"].to_numpy() == dominated]
        assert (np.diff(part) >= 0).all()
    assert not (np.diff(t.rows["dominated"].to_numpy().astype(int)) < 0).any()


# ------------------------------------------------------------------------------------- errors
def test_missing_objective_column_lists_available_columns(trials):
    with pytest.raises(ValueError) as exc:
        frontier_table(trials, [("retain_los", "min"), ("rouge_f", "max")])
    msg = str(exc.value)
    assert "'retain_los'" in msg and "'rouge_f'" in msg
    assert "Did you mean 'retain_loss'" in msg
    assert "Available columns: trial_id, combiner, status, retain_loss, forget_loss, lr" in msg


def test_other_argument_errors(trials):
    with pytest.raises(ValueError, match="'maximize'"):
        frontier_table(trials, [("retain_loss", "min"), ("forget_loss", "maximize")])
    with pytest.raises(ValueError, match="non-empty"):
        frontier_table(trials, [])
    with pytest.raises(ValueError, match="pair"):
        frontier_table(trials, ["retain_loss"])
    with pytest.raises(ValueError, match="more than once"):
        frontier_table(trials, [("lr", "min"), ("lr", "max")])
    with pytest.raises(ValueError, match="id_col 'run'.*Available columns"):
        frontier_table(trials, OBJ, id_col="run")
    with pytest.raises(ValueError, match="by 'method'.*Available columns"):
        frontier_table(trials, OBJ, by="method")
    with pytest.raises(ValueError, match="already has column"):
        frontier_table(trials.assign(rank=1), OBJ)
    with pytest.raises(TypeError, match="DataFrame"):
        frontier_table(trials.to_dict(), OBJ)


def test_duplicate_ids_rejected_within_a_group_only(trials):
    dup = trials.assign(trial_id=["a", "b", "c", "a", "b", "x", "y", "z", "w"])
    with pytest.raises(ValueError, match="unique"):
        frontier_table(dup, OBJ)
    t = frontier_table(dup, OBJ, by="combiner")  # ids repeat only across groups: fine
    assert len(t.rows) == 5


# ---------------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_renders(trials, fmt):
    t = frontier_table(trials, OBJ)
    out = format_table(t, fmt)
    assert isinstance(out, str) and "t0" in out and "retain_loss" in out


def test_table_format_is_aligned_with_header_and_4_significant_digits():
    df = pd.DataFrame({"trial_id": ["x", "long_id"], "a": [0.123456789, 12345.678],
                       "b": [1.0, 0.5]})
    out = format_table(frontier_table(df, [("a", "min"), ("b", "max")]), "table")
    lines = out.splitlines()
    assert lines[0].split() == ["trial_id", "a", "b", "dominated", "rank", "dominated_by"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "0.1235" in out and "1.235e+04" in out and "0.123456789" not in out
    # numeric columns right-aligned: values end where the header name ends
    end_a = lines[0].index(" a ") + 2
    assert all(line[:end_a].endswith(v) for line, v in zip(lines[2:4], ["0.1235", "1.235e+04"]))


def test_table_and_markdown_note_the_excluded_trials(trials):
    t = frontier_table(trials, OBJ)
    for fmt in ("table", "markdown"):
        note = format_table(t, fmt).strip().splitlines()[-1]
        assert note.startswith("excluded 4 trial(s):")
        assert "status=diverged (1)" in note and "nan in retain_loss (1)" in note


def test_csv_parses_back(trials):
    t = frontier_table(trials, OBJ)
    back = pd.read_csv(io.StringIO(format_table(t, "csv")), keep_default_na=False)
    assert list(back.columns) == list(t.rows.columns)
    assert back["trial_id"].tolist() == t.rows["trial_id"].tolist()
    np.testing.assert_array_equal(back["retain_loss"], t.rows["retain_loss"])  # full precision
    assert back["dominated"].tolist() == t.rows["dominated"].tolist()
    assert back["rank"].tolist() == t.rows["rank"].tolist()
    assert back["dominated_by"].astype(str).tolist() == t.rows["dominated_by"].tolist()


def test_json_records(trials):
    t = frontier_table(trials, OBJ)
    recs = json.loads(format_table(t, "json"))
    assert len(recs) == len(t.rows)
    assert recs[0] == {"trial_id": "t0", "combiner": "gd", "status": "ok", "retain_loss": 1.0,
                       "forget_loss": 2.0, "lr": 1e-5, "dominated": False, "rank": 0,
                       "dominated_by": ""}


def test_markdown(trials):
    lines = format_table(frontier_table(trials, OBJ), "markdown", columns=["trial_id", "rank"])
    lines = lines.splitlines()
    assert lines[0] == "| trial_id | rank |"
    assert lines[1] == "|---|---:|"
    assert lines[2] == "| t0 | 0 |"


def test_columns_argument_and_format_errors(trials):
    t = frontier_table(trials, OBJ)
    out = format_table(t, "csv", columns=["dominated", "trial_id"])
    assert out.splitlines()[0] == "dominated,trial_id"
    with pytest.raises(ValueError, match="Available columns"):
        format_table(t, "csv", columns=["nope"])
    with pytest.raises(ValueError, match="Valid: table, csv, json, markdown") as exc:
        format_table(t, "md")
    with pytest.raises(ValueError, match="Did you mean 'json'"):
        format_table(t, "jsno")
    assert "'md'" in str(exc.value)


@settings(max_examples=100, deadline=None)
@given(trial_tables())
def test_frontier_table_ranks_match_brute_force_with_nan_and_groups(case):
    """Ranks of the placed trials = brute-force peeling within each group; NaN/inf/failed out."""
    df, objs, by = case
    t = frontier_table(df, objs, by=by)
    cols = [c for c, _ in objs]
    dirs = [d for _, d in objs]
    rows = t.rows.to_dict("records")
    for key in {None if by is None else r[by] for r in rows}:
        group = [r for r in rows if by is None or r[by] == key]
        left, r = list(range(len(group))), 0
        while left:
            front = [i for i in left if not any(
                bf_dominates([group[j][c] for c in cols], [group[i][c] for c in cols], dirs) for j in left)]
            for i in front:
                assert group[i]["rank"] == r
            left = [i for i in left if i not in front]
            r += 1


def test_latex_format():
    df = pd.DataFrame({"trial_id": ["a_1", "b"], "status": ["ok", "failed"], "x": [1.0, 2.0], "y": [1.0, 0.5]})
    out = format_table(frontier_table(df, [("x", "min"), ("y", "max")]), "latex")
    lines = out.splitlines()
    assert lines[0] == r"\begin{tabular}{llrrlrl}" and lines[-2] == r"\end{tabular}"
    assert r"a\_1 & ok & 1 & 1 & False & 0 &  \\" in lines
    assert lines[-1] == "% excluded 1 trial(s): status=failed (1)"


# --------------------------------------------------------------------------- fronts at scale
@settings(max_examples=100, deadline=None)
@given(trial_tables())
def test_capped_dominated_by_names_the_first_front_dominators(case):
    """all_dominators=False: each dominated row names at most 3 dominators, those of its group's
    front that come first in the input, a subset of the full list; ranks and mask unchanged."""
    df, objs, by = case
    full = frontier_table(df, objs, by=by, all_dominators=True)
    capped = frontier_table(df, objs, by=by, all_dominators=False)
    assert full.dominators_limit is None
    assert capped.dominators_limit in (3, None)  # None: no group to cap
    cols = ["trial_id", "dominated", "rank"]
    pd.testing.assert_frame_equal(full.rows[cols], capped.rows[cols])
    f = full.rows.set_index("trial_id")
    order = {tid: i for i, tid in enumerate(df["trial_id"])}  # input order
    for r in capped.rows.to_dict("records"):
        every = [int(x) for x in f.loc[r["trial_id"], "dominated_by"].split(",") if x]
        on_front = sorted((t for t in every if not f.loc[t, "dominated"]), key=order.get)
        assert [int(x) for x in r["dominated_by"].split(",") if x] == on_front[:3]
        assert bool(r["dominated_by"]) == r["dominated"]


def test_large_groups_are_capped_by_default_and_noted():
    import analysis.frontier as fr

    rng = np.random.default_rng(0)
    n = fr.ALL_DOMINATORS_MAX_ROWS + 6  # group "x": one row over the limit
    df = pd.DataFrame({"trial_id": range(n), "a": rng.random(n), "b": rng.random(n), "g": ["x"] * (n - 5) + ["y"] * 5})
    t = frontier_table(df, [("a", "min"), ("b", "min")])
    assert t.dominators_limit == 3
    assert t.rows["dominated_by"].map(lambda s: len(s.split(",")) if s else 0).max() <= 3
    assert "at most 3 dominators per row, from the front" in format_table(t, "table")
    assert format_table(t, "latex").splitlines()[-1].startswith("% dominated_by: at most 3")
    small = frontier_table(df.head(fr.ALL_DOMINATORS_MAX_ROWS), [("a", "min"), ("b", "min")])
    assert small.dominators_limit is None and "at most" not in format_table(small, "table")
    assert frontier_table(df, [("a", "min"), ("b", "min")], by="g").dominators_limit == 3


def test_frontier_table_of_1e5_rows_names_front_dominators():
    """10⁵ rows, 3 objectives: the ranks, the front and 3 front dominators per row; the
    all-pairs dominators would be 10¹⁰ comparisons. (Timed, not asserted: benchmarks/front_scale.py.)"""
    rng = np.random.default_rng(1)
    n = 100_000
    df = pd.DataFrame({"trial_id": np.arange(n), "a": rng.random(n), "b": rng.random(n), "c": rng.random(n)})
    t = frontier_table(df, [("a", "min"), ("b", "max"), ("c", "min")])
    assert t.dominators_limit == 3
    front = set(t.front["trial_id"])
    sample = t.rows[t.rows["dominated"]].sample(200, random_state=0)
    pts = df.set_index("trial_id")
    for tid, doms in zip(sample["trial_id"], sample["dominated_by"]):
        names = [int(x) for x in doms.split(",")]
        assert 1 <= len(names) <= 3 and set(names) <= front
        p = pts.loc[tid]
        for d in names:
            q = pts.loc[d]
            assert bf_dominates([q.a, q.b, q.c], [p.a, p.b, p.c], ["min", "max", "min"])
