"""Plotly drawings of the same tables `analysis.plots` draws (analysis.figures), for
`pareto report --interactive`: hover shows each point's trial and setting, a legend click hides a
trace, drag zooms. Nothing here computes a result.

plotly is an optional extra (``pip install "pareto-unlearn[plotly]"``) and is imported only
here. Data go in as plain lists, so the figure JSON in the page holds the numbers as they are in
the tables (readable, and checked by the tests), and `embed` writes each figure as a JSON block
plus one call of the inlined plotly.js: the page stays one offline file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.results import ARROWS

__all__ = ["fig1", "fig4", "fig5", "curves", "embed", "plotly_js"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf"]
_SYMBOLS = ["circle", "square", "triangle-up", "diamond", "triangle-down", "cross", "x", "pentagon", "hexagon"]
_LAYOUT = dict(template="plotly_white", font=dict(size=12), margin=dict(l=60, r=20, t=70, b=40),
               legend=dict(font=dict(size=10)))


def _l(values) -> list:
    """Plain floats (NaN → None), so the JSON holds numbers, not plotly's base64 arrays."""
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(v)
            continue
        out.append(f if np.isfinite(f) else None)
    return out


def _colors(keys) -> dict:
    return {k: _PALETTE[i % len(_PALETTE)] for i, k in enumerate(dict.fromkeys(keys))}


def _label(name: str, directions: dict | None) -> str:
    return f"{name} {ARROWS.get((directions or {}).get(name, ''), '')}".rstrip()


def _dash(rule) -> str:
    return "solid" if rule == "autolr" else "dash"


def plotly_js() -> str:
    """plotly.js itself, to inline once in a page."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def embed(fig: go.Figure, div_id: str, height: int | None = None) -> str:
    """The figure as HTML: a div, its JSON (``<script type="application/json" id="DIV-json">``) and
    a call of the plotly.js inlined in the page's head."""
    doc = fig.to_json().replace("</", "<\\/")
    h = int(height or fig.layout.height or 450)
    return (f'<div id="{div_id}" class="plotly-fig" style="width:100%;height:{h}px"></div>\n'
            f'<script type="application/json" id="{div_id}-json">{doc}</script>\n'
            f'<script>(function(){{var f=JSON.parse(document.getElementById("{div_id}-json").textContent);'
            f'Plotly.newPlot("{div_id}",f.data,f.layout,{{responsive:true,displaylogo:false}});}})();</script>')


def _hover(df: pd.DataFrame) -> list[str]:
    return [f"{t} — {s}" for t, s in zip(df["trial_id"], df["setting"])]


# ------------------------------------------------------------------------------------- Fig. 1
def fig1(data: pd.DataFrame, directions: dict | None = None) -> go.Figure:
    """One panel per plane (analysis.figures.fig1_data): the static-c GDiff lines, every other
    method a marker (filled: AutoLR, open: fixed η), ★ No-unlearn."""
    planes = list(dict.fromkeys(data["plane"])) or ["(no plane has data)"]
    fig = make_subplots(rows=1, cols=len(planes), subplot_titles=planes, horizontal_spacing=0.1)
    others = data[data["line"].isna()]
    colors = _colors(others["display"])
    symbols = {m: _SYMBOLS[i % len(_SYMBOLS)] for i, m in enumerate(dict.fromkeys(others["display"]))}
    line_colors = {k: c for k, c in zip(dict.fromkeys(data["line"].dropna()), ["#1f77b4", "#17becf", "#9467bd",
                                                                               "#e377c2"] * 4)}
    shown: set[str] = set()
    for col, plane in enumerate(planes, start=1):
        part = data[data["plane"] == plane]
        for line, pts in part[part["line"].notna()].groupby("line", sort=False):
            pts = pts.sort_values("c")
            hollow = (pts["lr_rule"] != "autolr").all()
            fig.add_trace(go.Scatter(
                x=_l(pts["x"]), y=_l(pts["y"]), mode="lines+markers+text", name=line, legendgroup=line,
                showlegend=line not in shown, text=[f"c={c:g}" for c in pts["c"]], textposition="top right",
                textfont=dict(size=9, color=line_colors[line]), hovertext=_hover(pts), hoverinfo="text+x+y",
                cliponaxis=False,
                line=dict(dash="dash", color=line_colors[line]),
                marker=dict(color="white" if hollow else line_colors[line], size=8,
                            line=dict(color=line_colors[line], width=1.5))), row=1, col=col)
            shown.add(line)
        for (disp, rule), pts in part[part["line"].isna()].groupby(["display", "lr_rule"], sort=False, dropna=False):
            base = disp == "No-unlearn"
            name = disp if base else f"{disp} ({'AutoLR' if rule == 'autolr' else 'fixed η'})"
            color = "black" if base else colors[disp]
            fig.add_trace(go.Scatter(
                x=_l(pts["x"]), y=_l(pts["y"]), mode="markers", name=name, legendgroup=name,
                showlegend=name not in shown, hovertext=_hover(pts), hoverinfo="text+x+y",
                marker=dict(symbol="star" if base else symbols[disp], size=16 if base else 11,
                            color=color if (base or rule == "autolr") else "white", line=dict(color=color, width=2))),
                row=1, col=col)
            shown.add(name)
        if len(part):
            xn, yn = part["x_name"].iloc[0], part["y_name"].iloc[0]
            fig.update_xaxes(title_text=_label(xn, directions), row=1, col=col,
                             type="log" if _wide(part["x"], xn) else "linear")
            fig.update_yaxes(title_text=_label(yn, directions), row=1, col=col,
                             type="log" if _wide(part["y"], yn) else "linear")
    fig.update_layout(**_LAYOUT, height=520,
                      title="Fig. 1 — every trial on the paper's planes "
                            "(filled: AutoLR, open: fixed η; hover for the trial)")
    return fig


