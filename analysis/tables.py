"""Tables shaped like the paper's: Tables 1–2 (methods as columns, metrics with arrows as rows)
and Table 3 (each method without → with AutoLR).

Only trials with status "ok" are used; several seeds of one setting are averaged (``n`` in the
table's attrs says how many). A *setting* is a method plus how its learning rate was set
("NGDiff (AutoLR)", "GDiff-0.5 (η=1e-04)"); see analysis.results.setting_names.

>>> import pandas as pd
>>> t = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": "ok",
...     "combiner": ["no-unlearn", "ngdiff", "ngdiff"], "combiner_params": "{}", "objective": "ga",
...     "lr_rule": ["none", "fixed", "autolr"], "lr": [None, 1e-4, 1e-4], "seed": 0,
...     "rouge_f": [1.0, 0.5, 0.2], "utility_r": [1.0, 0.9, 0.8]})
>>> print(render(paper_table(t, ["rouge_f", "utility_r"], {"rouge_f": "min", "utility_r": "max"}), "text"))
                       No-unlearn  NGDiff (η=1e-04)  NGDiff (AutoLR)
Verbmem ↓ (rouge_f)         1.000             0.500            0.200
Utility ↑ (utility_r)       1.000             0.900            0.800
<BLANKLINE>
>>> print(render(autolr_table(t, ["rouge_f"], {"rouge_f": "min"}), "text"))
                           Verbmem ↓ (rouge_f)
No-unlearn                               1.000
NGDiff (η=1e-04 → AutoLR)        0.500 → 0.200
<BLANKLINE>
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from analysis.results import ARROWS, display_names, method_names, setting_names

__all__ = ["TABLE_METRICS", "METRIC_NAMES", "paper_table", "autolr_table", "objective_rule_table", "render",
           "metric_label"]

#: Metrics a paper-style table shows per dataset family (those with no value are dropped).
TABLE_METRICS = {
    "tofu": ("rouge_f", "utility_r", "truth_ratio_r", "model_utility", "forget_quality",
             "loss_f_eval", "loss_r_eval"),
    "muse": ("verbmem_f", "knowmem_f", "knowmem_r", "privleak", "loss_f_eval", "loss_r_eval"),
}
TABLE_METRICS["custom"] = TABLE_METRICS["tofu"]

#: The paper's names for the metrics it reports.
METRIC_NAMES = {"rouge_f": "Verbmem", "verbmem_f": "Verbmem", "utility_r": "Utility",
                "knowmem_r": "Utility", "truth_ratio_r": "TruthRatio", "knowmem_f": "Knowmem",
                "loss_f_eval": "Forget loss", "loss_r_eval": "Retain loss",
                "model_utility": "Model utility", "forget_quality": "Forget quality",
                "privleak": "PrivLeak"}

_ORDER = ["no-unlearn", "gd", "gdiff", "ga", "npo", "simnpo", "lossnorm", "rlw", "pcgrad", "mgda",
          "cagrad", "gradvac", "aligned", "famo", "nash", "imtlg", "ngdiff"]


def metric_label(name: str, directions: dict[str, str]) -> str:
    arrow = ARROWS.get(directions.get(name, ""), "")
    paper = METRIC_NAMES.get(name)
    return f"{paper} {arrow} ({name})" if paper else f"{name} {arrow}".rstrip()


def _sort_key(rec: dict) -> tuple:
    comb = str(rec.get("combiner"))
    rank = _ORDER.index(comb) if comb in _ORDER else len(_ORDER)
    c = re.search(r"c=([0-9.eE+-]+)", str(rec.get("method", "")))
    c = -float(c.group(1)) if c else 0.0  # GDiff: c descending, as the paper (0.9, 0.5, 0.1)
    rule = {"none": 0, "fixed": 1, "autolr": 2}.get(str(rec.get("lr_rule")), 3)
    lr = rec.get("lr")
    return (rank, c, str(rec.get("method")), rule, float(lr) if lr is not None and lr == lr else 0.0)


def _prepare(trials: pd.DataFrame) -> pd.DataFrame:
    ok = trials[trials["status"] == "ok"] if "status" in trials else trials
    ok = ok.copy()
    if "method" not in ok:
        ok["method"] = method_names(ok)
    ok["setting"] = setting_names(ok)
    ok["_key"] = [_sort_key(r) for r in ok.to_dict("records")]
    return ok.sort_values("_key", kind="stable")


def _metrics(ok: pd.DataFrame, metrics) -> list[str]:
    return [m for m in metrics if m in ok and pd.to_numeric(ok[m], errors="coerce").notna().any()]


def paper_table(trials: pd.DataFrame, metrics, directions: dict[str, str]) -> pd.DataFrame:
    """Rows: metrics with arrows; columns: settings in the paper's order; values: seed means."""
    ok = _prepare(trials)
    metrics = _metrics(ok, metrics)
    settings = list(dict.fromkeys(ok["setting"]))
    means = ok.groupby("setting", sort=False)[metrics].mean(numeric_only=True)
    table = means.reindex(settings).T
    table.index = [metric_label(m, directions) for m in metrics]
    table.columns.name = None
    table.attrs["n"] = ok.groupby("setting", sort=False).size().reindex(settings).to_dict()
    return table


