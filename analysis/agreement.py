"""Direction agreement: how close each step's update is to NGDiff's direction.

For the update d = w_R·g_R − w_F·g_F and NGDiff's n = a_R·g_R − a_F·g_F with a_R = 1/‖g_R‖,
a_F = 1/‖g_F‖ (a zero gradient's unit vector is 0, as in the core), every inner product
follows from the Gram matrix recorded per step (``gram_rr``, ``gram_rf``, ``gram_ff``):

    ⟨(x₁, y₁), (x₂, y₂)⟩ = x₁x₂·‖g_R‖² − (x₁y₂ + y₁x₂)·g_R·g_F + y₁y₂·‖g_F‖²
    cos(d, n) = ⟨d, n⟩ / (‖d‖·‖n‖)

NaN where d = 0 or n = 0 (g_R ∥ g_F in the same direction, or both gradients zero). IMTL-G,
MGDA with l2 normalisation and Nash-MTL give d ∥ n, so they sit at 1 (up to rounding).

>>> import pandas as pd
>>> s = pd.DataFrame({"gram_rr": [4.0, 4.0], "gram_rf": [0.0, 0.0], "gram_ff": [1.0, 1.0],
...                   "w_r": [0.25, 1.0], "w_f": [0.5, 0.0]})
>>> ngdiff_cosine(s).round(4).tolist()          # (1/4·g_R − 1/2·g_F) ∥ n;  pure g_R: 45°
[1.0, 0.7071]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ngdiff_cosine", "agreement_table"]


def _num(steps: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(steps[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def ngdiff_cosine(steps: pd.DataFrame) -> pd.Series:
    """cos(d, NGDiff direction) per step, from the Gram matrix and the weights."""
    rr, rf, ff = _num(steps, "gram_rr"), _num(steps, "gram_rf"), _num(steps, "gram_ff")
    wr, wf = _num(steps, "w_r"), _num(steps, "w_f")
    with np.errstate(divide="ignore", invalid="ignore"):
        nr, nf = np.sqrt(np.maximum(rr, 0.0)), np.sqrt(np.maximum(ff, 0.0))
        ar = np.where(nr > 0, 1.0 / nr, 0.0)
        af = np.where(nf > 0, 1.0 / nf, 0.0)

        def inner(x1, y1, x2, y2):
            return x1 * x2 * rr - (x1 * y2 + y1 * x2) * rf + y1 * y2 * ff

        dn = inner(wr, wf, ar, af)
        dd = np.maximum(inner(wr, wf, wr, wf), 0.0)
        nn = np.maximum(inner(ar, af, ar, af), 0.0)
        denom = np.sqrt(dd) * np.sqrt(nn)
        cos = np.where(denom > 0, dn / denom, np.nan)
    return pd.Series(np.clip(cos, -1.0, 1.0), index=steps.index, name="cos_ngdiff")


def agreement_table(steps: pd.DataFrame, trials: pd.DataFrame, by: str = "method") -> pd.DataFrame:
    """Per ``by`` group: steps, mean / min / max cosine to NGDiff, and the fraction ≥ 0.999."""
    cos = ngdiff_cosine(steps)
    df = pd.DataFrame({"trial_id": steps["trial_id"].to_numpy(), "cos": cos.to_numpy()})
    df = df.merge(trials[["trial_id", by]], on="trial_id", how="left")
    rows = []
    for key, part in df.groupby(by, sort=True):
        c = part["cos"].dropna()
        rows.append({by: key, "steps": len(part), "cos_mean": c.mean() if len(c) else np.nan,
                     "cos_min": c.min() if len(c) else np.nan, "cos_max": c.max() if len(c) else np.nan,
                     "at_1": float((c >= 0.999).mean()) if len(c) else np.nan,
                     "undefined": int(part["cos"].isna().sum())})
    return pd.DataFrame(rows, columns=[by, "steps", "cos_mean", "cos_min", "cos_max", "at_1", "undefined"])
