"""Matplotlib drawings of tables computed elsewhere (analysis.figures, analysis.frontier).

Nothing here computes a result: each function takes a table and returns a
``matplotlib.figure.Figure`` (no pyplot, no global state; PNG through the Agg canvas).
Colours follow the method, line style the lr rule (solid: AutoLR, dashed: fixed η).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from analysis.results import ARROWS

__all__ = ["fig1", "fig4", "fig5", "curves", "frontier", "paths", "mixing", "agreement", "budget", "attainment",
           "eaf_difference", "save", "png_bytes"]

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*"]
_MAX_LABELS = 24  # points of one Fig. 1 line labelled with their c; more would hide the figure
#: Above this many trials a panel of per-trial lines draws each setting's median and 10–90 % band
#: instead (10⁴ lines are neither readable nor quick to draw); the paths figure draws them grey.
MANY_TRIALS = 400


def _label(name: str, directions: dict | None) -> str:
    arrow = ARROWS.get((directions or {}).get(name, ""), "")
    return f"{name} {arrow}".rstrip()


def _colors(keys: Sequence) -> dict:
    palette = [f"C{i}" for i in range(10)] + ["#8c564b", "#17becf", "#bcbd22", "#7f7f7f"]
    keys = keys.unique() if isinstance(keys, pd.Series) else list(dict.fromkeys(keys))  # in order of appearance
    return {k: palette[i % len(palette)] for i, k in enumerate(keys)}


def _style(rule) -> str:
    return "-" if rule == "autolr" else "--"


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _auto_log(ax, xs, ys, names) -> None:
    """Log axes for losses spanning more than 30× (after unlearning: 0.05 … 13); scores in [0, 1]
    stay linear."""
    for values, set_scale, name in ((xs, ax.set_xscale, names[0]), (ys, ax.set_yscale, names[1])):
        if "loss" not in str(name):
            continue
        v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
        v = v[np.isfinite(v)]
        if len(v) and (v > 0).all() and v.max() / v.min() > 30:
            set_scale("log")


def save(fig: Figure, path) -> None:
    fig.savefig(path, dpi=110, bbox_inches="tight")


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


# ------------------------------------------------------------------------------------- Fig. 1
def fig1(data: pd.DataFrame, directions: dict | None = None) -> Figure:
    """One panel per plane; static-c GDiff joined by dashed lines in c order, others markers."""
    planes = list(dict.fromkeys(data["plane"])) or ["(no plane has data)"]
    fig = Figure(figsize=(5.2 * len(planes), 4.6), layout="constrained")
    axes = fig.subplots(1, len(planes), squeeze=False)[0]
    others = data[data["line"].isna()]
    markers = {m: _MARKERS[i % len(_MARKERS)] for i, m in enumerate(dict.fromkeys(others["display"]))}
    colors = _colors(others["display"])
    lines = list(dict.fromkeys(data["line"].dropna()))
    # up to four static-c curves in fixed colours; more (a rate grid) as shades of one colour map
    shades = (["C0", "C9", "C4", "C6"] if len(lines) <= 4 else
              [colormaps["viridis"](v) for v in np.linspace(0, 0.9, len(lines))])
    line_colors = dict(zip(lines, shades))
    for ax, plane in zip(axes, planes):
        part = data[data["plane"] == plane]
        if part.empty:
            _empty(ax)
            continue
        for line, pts in part[part["line"].notna()].groupby("line", sort=False):
            pts = pts.sort_values("c")
            hollow = (pts["lr_rule"] != "autolr").all()
            ax.plot(pts["x"], pts["y"], ls="--", marker="o", color=line_colors[line], label=line, zorder=2,
                    markerfacecolor="white" if hollow else line_colors[line])
            if len(pts) <= _MAX_LABELS:  # a line of many seeds and objectives: its points unlabelled
                for c, px, py in zip(pts["c"], pts["x"], pts["y"]):
                    ax.annotate(f"c={c:g}", (px, py), fontsize=7, xytext=(4, 3),
                                textcoords="offset points", color=line_colors[line])
        for (disp, rule), pts in part[part["line"].isna()].groupby(["display", "lr_rule"], sort=False, dropna=False):
            base = disp == "No-unlearn"
            auto = rule == "autolr"
            ax.scatter(pts["x"], pts["y"], s=120 if base else 60, zorder=3,
                       marker="*" if base else markers[disp],
                       facecolors=("black" if base else colors[disp]) if (auto or base) else "none",
                       edgecolors="black" if base else colors[disp], linewidths=1.5,
                       label=disp + ("" if base else (" (AutoLR)" if auto else " (fixed η)")))
        _auto_log(ax, part["x"], part["y"], (part["x_name"].iloc[0], part["y_name"].iloc[0]))
        ax.set_xlabel(_label(part["x_name"].iloc[0], directions))
        ax.set_ylabel(_label(part["y_name"].iloc[0], directions))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8)
    fig.suptitle("Fig. 1 — every trial on the paper's planes (filled: AutoLR, hollow: fixed η)")
    return fig


# ------------------------------------------------------------------------------------- Fig. 5
def fig5(data: pd.DataFrame) -> Figure:
    """‖g_R‖, ‖g_F‖, c_t and η over steps, one line per trial."""
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    panels = [("norm_r", "‖g_R‖"), ("norm_f", "‖g_F‖"), ("c_t", "c_t = w_R/(w_R+w_F)"), ("lr", "learning rate η")]
    colors = _colors(data["setting"])
    for ax, (col, title) in zip(axes, panels):
        if data.empty:
            _empty(ax)
        _trial_lines(ax, data, colors, "setting", y=col, steps=col == "lr")
        ax.set_title(title)
        ax.set_xlabel("step")
        if col in ("norm_r", "norm_f", "lr") and (data[col] > 0).any():
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    fig.suptitle("Fig. 5 — gradient norms, c_t and learning rate over steps")
    return fig


def _legend(fig: Figure, axes) -> None:
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncols=min(4, len(seen)), fontsize=8)


# ---------------------------------------------------------------------------------- Figs. 6–7
_TITLES = {"loss_r": "retain loss L_R (training batches)", "loss_f": "forget loss L_F (training batches)"}


def _labelled(front: pd.DataFrame, x: str, most: int = 30) -> np.ndarray:
    """Positions (iloc) of the front points to label: all of a small front; of a big one (a path
    front of 10⁵ evaluations) `most`, evenly spaced along the first objective, both ends included
    — every label is a text box matplotlib measures for the layout."""
    if len(front) <= most:
        return np.arange(len(front))
    order = np.argsort(front[x].to_numpy(dtype=float), kind="stable")
    return order[np.unique(np.linspace(0, len(order) - 1, most).round().astype(int))]


def _bands(ax, part: pd.DataFrame, colors: dict, color_by: str, y: str, steps: bool) -> None:
    """More trials than a figure can show one by one: per setting, the median over its trials at
    each step and the band of their 10–90 % (the legend says so)."""
    keys = ["setting", color_by, "lr_rule"]
    qs = part.groupby([*keys, "step"], sort=False, dropna=False)[y].quantile([0.1, 0.5, 0.9]).unstack()
    for (setting, key, rule), q in qs.groupby(level=[0, 1, 2], sort=False, dropna=False):
        q = q.droplevel([0, 1, 2]).sort_index()
        ax.plot(q.index, q[0.5], ls=_style(rule), color=colors[key], label=f"{setting} (median, 10–90 %)",
                drawstyle="steps-post" if steps else "default")
        ax.fill_between(q.index, q[0.1], q[0.9], color=colors[key], alpha=0.12, lw=0,
                        step="post" if steps else None)


def _steps_post(xy: np.ndarray) -> np.ndarray:
    """A polyline's points drawn as matplotlib's drawstyle "steps-post" draws them."""
    if len(xy) < 2:
        return xy
    x = np.repeat(xy[:, 0], 2)[1:]
    y = np.repeat(xy[:, 1], 2)[:-1]
    return np.column_stack([x, y])


def _trial_lines(ax, part: pd.DataFrame, colors: dict, color_by: str, y: str = "value", steps: bool = False) -> None:
    """One line per trial (its rows in order: ``step`` against ``y``), drawn as one LineCollection
    per colour and line style — 10⁴ trials in a few calls, not 10⁴ — evaluation points (``source``
    "eval") as one scatter each, and one legend entry per setting. ``steps``: drawn steps-post."""
    if part.empty:
        return
    if "source" not in part:
        part = part.assign(source="steps")
    if part["trial_id"].nunique() > MANY_TRIALS:
        _bands(ax, part, colors, color_by, y, steps)
        return
    codes = pd.factorize(part["trial_id"])[0]
    part = part.iloc[np.argsort(codes, kind="stable")]  # each trial's rows together, trials in order
    firsts = part.drop_duplicates("trial_id")
    for (key, rule, source), ids in firsts.groupby([color_by, "lr_rule", "source"], sort=False,
                                                    dropna=False)["trial_id"]:
        sub = part[part["trial_id"].isin(set(ids))]
        xy = sub[["step", y]].to_numpy(dtype=float)
        tid = sub["trial_id"].to_numpy()
        segments = np.split(xy, np.flatnonzero(tid[1:] != tid[:-1]) + 1)
        if steps:
            segments = [_steps_post(s) for s in segments]
        ax.add_collection(LineCollection(segments, colors=colors[key], linestyles=_style(rule), linewidths=1.5))
        if source == "eval":
            ax.scatter(xy[:, 0], xy[:, 1], color=colors[key], s=9, zorder=3)
    for _, first in firsts.drop_duplicates("setting").iterrows():  # legend proxies: one per setting
        ax.plot([], [], ls=_style(first["lr_rule"]), color=colors[first[color_by]],
                marker="o" if first["source"] == "eval" else None, ms=3, label=first["setting"])
    ax.autoscale_view()


def curves(data: pd.DataFrame, title: str, directions: dict | None = None, color_by: str = "method") -> Figure:
    """One panel per quantity (eval metrics first, then the step losses), one line per trial."""
    quantities = list(data["quantity"].unique()) or ["(nothing to draw)"]  # in order of appearance
    ncols = min(3, len(quantities))
    nrows = int(np.ceil(len(quantities) / ncols))
    fig = Figure(figsize=(4.6 * ncols, 3.4 * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = _colors(data[color_by]) if len(data) else {}
    parts = dict(iter(data.groupby("quantity", sort=False))) if len(data) else {}  # one pass, not one mask per panel
    for ax, q in zip(axes, quantities):
        part = parts.get(q, data.iloc[:0])
        if part.empty:
            _empty(ax)
        _trial_lines(ax, part, colors, color_by)
        src = part["source"].iloc[0] if len(part) else "eval"
        ax.set_title(_TITLES.get(q, _label(q, directions) + (" (evaluation)" if src == "eval" else "")))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[len(quantities):]:
        ax.set_visible(False)
    _legend(fig, axes)
    fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------- frontiers
def frontier(tables, directions: dict | None = None) -> Figure:
    """One panel per FrontierTable: front (labelled, joined for 2-D), dominated in grey.

    A third objective is shown as the points' colour.
    """
    tables = list(tables)
    fig = Figure(figsize=(5.4 * max(1, len(tables)), 4.6), layout="constrained")
    axes = fig.subplots(1, max(1, len(tables)), squeeze=False)[0]
    for ax, t in zip(axes, tables):
        cols = [c for c, _ in t.objectives]
        rows = t.rows
        if rows.empty or len(cols) < 2:
            _empty(ax, "no trial to place" if rows.empty else "one objective")
            continue
        x, y = cols[0], cols[1]
        front = rows[~rows["dominated"]]
        dom = rows[rows["dominated"]]
        if len(cols) >= 3:
            sc = ax.scatter(rows[x], rows[y], c=rows[cols[2]], cmap="viridis", s=40,
                            edgecolors=np.where(rows["dominated"], "none", "black"))
            fig.colorbar(sc, ax=ax, label=_label(cols[2].strip("|"), directions))
        else:
            ax.scatter(dom[x], dom[y], color="lightgrey", edgecolors="grey", s=35, label="dominated")
            ax.scatter(front[x], front[y], color="C3", s=45, zorder=3, label="non-dominated")
            f = front.sort_values(x)
            # the edge of the dominated region: level with the front point nearer the better x
            ax.plot(f[x], f[y], color="C3", lw=1, alpha=0.6,
                    drawstyle="steps-post" if t.objectives[0][1] == "min" else "steps-pre")
            ax.legend(fontsize=8, loc="upper right")  # not "best": it scans every point
        for i in _labelled(front, x):
            ax.annotate(str(front[t.id_col].iloc[i]), (front[x].iloc[i], front[y].iloc[i]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        _auto_log(ax, rows[x], rows[y], (x, y))
        ax.set_xlabel(_label(x.strip("|"), directions))
        ax.set_ylabel(_label(y.strip("|"), directions))
        ax.grid(alpha=0.3)
        ax.set_title(f"{len(front)} non-dominated, {len(dom)} dominated"
                     + (f", {len(t.excluded)} excluded" if len(t.excluded) else "")
                     + ("\n(non-dominated: outlined and labelled; colour: 3rd objective)" if len(cols) >= 3 else ""),
                     fontsize=9)
    return fig


def paths(panels, directions: dict | None = None) -> Figure:
    """Training paths: one panel per (FrontierTable over evaluation points, its
    ``analysis.paths.path_lines`` table). Each trial's path is a thin line through its
    evaluations in step order (the first two objectives), dominated points small and grey,
    the non-dominated ones red and labelled ``trial@step``."""
    panels = list(panels)
    fig = Figure(figsize=(5.6 * max(1, len(panels)), 4.8), layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (t, lines) in zip(axes, panels):
        cols = [c for c, _ in t.objectives]
        if lines.empty:
            _empty(ax, "one objective" if len(cols) < 2 else "no point to place")
            continue
        xy = lines[["x", "y"]].to_numpy(dtype=float)
        tid = lines["trial_id"].to_numpy()
        segments = np.split(xy, np.flatnonzero(tid[1:] != tid[:-1]) + 1)  # path_lines: each trial's rows together
        if len(segments) > MANY_TRIALS:  # one grey LineCollection: the paths as a cloud, the front on top
            ax.add_collection(LineCollection(segments, colors="lightgrey", linewidths=0.5, alpha=0.5))
        else:
            colors = _colors(lines["trial_id"])
            ax.add_collection(LineCollection(segments, colors=[colors[s] for s in dict.fromkeys(tid)],
                                             linewidths=0.8, alpha=0.7))
            ax.scatter(xy[:, 0], xy[:, 1], c=[colors[t] for t in tid], s=5, alpha=0.7)
        dom, front = lines[lines["dominated"]], lines[~lines["dominated"]]
        ax.scatter(dom["x"], dom["y"], color="lightgrey", edgecolors="grey", s=14, zorder=3,
                   label="dominated evaluation")
        ax.scatter(front["x"], front["y"], color="C3", edgecolors="black", s=40, zorder=4,
                   label="non-dominated evaluation")
        for i in _labelled(front, "x"):
            ax.annotate(str(front["point"].iloc[i]), (front["x"].iloc[i], front["y"].iloc[i]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        _auto_log(ax, lines["x"], lines["y"], (cols[0], cols[1]))
        ax.set_xlabel(_label(cols[0].strip("|"), directions))
        ax.set_ylabel(_label(cols[1].strip("|"), directions))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")  # not "best": it scans every point
        extra = f"; front over {len(cols)} objectives, drawn on the first two" if len(cols) > 2 else ""
        ax.set_title(f"{lines['trial_id'].nunique()} trial paths, {len(lines)} evaluations: "
                     f"{len(front)} non-dominated" + (f", {len(t.excluded)} excluded" if len(t.excluded) else "")
                     + extra, fontsize=9)
    return fig


def matched_paths(data: pd.DataFrame, levels: Sequence[float], directions: dict | None = None) -> Figure:
    """Seed-mean training paths on the (forget, utility) plane, one line per setting (``display``
    and ``rate``: colour by method, line style by rate), from the target at step 0; dotted
    verticals at the matched forgetting ``levels``. Columns: display, rate, lr_rule, step, x, y,
    x_name, y_name."""
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.subplots()
    if data.empty:
        _empty(ax)
        return fig
    colors = _colors(data["display"])
    styles = {r: ("-", "--", "-.", ":")[i % 4] for i, r in enumerate(dict.fromkeys(data["rate"]))}
    for (disp, rate), g in data.groupby(["display", "rate"], sort=False):
        g = g.sort_values("step")
        ax.plot(g["x"], g["y"], ls=styles[rate], color=colors[disp], marker="o", ms=3, label=f"{disp}, {rate}")
    for x in levels:
        ax.axvline(x, color="grey", ls=":", lw=0.8)
    ax.set_xlabel(_label(data["x_name"].iloc[0], directions) + " (seed mean)")
    ax.set_ylabel(_label(data["y_name"].iloc[0], directions) + " (seed mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Seed-mean paths from the target; dotted: the matched Verbmem levels", fontsize=9)
    return fig


def mixing(curves: pd.DataFrame, names: Sequence[str], trials: pd.DataFrame, baseline: pd.DataFrame,
           sources: pd.DataFrame, directions: dict | None = None) -> Figure:
    """Mixing curves (analysis.mixing.mixing_curves) on a plane: each curve a line through its α
    points (α written beside each), the sweep's other trials in grey, the target (No-unlearn)
    black and each mixed trial (its final point) outlined in its curve's colour."""
    x, y = names
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(trials[x], trials[y], color="lightgrey", edgecolors="grey", s=22, label="trials (final)")
    if len(baseline):
        ax.scatter(baseline[x], baseline[y], color="black", marker="*", s=120, zorder=5, label="target (No-unlearn)")
    colors = _colors(curves["curve"])
    for curve, c in curves.groupby("curve", sort=False):
        ax.plot(c[x], c[y], color=colors[curve], marker="o", ms=4, lw=1.2, label=f"mix of {curve}", zorder=4)
        for a, px, py in zip(c["alpha"], c[x], c[y]):
            ax.annotate(f"{a:g}", (px, py), fontsize=7, xytext=(3, -8), textcoords="offset points")
        src = sources[sources["trial_id"] == curve.split("@")[0]]
        ax.scatter(src[x], src[y], facecolors="none", edgecolors=colors[curve], s=90, lw=1.5, zorder=4)
    _auto_log(ax, pd.concat([trials[x], curves[x]]), pd.concat([trials[y], curves[y]]), (x, y))
    ax.set_xlabel(_label(x, directions))
    ax.set_ylabel(_label(y, directions))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("θ_α = (1 − α)·θ_target + α·θ_unlearned (α beside each point; outlined: the trial's final point)",
                 fontsize=8)
    return fig


