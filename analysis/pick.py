"""Selection rules: one (trial, step) per group of a sweep, and the metrics there (`pareto pick`).

Candidates are the evaluations of evals.parquet — one row per (trial, step) of the trials whose
status is "ok" — with the trial's identity (method, seed, label, …) joined on; results without
evals.parquet fall back to the trials' final metrics. Every rule takes that table and returns one
row per group (``by``: a column such as "method"; None: the whole table is one group):

knee                the knee of the group's front: each objective oriented to "minimise" and
                    scaled to [0, 1] over the front (0 = the front's best); the knee is the front
                    point farthest, towards the ideal point, from the hyperplane Σx = 1 — for two
                    objectives the line through the two extreme front points. ``knee_distance`` =
                    (1 − Σx)/√k (NaN for a one-point front, whose knee is that point). Ties: the
                    first objective's best, then trial_id, eval_step.
first-below-retain  MUSE's protocol: per trial the first evaluation (lowest step) whose metric
                    (knowmem_f) is at or below the retrained model's value; across the group's
                    trials the lowest step, ties to the higher utility, then the lower metric,
                    then trial_id. A group none of whose trials gets there: ``reached`` False and
                    its evaluation closest to the reference.
fq-mu               argmax of ½(forget_quality + model_utility) (open-unlearning #187); ties to
                    the lower step, then trial_id.
at-forget=X         per trial, the utility where its path of evaluations (in step order) crosses
                    forget level X, linearly interpolated between the two evaluations around the
                    crossing (the best crossing when it crosses more than once); per seed the best
                    over the group's trials; across seeds the mean and its 95 % t interval.

>>> c = pd.DataFrame({"trial_id": ["a", "a", "b"], "eval_step": [1, 2, 2],
...                   "f": [0.5, 0.1, 0.2], "u": [0.9, 0.5, 0.7], "method": ["m", "m", "m"], "seed": 0})
>>> r = at_forget(c, 0.3, "f", "u", {"f": "min", "u": "max"}, by="method")
>>> round(float(r["utility_mean"].iloc[0]), 6), bool(r["reached"].iloc[0])
(0.7, True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.dominance import non_dominated_mask
from analysis.results import LOSS_PLANE

__all__ = ["RULES", "parse_rule", "candidates", "default_plane", "knee", "first_below", "fq_mu", "seed_bests",
           "at_forget", "common_level", "pick"]

RULES = ("knee", "first-below-retain", "fq-mu", "at-forget=X")
_KEY = ["trial_id", "eval_step"]
_IDENTITY = ("method", "seed", "label", "combiner", "lr_rule", "lr")


def parse_rule(text: str) -> tuple[str, float | None]:
    """"knee" → ("knee", None); "at-forget=0.03" → ("at-forget", 0.03). ValueError names the forms."""
    text = str(text).strip()
    if text in ("knee", "first-below-retain", "fq-mu"):
        return text, None
    m = re.fullmatch(r"at-forget=(.+)", text)
    if m:
        try:
            x = float(m.group(1))
        except ValueError:
            x = math.nan
        if math.isfinite(x):
            return "at-forget", x
        raise ValueError(f"rule {text!r}: at-forget needs a number, e.g. at-forget=0.03")
    raise ValueError(f"unknown rule {text!r}; rules: {', '.join(RULES)} (e.g. --rule at-forget=0.03)")


# ---------------------------------------------------------------------------------- candidates
def candidates(trials: pd.DataFrame, evals: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every evaluation (trial_id, eval_step) of the status-ok trials, with the trials' identity
    columns (method, seed, label, combiner, lr_rule, lr) joined on; sorted by trial and step.
    Without evals (or none for these trials) the trials' own final metrics, at eval_step = steps."""
    ok = trials if "status" not in trials else trials[trials["status"] == "ok"]
    ident = ["trial_id"] + [c for c in _IDENTITY if c in ok]
    if evals is not None and len(evals) and "eval_step" in evals:
        ev = evals[evals["trial_id"].isin(set(ok["trial_id"]))]
        if len(ev):
            out = ev.merge(ok[ident], on="trial_id", how="left")
            return out.sort_values(_KEY, kind="stable").reset_index(drop=True)
    out = ok.copy()
    out["eval_step"] = out["steps"] if "steps" in out else 0
    return out.sort_values(_KEY, kind="stable").reset_index(drop=True)


