"""Theorem 5 of the ngdiff paper, checked step by step on ``steps.parquet``.

Three checks per step, each True / False / NaN (NaN: not measured or not applicable):

``eq5``        paper Eq. 5 for the direction d = w_R·g_R − w_F·g_F the optimizer received:
               g_R·d ≥ 0 ≥ g_F·d (columns ``dot_r_upd``, ``dot_f_upd``). Lemma 4 says NGDiff
               meets it on every step. With a relative tolerance for float rounding (below):
               ``eq5_r``: g_R·d ≥ −rtol·s_R,  ``eq5_f``: g_F·d ≤ rtol·s_F, where
               s_R = |w_R|·‖g_R‖² + |w_F|·|g_R·g_F| and s_F = |w_R|·|g_R·g_F| + |w_F|·‖g_F‖² are
               the magnitudes of the two terms each dot product is the difference of. Near
               g_R ∥ g_F NGDiff's g_R·d = ‖g_R‖ − g_R·g_F/‖g_F‖ is a difference of two nearly
               equal numbers, and the Gram entries are fp32 dot products, so an exact ≥ 0 test
               flags rounding as a violation (on nearly parallel random fp32 gradients about
               half the steps). Measured worst relative violation with torch's fp32 dot:
               5e-7 at 0.46 M parameters (the embedded target), 1.5e-6 at 4 M; it grows with
               the parameter count. Default rtol = 1e-4: far above rounding, far below a real
               violation (a wrong sign is of relative size ~1).
``lr_bound``   Theorem 5 (2)'s learning-rate condition 0 < η < 2·g_Rᵀu / uᵀH_R u, on the steps
               where AutoLR probed (``autolr_gd`` = Gᵀu, ``autolr_dhd`` = uᵀH_R u, measured by
               central differences of L_R along u on the step's retain batch) against ``lr``,
               the η this step used. u is the step the optimizer actually takes (θ ← θ − η·u):
               u = d for plain SGD — then this is the paper's bound literally — and Adam's
               preconditioned d for Adam/AdamW. Applicable only where uᵀH_R u > 0 (the
               theorem's premise); where g_Rᵀu ≤ 0 no η > 0 satisfies it (False). Also
               ``bound_ratio`` = η / (2·Gᵀu/uᵀH_R u) (< 1 when it holds; exactly 0.5 when η is
               AutoLR's accepted η* = Gᵀu/uᵀH_R u).
``improved``   realised simultaneous improvement: ``loss_r_after < loss_r`` and
               ``loss_f_after > loss_f`` (both losses re-measured on the same batches after
               the update; NaN on steps where the sweep did not measure them).

Caveat (Adam): Eq. 5 and Lemma 4 are about d, the direction handed to the optimizer. Adam
moves θ along its preconditioned u ≠ d, so Eq. 5 holding for d does not imply g_Rᵀu ≥ 0; the
curvature bound and the realised improvement are about the real step u. ``descent_r``
(``autolr_gd > 0`` on probed steps) says whether the real step descends on L_R.

>>> import pandas as pd
>>> steps = pd.DataFrame({"trial_id": ["a", "a"], "step": [0, 1],
...     "gram_rr": [1.0, 1.0], "gram_rf": [0.5, 1.0], "gram_ff": [1.0, 1.0],
...     "w_r": [1.0, 1.0], "w_f": [1.0, 1.0], "dot_r_upd": [0.5, -1e-17], "dot_f_upd": [-0.5, 1e-17],
...     "lr": [0.1, 0.1], "autolr_gd": [1.0, float("nan")], "autolr_dhd": [4.0, float("nan")],
...     "loss_r": [1.0, 1.0], "loss_f": [1.0, 1.0], "loss_r_after": [0.9, 1.1],
...     "loss_f_after": [1.2, 1.2]})
>>> c = step_checks(steps)
>>> c[["eq5", "lr_bound", "bound_ratio", "improved"]].values.tolist()
[[True, True, 0.2, True], [True, nan, nan, False]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RTOL", "CHECKS", "step_checks", "summarize", "failures", "lemma4_violations"]

RTOL = 1e-4

#: The per-step check columns step_checks adds (object dtype: True, False or NaN).
CHECKS = ("eq5_r", "eq5_f", "eq5", "lr_bound", "descent_r", "improved_r", "improved_f", "improved")


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _tri(value: np.ndarray, known: np.ndarray) -> pd.Series:
    """Booleans where ``known``, NaN elsewhere (object dtype keeps True/False/NaN apart)."""
    out = np.where(known, value.astype(bool), np.nan).astype(object)
    out[known] = value[known].astype(bool)
    return pd.Series(out, dtype=object)


def step_checks(steps: pd.DataFrame, rtol: float = RTOL) -> pd.DataFrame:
    """``steps`` plus the columns of CHECKS, ``bound_eta`` (2·Gᵀu/uᵀH_R u) and ``bound_ratio``."""
    rr, rf, ff = _col(steps, "gram_rr"), _col(steps, "gram_rf"), _col(steps, "gram_ff")
    wr, wf = _col(steps, "w_r"), _col(steps, "w_f")
    dr, df_ = _col(steps, "dot_r_upd"), _col(steps, "dot_f_upd")
    s_r = np.abs(wr) * np.abs(rr) + np.abs(wf) * np.abs(rf)
    s_f = np.abs(wr) * np.abs(rf) + np.abs(wf) * np.abs(ff)
    known_r, known_f = np.isfinite(dr), np.isfinite(df_)
    with np.errstate(invalid="ignore"):
        ok_r = dr >= -rtol * np.nan_to_num(s_r, nan=0.0)
        ok_f = df_ <= rtol * np.nan_to_num(s_f, nan=0.0)

    lr, gd, dhd = _col(steps, "lr"), _col(steps, "autolr_gd"), _col(steps, "autolr_dhd")
    probed = np.isfinite(gd) & np.isfinite(dhd) & np.isfinite(lr)
    applicable = probed & (dhd > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(applicable, 2.0 * gd / dhd, np.nan)
        holds = (gd > 0) & (lr > 0) & (lr < bound)
        ratio = np.where(applicable & (gd > 0), lr / bound, np.nan)

    lr0, lf0 = _col(steps, "loss_r"), _col(steps, "loss_f")
    lr1, lf1 = _col(steps, "loss_r_after"), _col(steps, "loss_f_after")
    meas_r = np.isfinite(lr0) & np.isfinite(lr1)
    meas_f = np.isfinite(lf0) & np.isfinite(lf1)
    with np.errstate(invalid="ignore"):
        imp_r, imp_f = lr1 < lr0, lf1 > lf0

    out = steps.reset_index(drop=True).copy()
    out["eq5_r"] = _tri(ok_r, known_r)
    out["eq5_f"] = _tri(ok_f, known_f)
    out["eq5"] = _tri(ok_r & ok_f, known_r & known_f)
    out["bound_eta"] = bound
    out["bound_ratio"] = ratio
    out["lr_bound"] = _tri(holds, applicable)
    out["descent_r"] = _tri(gd > 0, probed)
    out["improved_r"] = _tri(imp_r, meas_r)
    out["improved_f"] = _tri(imp_f, meas_f)
    out["improved"] = _tri(imp_r & imp_f, meas_r & meas_f)
    return out


def _fractions(df: pd.DataFrame) -> dict:
    row = {"steps": len(df)}
    for check in CHECKS:
        known = df[check].notna()
        n = int(known.sum())
        row[f"{check}_n"] = n
        row[check] = float(df.loc[known, check].astype(bool).mean()) if n else np.nan
    return row


def summarize(checks: pd.DataFrame, trials: pd.DataFrame | None = None,
              by: tuple[str, ...] = ("method", "lr_rule")) -> pd.DataFrame:
    """Fraction of steps passing each check, over the steps where it was measured.

    With ``trials`` (needs ``trial_id`` and the ``by`` columns) one row per group of ``by``;
    without, one row per trial. ``<check>`` is the fraction, ``<check>_n`` how many steps it
    is over (0 → the fraction is NaN: never measured).
    """
    keys = ["trial_id"]
    df = checks
    if trials is not None:
        keys = [k for k in by if k in trials]
        df = checks.merge(trials[["trial_id", *keys]], on="trial_id", how="left")
    rows = []
    for key, part in df.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key)), "trials": part["trial_id"].nunique(), **_fractions(part)})
    cols = [*keys, "trials", "steps"] + [c for check in CHECKS for c in (check, f"{check}_n")]
    return pd.DataFrame(rows, columns=cols)


def failures(checks: pd.DataFrame, check: str = "eq5") -> pd.DataFrame:
    """The steps where ``check`` is False (measured and failed)."""
    failed = checks[check].map(lambda v: v is False or v is np.False_)
    return checks[failed.astype(bool)]


def lemma4_violations(checks: pd.DataFrame, trials: pd.DataFrame, combiner: str = "ngdiff"
                      ) -> pd.DataFrame:
    """Steps of ``combiner`` trials where Eq. 5 fails beyond the tolerance (Lemma 4: none)."""
    ids = trials.loc[trials["combiner"] == combiner, "trial_id"]
    return failures(checks[checks["trial_id"].isin(ids)], "eq5")