# --------------------------------------------------------------------------- direction agreement
def agreement(data: pd.DataFrame) -> Figure:
    """cos(d, NGDiff direction) over steps, one line per trial."""
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.subplots()
    colors = _colors(data["method"]) if len(data) else {}
    if data.empty:
        _empty(ax)
    _trial_lines(ax, data, colors, "method", y="cos")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("cos(d, d_NGDiff)")
    ax.grid(alpha=0.3)
    _legend(fig, [ax])
    fig.suptitle("cos between each step's update d and NGDiff's g_R/‖g_R‖ − g_F/‖g_F‖", fontsize=11)
    return fig


# ------------------------------------------------------------------------------------- Fig. 4
_FIG4_TITLES = {"loss_r": "retain loss L_R(θ − η·u)  ↓", "loss_f": "forget loss L_F(θ − η·u)  ↑"}


def fig4(data: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """One row of two panels (L_R, L_F against η) per probed (trial, step): the measured points
    on the step's batches (and on the full sets when probed), the parabola through them, a solid
    line at the η the step used and a dotted one at the parabola's minimiser η*."""
    keys = list(dict.fromkeys(zip(data["trial_id"], data["step"]))) or [("", 0)]
    fig = Figure(figsize=(11, 3.9 * len(keys) + 0.6), layout="constrained")
    axes = fig.subplots(len(keys), 2, squeeze=False)
    info = summary.set_index(["trial_id", "step"]) if summary is not None and len(summary) else None
    for row, key in zip(axes, keys):
        part = data[(data["trial_id"] == key[0]) & (data["step"] == key[1])]
        if part.empty:
            for ax in row:
                _empty(ax)
            continue
        meta = info.loc[key] if info is not None and key in info.index else None
        for ax, q in zip(row, ("loss_r", "loss_f")):
            pq = part[part["quantity"] == q]
            meas = pq[pq["kind"] == "measured"]
            for data_kind, color, marker in (("batch", "C0" if q == "loss_r" else "C3", "o"), ("full", "grey", "s")):
                m = meas[meas["data"] == data_kind]
                if len(m):
                    what = "the step's batches" if data_kind == "batch" else "all examples"
                    ax.plot(m["eta"], m["value"], color=color, lw=0.8, marker=marker, ms=3.5,
                            mfc=color if data_kind == "batch" else "white", label=f"measured, {what}")
            rec = pq[pq["kind"] == "recorded"]
            if len(rec):
                ax.scatter(rec["eta"], rec["value"], marker="x", s=70, color="black", zorder=4, linewidths=1.6,
                           label="recorded by the trial (before / after its step)")
            par = pq[pq["kind"] == "parabola"]
            if len(par):
                src = str(meta["parabola"]) if meta is not None else ""
                how = "three-point fit at ±η_in"
                if src.startswith("autolr"):
                    how = "AutoLR's fit, rejected" if "rejected" in src else "AutoLR's fit"
                lab = f"parabola ({how})" if q == "loss_r" else "parabola (three-point fit at ±η_in)"
                ax.plot(par["eta"], par["value"], color="black", ls="--", lw=1, label=lab)
            vals = meas["value"].to_numpy(float)
            vals = vals[np.isfinite(vals)]
            if len(vals):  # the parabola may leave the measured range: keep the measurements in view
                lo, hi = vals.min(), vals.max()
                pad = 0.08 * (hi - lo or abs(hi) or 1.0)
                ax.set_ylim(lo - pad, hi + pad)
            if meta is not None:
                same = np.isfinite(meta["η* (parabola)"]) and np.isclose(meta["η* (parabola)"], meta["η used"])
                ax.axvline(meta["η used"], color="C2", lw=1.4,
                           label=f"η used{' = η* (AutoLR)' if same else ''} = {meta['η used']:.3g}")
                if np.isfinite(meta["η* (parabola)"]) and not same:
                    ax.axvline(meta["η* (parabola)"], color="C1", lw=1.2, ls=":",
                               label=f"η* = argmin of the L_R parabola = {meta['η* (parabola)']:.3g}")
            ax.axvline(0.0, color="black", lw=0.5, alpha=0.5)
            ax.set_title(_FIG4_TITLES[q], fontsize=10)
            ax.set_xlabel("η  (θ − η·u, u: the optimizer's step at this step)")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7.5, loc="best")
        title = part["title"].iloc[0]
        row[0].annotate(title, (0, 1.13), xycoords="axes fraction", fontsize=10.5, fontweight="bold")
    fig.suptitle("Fig. 4 — the losses along the update direction at one step", fontsize=12)
    return fig