def _has(table: pd.DataFrame, name: str) -> bool:
    return name in table and pd.to_numeric(table[name], errors="coerce").notna().any()


def default_plane(planes: Sequence[Sequence[str]], table: pd.DataFrame) -> tuple[str, ...]:
    """The first non-loss plane every metric of which has a value in ``table``, else the loss plane
    when it has values; ValueError naming the planes otherwise."""
    planes = [tuple(p) for p in planes]
    ordered = [p for p in planes if p != LOSS_PLANE] + [p for p in planes if p == LOSS_PLANE]
    for plane in ordered:
        if all(_has(table, n.split(":")[0]) for n in plane):
            return plane
    raise ValueError("no default plane has values in these results ("
                     + "; ".join(" vs ".join(p) for p in planes) + ")")


def _groups(table: pd.DataFrame, by: str | None):
    if by is None:
        yield None, table
        return
    for key, g in table.groupby(by, sort=True, dropna=False):
        yield key, g


def _require(table: pd.DataFrame, names: Sequence[str], what: str) -> None:
    missing = [n for n in names if not _has(table, n)]
    if missing:
        raise KeyError(f"{what} needs {', '.join(missing)}, which these results do not hold")


def _minimised(table: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> np.ndarray:
    """[n, k] values with every objective turned into one to minimise ("zero": |v|)."""
    cols = []
    for name, d in objectives:
        v = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
        cols.append(-v if d == "max" else np.abs(v) if d == "zero" else v)
    return np.column_stack(cols) if cols else np.empty((len(table), 0))


def _row(g: pd.DataFrame, i, by: str | None, key, **extra) -> dict:
    rec = g.loc[i].to_dict()
    if by is not None:
        rec[by] = key
    rec.update(extra)
    return rec


def _frame(rows: list[dict], by: str | None, first: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    lead = ([by] if by else []) + [c for c in ("trial_id", "eval_step", *first) if c in out]
    return out[lead + [c for c in out.columns if c not in lead]]


# ---------------------------------------------------------------------------------------- knee
def knee(table: pd.DataFrame, objectives: Sequence[tuple[str, str]], by: str | None = None) -> pd.DataFrame:
    """The knee of each group's front (module docstring); objectives: [(metric, min|max|zero)]."""
    _require(table, [n for n, _ in objectives], "the knee rule")
    rows = []
    for key, g in _groups(table, by):
        pts = _minimised(g, objectives)
        finite = np.isfinite(pts).all(axis=1)
        if not finite.any():
            continue
        g, pts = g[finite], pts[finite]
        front = non_dominated_mask(pts, ["min"] * pts.shape[1])
        f, fg = pts[front], g[front]
        lo, span = f.min(axis=0), f.max(axis=0) - f.min(axis=0)
        norm = np.divide(f - lo, span, out=np.zeros_like(f), where=span > 0)
        dist = (1.0 - norm.sum(axis=1)) / math.sqrt(f.shape[1])
        order = np.lexsort((fg["eval_step"].to_numpy(), fg["trial_id"].astype(str).to_numpy(), f[:, 0], -dist))
        best = order[0]
        d = float(dist[best]) if len(f) > 1 else math.nan  # one point: no line through two extremes
        rows.append(_row(fg, fg.index[best], by, key, knee_distance=d, front_size=int(len(f))))
    return _frame(rows, by, ("knee_distance", "front_size"))


# -------------------------------------------------------------------------- first-below-retain
def first_below(table: pd.DataFrame, metric: str, reference: float, utility: str | None = None,
                directions: dict[str, str] | None = None, by: str | None = None) -> pd.DataFrame:
    """MUSE's selection (module docstring): the first evaluation with ``metric`` ≤ ``reference``."""
    _require(table, [metric], "first-below-retain")
    directions = directions or {}
    rows = []
    for key, g in _groups(table, by):
        v = pd.to_numeric(g[metric], errors="coerce")
        g = g[v.notna()].assign(_v=v[v.notna()])
        if g.empty:
            continue
        below = g[g["_v"] <= reference]
        if below.empty:  # never at or below: the closest evaluation, marked
            i = (g["_v"] - reference).abs().sort_values(kind="stable").index[0]
            rows.append(_row(g.drop(columns="_v"), i, by, key, reference=reference, reached=False))
            continue
        firsts = below.sort_values("eval_step", kind="stable").groupby("trial_id", sort=False).head(1)
        u = pd.Series(0.0, index=firsts.index)
        if utility is not None and utility in firsts:
            uu = pd.to_numeric(firsts[utility], errors="coerce")
            u = -uu if directions.get(utility, "max") == "max" else uu.abs() if directions.get(utility) == "zero" else uu
            u = u.fillna(np.inf)
        ranked = firsts.assign(_u=u).sort_values(["eval_step", "_u", "_v", "trial_id"], kind="stable")
        rows.append(_row(ranked.drop(columns=["_v", "_u"]), ranked.index[0], by, key,
                         reference=reference, reached=True))
    return _frame(rows, by, ("reached", "reference"))


# ---------------------------------------------------------------------------------------- fq-mu
def fq_mu(table: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """argmax of ½(forget_quality + model_utility) per group (module docstring)."""
    _require(table, ["forget_quality", "model_utility"], "fq-mu")
    score = (pd.to_numeric(table["forget_quality"], errors="coerce")
             + pd.to_numeric(table["model_utility"], errors="coerce")) / 2
    scored = table.assign(fq_mu=score)[score.notna()]
    rows = []
    for key, g in _groups(scored, by):
        ranked = g.assign(_s=-g["fq_mu"]).sort_values(["_s", "eval_step", "trial_id"], kind="stable")
        rows.append(_row(ranked.drop(columns="_s"), ranked.index[0], by, key))
    return _frame(rows, by, ("fq_mu",))


# ------------------------------------------------------------------------------------ at-forget
def crossings(path: pd.DataFrame, x: float, forget: str, utility: str) -> list[tuple[float, float]]:
    """[(step, utility)] where the path of evaluations (sorted by step) meets forget level x: an
    evaluation at exactly x, or the linear interpolation between two evaluations on either side.
    One path at a time: the definition, which `at_forget`'s vectorised `_all_crossings` is tested
    against."""
    p = path.sort_values("eval_step", kind="stable")
    s = p["eval_step"].to_numpy(dtype=float)
    f = pd.to_numeric(p[forget], errors="coerce").to_numpy(dtype=float)
    u = pd.to_numeric(p[utility], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(f) & np.isfinite(u)
    s, f, u = s[ok], f[ok], u[ok]
    out = [(s[i], u[i]) for i in range(len(f)) if f[i] == x]
    for i in range(len(f) - 1):
        a, b = f[i] - x, f[i + 1] - x
        if a * b < 0:  # strictly on either side: interpolate
            t = a / (a - b)
            out.append((s[i] + t * (s[i + 1] - s[i]), u[i] + t * (u[i + 1] - u[i])))
    return out


def _all_crossings(g: pd.DataFrame, x: float, forget: str, utility: str, seed_col: str | None,
                   start: pd.DataFrame | None) -> pd.DataFrame:
    """`crossings` of every trial path of ``g`` at once (vectorised: 10⁴ paths in milliseconds):
    columns seed (the trial's own), trial_id, step, u; trials by id, each path's exact hits first,
    then its crossings in step order. ``start``: its first row prepended to every path at step 0."""
    seeds = (g.dropna(subset=[seed_col]).drop_duplicates("trial_id").set_index("trial_id")[seed_col]
             if seed_col else pd.Series(dtype=float))
    p = g[["trial_id", "eval_step", forget, utility]]
    if start is not None and len(start):
        s0 = start.iloc[0]
        first = pd.DataFrame({"trial_id": g["trial_id"].unique(), "eval_step": 0,
                              forget: s0[forget], utility: s0[utility]})
        p = pd.concat([first, p[p["eval_step"] > 0]], ignore_index=True)
    p = p.assign(**{forget: pd.to_numeric(p[forget], errors="coerce"),
                    utility: pd.to_numeric(p[utility], errors="coerce")})
    p = p[np.isfinite(p[forget]) & np.isfinite(p[utility])].sort_values(["trial_id", "eval_step"], kind="stable")
    t = p["trial_id"].to_numpy()
    s, f, u = (p[c].to_numpy(dtype=float) for c in ("eval_step", forget, utility))
    hit = f == x
    a, b = f[:-1] - x, f[1:] - x
    cross = (t[1:] == t[:-1]) & (a * b < 0)  # strictly on either side, within one path: interpolate
    w = a[cross] / (a[cross] - b[cross])
    out = pd.DataFrame({
        "trial_id": np.concatenate([t[hit], t[:-1][cross]]),
        "step": np.concatenate([s[hit], s[:-1][cross] + w * (s[1:][cross] - s[:-1][cross])]),
        "u": np.concatenate([u[hit], u[:-1][cross] + w * (u[1:][cross] - u[:-1][cross])]),
        "_first": np.concatenate([np.zeros(hit.sum()), np.ones(cross.sum())]),
        "_at": np.concatenate([np.flatnonzero(hit), np.flatnonzero(cross)])})
    out = out.sort_values(["trial_id", "_first", "_at"], kind="stable").drop(columns=["_first", "_at"])
    out.insert(0, "seed", out["trial_id"].map(seeds).fillna(0) if seed_col else 0)
    return out.reset_index(drop=True)


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and its 95 % Student-t interval (NaN bounds for one value)."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def seed_bests(table: pd.DataFrame, x: float, forget: str, utility: str, directions: dict[str, str],
               start: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per seed, the best crossing of forget level ``x`` over the paths of ``table`` (one group):
    columns seed, trial_id, step, u, one row per seed whose paths meet x, best first (ties: trial,
    then step). What `at_forget` averages; a paired comparison of two groups joins theirs on seed."""
    sign = {"max": 1.0, "min": -1.0}.get(directions.get(utility, "max"), 1.0)
    c = _all_crossings(table, x, forget, utility, "seed" if "seed" in table else None, start)
    if c.empty:
        return c
    c = c.assign(_k=-sign * c["u"]).sort_values(["_k", "trial_id", "step"], kind="stable")
    return c.groupby("seed", sort=True).head(1).drop(columns="_k").reset_index(drop=True)


def at_forget(table: pd.DataFrame, x: float, forget: str, utility: str, directions: dict[str, str],
              by: str | None = "method", start: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each group's utility at forget level ``x`` (module docstring), one row per group: the mean
    over seeds of the per-seed best, its 95 % t interval (ci_low, ci_high; NaN with one seed),
    n_seeds and seeds_reached, and the trial and (interpolated, fractional) step of the best
    crossing. A group whose paths never meet x: reached False, and ``closest`` is its evaluated
    forget value nearest x (with that evaluation's trial, step and utility).

    ``start``: one evaluation prepended to every trial's path at step 0 (the target model, e.g.
    the no-unlearn baseline's evaluation: every trial starts from it)."""
    _require(table, [forget, utility], "at-forget")
    seed_col = "seed" if "seed" in table else None
    rows = []
    for key, g in _groups(table, by):
        best = seed_bests(g, x, forget, utility, directions, start)
        seeds = sorted(g[seed_col].dropna().unique().tolist()) if seed_col and g[seed_col].notna().any() else [0]
        base = {by: key} if by is not None else {}
        if best.empty:
            f = pd.to_numeric(g[forget], errors="coerce")
            i = (f - x).abs().dropna().sort_values(kind="stable").index[0]
            rows.append({**base, "trial_id": g.at[i, "trial_id"], "eval_step": g.at[i, "eval_step"],
                         "forget_metric": forget, "x": x, "reached": False, "utility_metric": utility,
                         "utility_mean": math.nan,
                         "ci_low": math.nan, "ci_high": math.nan, "n_seeds": len(seeds), "seeds_reached": 0,
                         "closest": float(f[i]), "utility_at_closest": float(pd.to_numeric(g[utility],
                                                                                          errors="coerce")[i])})
            continue
        mean, lo, hi = _t_interval(best["u"].to_numpy(dtype=float))
        top = best.iloc[0]
        rows.append({**base, "trial_id": top["trial_id"], "eval_step": float(top["step"]),
                     "forget_metric": forget, "x": x, "reached": True, "utility_metric": utility,
                     "utility_mean": mean, "ci_low": lo,
                     "ci_high": hi, "n_seeds": len(seeds), "seeds_reached": int(best["seed"].nunique()),
                     "closest": x, "utility_at_closest": float(top["u"])})
    return pd.DataFrame(rows)


def common_level(table: pd.DataFrame, forget: str, direction: str, by: str = "method",
                 start: float | None = None) -> float | None:
    """The deepest forget level every group reaches, for ``at-forget`` without a level (the report):
    each group's best value of ``forget`` over its evaluations (the lowest for a metric to minimise,
    the highest for one to maximise), then the worst of those bests. A group that never improves on
    the ``start`` value (the target's) is left out: it reaches no forgetting level. None when no
    group has a value or the direction is neither min nor max.

    >>> t = pd.DataFrame({"method": ["a", "a", "b", "b", "c"], "f": [0.5, 0.1, 0.4, 0.3, 0.9]})
    >>> common_level(t, "f", "min", start=0.8)
    0.3
    """
    if direction not in ("min", "max") or forget not in table:
        return None
    v = pd.to_numeric(table[forget], errors="coerce")
    best = (v.groupby(table[by]).min() if direction == "min" else v.groupby(table[by]).max()).dropna()
    if start is not None and math.isfinite(start):
        best = best[best < start] if direction == "min" else best[best > start]
    if best.empty:
        return None
    return float(best.max() if direction == "min" else best.min())


# ---------------------------------------------------------------------------------------- pick
def pick(table: pd.DataFrame, rule: str, *, plane: Sequence[str] = (), directions: dict[str, str] | None = None,
         by: str | None = None, forget: str | None = None, utility: str | None = None,
         reference: float | None = None, start: pd.DataFrame | None = None) -> pd.DataFrame:
    """Apply ``rule`` (parse_rule's forms) to the candidates ``table``. ``plane``: the metrics of the
    plane (knee's objectives; its first is the forget metric and its last the utility metric of
    at-forget and of first-below-retain's tie-break, unless ``forget`` / ``utility`` name others)."""
    name, x = parse_rule(rule)
    directions = directions or {}
    plane = [str(n) for n in plane]
    if by is not None and by not in table:
        raise KeyError(f"--by {by}: no such column")
    util = utility or (plane[-1].split(":")[0] if plane else None)
    if name == "knee":
        objectives = []
        for n in plane:
            base, _, d = n.partition(":")
            objectives.append((base, d or directions.get(base, "min")))
        return knee(table, objectives, by)
    if name == "fq-mu":
        return fq_mu(table, by)
    if name == "first-below-retain":
        if reference is None:
            raise LookupError("no reference")
        return first_below(table, forget or "knowmem_f", float(reference), util, directions, by)
    fmetric = forget or (plane[0].split(":")[0] if plane else None)
    if fmetric is None or util is None:
        raise KeyError("at-forget needs a forget and a utility metric")
    return at_forget(table, x, fmetric, util, directions, by=by, start=start)