def _wide(values, name) -> bool:
    """Log axes for losses spanning more than 30×, as analysis.plots does."""
    v = pd.to_numeric(pd.Series(list(values)), errors="coerce").to_numpy(float)
    v = v[np.isfinite(v)]
    return "loss" in str(name) and len(v) > 0 and bool((v > 0).all()) and v.max() / v.min() > 30


# ------------------------------------------------------------------------------------- Fig. 5
def fig5(data: pd.DataFrame) -> go.Figure:
    """‖g_R‖, ‖g_F‖, c_t and η over steps (analysis.figures.fig5_data), one line per trial."""
    panels = [("norm_r", "‖g_R‖"), ("norm_f", "‖g_F‖"), ("c_t", "c_t = w_R/(w_R+w_F)"),
              ("lr", "learning rate η")]
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in panels], vertical_spacing=0.14)
    colors = _colors(data["setting"])
    for i, (col, _) in enumerate(panels):
        r, c = divmod(i, 2)
        for (setting, tid), part in data.groupby(["setting", "trial_id"], sort=False):
            fig.add_trace(go.Scatter(
                x=_l(part["step"]), y=_l(part[col]), mode="lines", name=setting, legendgroup=setting,
                showlegend=i == 0, hovertext=[f"{tid} — {setting}"] * len(part), hoverinfo="text+x+y",
                line=dict(color=colors[setting], dash=_dash(part["lr_rule"].iloc[0]),
                          shape="hv" if col == "lr" else "linear")), row=r + 1, col=c + 1)
        if col in ("norm_r", "norm_f", "lr") and len(data) and (data[col] > 0).any():
            fig.update_yaxes(type="log", row=r + 1, col=c + 1)
        fig.update_xaxes(title_text="step", row=r + 1, col=c + 1)
    fig.update_layout(**_LAYOUT, height=640, title="Fig. 5 — gradient norms, c_t and learning rate over steps "
                                                    "(solid: AutoLR, dashed: fixed η)")
    return fig


# ---------------------------------------------------------------------------------- Figs. 6–7
_TITLES = {"loss_r": "retain loss L_R (training batches)", "loss_f": "forget loss L_F (training batches)"}


def curves(data: pd.DataFrame, title: str, directions: dict | None = None, color_by: str = "method") -> go.Figure:
    """One panel per quantity (analysis.figures.curves_data), one line per trial."""
    quantities = list(dict.fromkeys(data["quantity"])) or ["(nothing to draw)"]
    ncols = min(3, len(quantities))
    nrows = int(np.ceil(len(quantities) / ncols))
    titles = []
    for q in quantities:
        part = data[data["quantity"] == q]
        src = part["source"].iloc[0] if len(part) else "eval"
        titles.append(_TITLES.get(q, _label(q, directions) + (" (evaluation)" if src == "eval" else "")))
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=titles, vertical_spacing=0.3 / max(nrows, 1) + 0.05)
    colors = _colors(data[color_by]) if len(data) else {}
    shown: set[str] = set()
    for i, q in enumerate(quantities):
        r, c = divmod(i, ncols)
        for tid, tr in data[data["quantity"] == q].groupby("trial_id", sort=False):
            first = tr.iloc[0]
            fig.add_trace(go.Scatter(
                x=_l(tr["step"]), y=_l(tr["value"]), name=first["setting"], legendgroup=first["setting"],
                showlegend=first["setting"] not in shown,
                mode="lines+markers" if first["source"] == "eval" else "lines",
                hovertext=[f"{tid} — {first['setting']}"] * len(tr), hoverinfo="text+x+y",
                line=dict(color=colors[first[color_by]], dash=_dash(first["lr_rule"])), marker=dict(size=5)),
                row=r + 1, col=c + 1)
            shown.add(first["setting"])
        fig.update_xaxes(title_text="step", row=r + 1, col=c + 1)
    fig.update_layout(**_LAYOUT, height=300 * nrows + 120, title=title + " (solid: AutoLR, dashed: fixed η)")
    return fig