# ------------------------------------------------------------------- tuning budgets and seeds
def budget(curves: pd.DataFrame, title: str = "") -> Figure:
    """Hypervolume against trials spent (analysis.budget.budget_curves): one line per method, its
    central interval shaded."""
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot()
    colors = _colors(curves["method"]) if len(curves) else {}
    for method, c in curves.groupby("method", sort=False):
        ax.plot(c["k"], c["hv"], color=colors[method], label=str(method), marker="o", ms=3)
        ax.fill_between(c["k"], c["hv_lo"], c["hv_hi"], color=colors[method], alpha=0.15, lw=0)
    if curves.empty:
        _empty(ax)
    ax.set_xlabel("trials spent (random order)")
    ax.set_ylabel("hypervolume vs No-unlearn")
    ax.set_title(title, fontsize=9)
    if len(curves):
        ax.legend(fontsize=7, loc="lower right")
    return fig


def attainment(surfaces: pd.DataFrame, names: Sequence[str], directions: dict | None = None) -> Figure:
    """Attainment surfaces (analysis.attainment.attainment_surfaces) as staircases, one colour per
    method, one line style per percentile."""
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot()
    x, y = names
    colors = _colors(surfaces["method"]) if len(surfaces) else {}
    styles = {p: s for p, s in zip(sorted(surfaces["percentile"].unique()) if len(surfaces) else [],
                                   ["-", "--", ":", "-."] * 4)}
    for (method, pct), s in surfaces.groupby(["method", "percentile"], sort=False):
        s = s.sort_values(x)
        ax.step(s[x], s[y], where="post", color=colors[method], ls=styles[pct],
                label=f"{method} ({pct:g} %, {int(s['n_sets'].iloc[0])} seeds)")
        ax.plot(s[x], s[y], "o", color=colors[method], ms=3)
    if surfaces.empty:
        _empty(ax)
    else:
        ax.legend(fontsize=7)
    ax.set_xlabel(_label(x, directions))
    ax.set_ylabel(_label(y, directions))
    return fig