def autolr_table(trials: pd.DataFrame, metrics, directions: dict[str, str]) -> pd.DataFrame:
    """Rows: method at each fixed η; cells "fixed → AutoLR" (seed means) — the paper's Table 3.

    A fixed-lr setting is paired with the AutoLR trials of the same method started from the same
    η (AutoLR's ``lr`` column is its initial η); when there are none at that η, with all of the
    method's AutoLR trials. Methods without a fixed-lr trial show the AutoLR value alone, and
    the No-unlearn row its single value.
    """
    ok = _prepare(trials)
    metrics = _metrics(ok, metrics)
    rows, index = [], []
    for method, part in ok.groupby("method", sort=False):
        fixed = part[part["lr_rule"] == "fixed"]
        auto = part[part["lr_rule"] == "autolr"]
        name = display_names([method]).iloc[0]
        other = part[~part["lr_rule"].isin(["fixed", "autolr"])]
        if len(other) and fixed.empty and auto.empty:
            rows.append([f"{v:.3f}" for v in other[metrics].mean(numeric_only=True)])
            index.append(name)
            continue
        for lr, fpart in fixed.groupby("lr", sort=True):
            apart = auto[np.isclose(auto["lr"].astype(float), float(lr))]
            apart = apart if len(apart) else auto
            fm, am = fpart[metrics].mean(numeric_only=True), apart[metrics].mean(numeric_only=True)
            rows.append([f"{fm[m]:.3f} → {am[m]:.3f}" if len(apart) else f"{fm[m]:.3f}" for m in metrics])
            index.append(f"{name} (η={float(lr):.0e} → AutoLR)" if len(apart) else f"{name} (η={float(lr):.0e})")
        if fixed.empty and len(auto):
            rows.append([f"{v:.3f}" for v in auto[metrics].mean(numeric_only=True)])
            index.append(f"{name} (AutoLR)")
    return pd.DataFrame(rows, index=index, columns=[metric_label(m, directions) for m in metrics])


def objective_rule_table(trials: pd.DataFrame, forget: str, utility: str) -> pd.DataFrame:
    """Rows: forget objectives; columns: rule and lr setting ("NGDiff (η=1e-03)"); cells "forget /
    utility", the seed means of the final values (the No-unlearn trial is left out). Empty unless
    the trials use two or more objectives: it shows which objective works with which rule."""
    ok = _prepare(trials)
    ok = ok[(ok["combiner"] != "no-unlearn") & ok[forget].notna() & ok[utility].notna()] \
        if forget in ok and utility in ok else ok.iloc[:0]
    if ok.get("objective", pd.Series(dtype=object)).nunique() < 2:
        return pd.DataFrame()
    rules = setting_names(ok.assign(method=method_names(ok.assign(objective="ga"))))  # the rule, without objective
    means = ok.assign(rule=rules).groupby(["objective", "rule"], sort=False)[[forget, utility]].mean()
    cells = {k: f"{f:.3f} / {u:.3f}" for k, (f, u) in zip(means.index, means.to_numpy())}
    objectives = sorted(dict.fromkeys(ok["objective"]), key=lambda o: (o != "ga", o))
    columns = list(dict.fromkeys(rules))
    return pd.DataFrame([[cells.get((o, c), "–") for c in columns] for o in objectives],
                        index=objectives, columns=columns)


def render(table: pd.DataFrame, fmt: str = "markdown", digits: int = 3) -> str:
    """A table as "markdown", "html", "latex" or "text"; floats to ``digits`` decimals."""
    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "–" if not np.isfinite(v) else f"{v:.{digits}f}"
        return str(v)

    header = [""] + [str(c) for c in table.columns]
    body = [[str(i)] + [cell(v) for v in row] for i, row in zip(table.index, table.to_numpy())]
    if fmt == "markdown":
        esc = lambda s: s.replace("|", "\\|")  # noqa: E731
        lines = ["| " + " | ".join(esc(h) for h in header) + " |",
                 "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
        return "\n".join(lines) + "\n"
    if fmt == "html":
        th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        trs = "".join("<tr><th>" + html.escape(r[0]) + "</th>"
                      + "".join(f"<td>{html.escape(c)}</td>" for c in r[1:]) + "</tr>" for r in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>\n"
    if fmt == "latex":
        def tex(s: str) -> str:
            s = re.sub(r"([&%$#_{}])", r"\\\1", s)
            return (s.replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$")
                    .replace("→", r"$\to$").replace("η", r"$\eta$").replace("–", "--"))
        lines = [r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
                 " & ".join(tex(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(tex(c) for c in r) + r" \\" for r in body]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
    if fmt == "text":
        widths = [max(len(r[j]) for r in [header] + body) for j in range(len(header))]
        fmt_row = lambda r: "  ".join(c.ljust(w) if j == 0 else c.rjust(w)  # noqa: E731
                                      for j, (c, w) in enumerate(zip(r, widths))).rstrip()
        return "\n".join([fmt_row(header)] + [fmt_row(r) for r in body]) + "\n"
    raise ValueError(f"unknown format {fmt!r}: markdown, html, latex or text")