# ------------------------------------------------------------------------------------- Fig. 4
def fig4(data: pd.DataFrame, summary: pd.DataFrame | None = None) -> go.Figure:
    """L_R and L_F against η per probed step (analysis.figures.fig4_data): measured points, the
    values the trial recorded, the parabola, and the η the step used."""
    keys = list(dict.fromkeys(zip(data["trial_id"], data["step"])))
    titles = []
    for k in keys:
        titles += [f"{k[0]}, step {k[1]}: L_R(θ − η·u) ↓", f"{k[0]}, step {k[1]}: L_F(θ − η·u) ↑"]
    fig = make_subplots(rows=max(1, len(keys)), cols=2, subplot_titles=titles or ["(no probe)"],
                        vertical_spacing=0.12 if len(keys) > 1 else 0.1)
    info = summary.set_index(["trial_id", "step"]) if summary is not None and len(summary) else None
    shown: set[str] = set()
    for r, key in enumerate(keys, start=1):
        part = data[(data["trial_id"] == key[0]) & (data["step"] == key[1])]
        for c, q in enumerate(("loss_r", "loss_f"), start=1):
            pq = part[part["quantity"] == q]
            for kind, dkind, name, style in (
                    ("measured", "batch", "measured, the step's batches", dict(mode="lines+markers")),
                    ("measured", "full", "measured, all examples", dict(mode="lines+markers")),
                    ("recorded", "batch", "recorded by the trial", dict(mode="markers")),
                    ("parabola", "batch", "parabola", dict(mode="lines"))):
                m = pq[(pq["kind"] == kind) & (pq["data"] == dkind)]
                if m.empty:
                    continue
                color = {"measured": "#1f77b4" if q == "loss_r" else "#d62728", "recorded": "black",
                         "parabola": "black"}[kind] if dkind == "batch" else "grey"
                fig.add_trace(go.Scatter(
                    x=_l(m["eta"]), y=_l(m["value"]), name=name, legendgroup=name, showlegend=name not in shown,
                    line=dict(color=color, dash="dash" if kind == "parabola" else "solid", width=1),
                    marker=dict(size=10 if kind == "recorded" else 5, symbol="x" if kind == "recorded" else "circle",
                                color=color), **style), row=r, col=c)
                shown.add(name)
            if info is not None and key in info.index:
                used = float(info.loc[key, "η used"])
                fig.add_vline(x=used, line=dict(color="#2ca02c", width=1.5), row=r, col=c)
                star = float(info.loc[key, "η* (parabola)"])
                if np.isfinite(star) and not np.isclose(star, used):  # η used = η* where AutoLR took it
                    fig.add_vline(x=star, line=dict(color="#ff7f0e", width=1.2, dash="dot"), row=r, col=c)
            meas = pq[pq["kind"] == "measured"]["value"].to_numpy(float)
            meas = meas[np.isfinite(meas)]
            if len(meas):
                pad = 0.08 * (meas.max() - meas.min() or abs(meas.max()) or 1.0)
                fig.update_yaxes(range=[meas.min() - pad, meas.max() + pad], row=r, col=c)
            fig.update_xaxes(title_text="η (green: η used, orange dotted: the parabola's η*)", row=r, col=c,
                             exponentformat="e")
    names = "<br>".join(dict.fromkeys(data["title"]))
    fig.update_layout(**{**_LAYOUT, "margin": dict(l=60, r=20, t=95 + 16 * len(keys), b=40)},
                      height=380 * max(1, len(keys)) + 95 + 16 * len(keys),
                      title=f"Fig. 4 — the losses along the update direction<br><sup>{names}</sup>")
    return fig


def figure_json(page: str, div_id: str) -> dict:
    """The figure JSON `embed` wrote for ``div_id`` in an HTML page (for tests and tools)."""
    start = page.index(f'<script type="application/json" id="{div_id}-json">') + len(
        f'<script type="application/json" id="{div_id}-json">')
    return json.loads(page[start:page.index("</script>", start)])