def eaf_difference(diff: pd.DataFrame, names: Sequence[str], a: str, b: str, directions: dict | None = None) -> Figure:
    """The EAF difference of two methods (analysis.attainment.eaf_difference): rectangles coloured by
    a's share minus b's (blue: a attains more often, red: b)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot()
    if diff.empty:
        _empty(ax, "the two methods attain the same regions")
        return fig
    xs = diff[["x_lo", "x_hi"]].to_numpy()
    ys = diff[["y_lo", "y_hi"]].to_numpy()
    xf, yf = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    pad_x, pad_y = 0.05 * (np.ptp(xf) or 1.0), 0.05 * (np.ptp(yf) or 1.0)
    lim_x, lim_y = (xf.min() - pad_x, xf.max() + pad_x), (yf.min() - pad_y, yf.max() + pad_y)
    cmap, norm = colormaps["RdBu"], TwoSlopeNorm(vcenter=0.0, vmin=-1.0, vmax=1.0)
    for r in diff.itertuples():
        x0, x1 = np.clip([r.x_lo, r.x_hi], *lim_x)
        y0, y1 = np.clip([r.y_lo, r.y_hi], *lim_y)
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, color=cmap(norm(r.diff)), lw=0))
    ax.set_xlim(*lim_x)
    ax.set_ylim(*lim_y)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"share of {a}'s seeds − share of {b}'s")
    ax.set_xlabel(_label(names[0], directions))
    ax.set_ylabel(_label(names[1], directions))
    return fig



def relearning(curve: pd.DataFrame, metric: str, directions: dict | None = None) -> Figure:
    """The relearning curve (analysis.robustness.relearning_curve): `metric` on the evaluated half
    after K relearning steps, one line per setting, No-unlearn dashed black; and, beside it, the
    share of the forgetting undone at each K."""
    fig = Figure(figsize=(10.0, 3.6))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    settings = list(dict.fromkeys(curve["setting"])) if len(curve) else []
    # a colour per method, a line style per the rest of the name (its rate): "NGDiff (η=1e-03)"
    method = {s: s.split(" (")[0] for s in settings}
    rest = list(dict.fromkeys(s[len(method[s]):] for s in settings if s != "No-unlearn"))
    colors = _colors([method[s] for s in settings if s != "No-unlearn"])
    for setting in settings:
        c = curve[curve["setting"] == setting].sort_values("K")
        base = setting == "No-unlearn"
        ls = ("-", ":", "-.", (0, (5, 1)))[rest.index(setting[len(method[setting]):]) % 4] if not base else "--"
        style = dict(color="black", ls="--") if base else dict(color=colors[method[setting]], ls=ls)
        left.plot(c["K"], c["value"], marker="o", ms=3, label=setting, **style)
        if not base and "undone" in c and c["undone"].notna().any():
            right.plot(c["K"], c["undone"], marker="o", ms=3, **style)
    if not settings:
        _empty(left)
    left.set_xlabel("relearning steps K")
    left.set_ylabel(_label(metric, directions) + " (evaluated half)")
    right.set_xlabel("relearning steps K")
    right.set_ylabel("share of the forgetting undone")
    right.axhline(0, color="grey", lw=0.6)
    if settings:
        fig.legend(*left.get_legend_handles_labels(), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig
