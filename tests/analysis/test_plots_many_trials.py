"""Figures of per-trial lines at cluster size: above MANY_TRIALS trials a panel draws each
setting's median and 10–90 % band (computed from the rows, checked here), the paths a grey cloud."""

import numpy as np
import pandas as pd

from analysis import plots as P


def _long(n_trials: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_trials):
        setting, rule = ("NGDiff (AutoLR)", "autolr") if i % 2 else ("GDiff-0.5 (η=1e-04)", "fixed")
        for step in range(0, 30, 10):
            rows.append({"trial_id": f"t{i:04d}", "setting": setting, "method": setting.split()[0],
                         "lr_rule": rule, "source": "eval", "quantity": "rouge_f", "step": step,
                         "value": rng.random()})
    return pd.DataFrame(rows)


def test_many_trials_draw_bands_whose_median_is_the_rows_median():
    data = _long(P.MANY_TRIALS + 2)
    fig = P.curves(data, "many")
    ax = fig.axes[0]
    medians = {ln.get_label(): ln.get_ydata() for ln in ax.get_lines()}
    assert set(medians) == {"GDiff-0.5 (η=1e-04) (median, 10–90 %)", "NGDiff (AutoLR) (median, 10–90 %)"}
    want = data[data.setting == "NGDiff (AutoLR)"].groupby("step")["value"].median().to_numpy()
    np.testing.assert_allclose(medians["NGDiff (AutoLR) (median, 10–90 %)"], want)
    assert len(P.png_bytes(fig)) > 1000


def test_few_trials_keep_one_line_each():
    data = _long(6)
    ax = P.curves(data, "few").axes[0]
    from matplotlib.collections import LineCollection

    groups = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert sorted(len(c.get_segments()) for c in groups) == [3, 3]  # one line per trial, two styles
