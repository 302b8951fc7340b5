"""The loss landscape along one step's update (the paper's Fig. 4), from a sweep's results.

    L_R(θ_K − η·u_K) and L_F(θ_K − η·u_K) for a grid of η

where θ_K is a trial's model before its step K and u_K the step its optimizer took there
(θ_{K+1} = θ_K − η_K·u_K; u = d for SGD, Adam's preconditioned d for Adam). The results hold no
model, so θ_K is rebuilt: the trial's recorded spec and grid point (`trials.parquet`) are run again
from the target, exactly as `trainables/unlearn.py` runs a trial (same seeds, threads, device,
batch streams, components and engine), for K steps. Step K itself runs through the engine too;
a wrapper around its lr rule — called once d is formed in `.grad` and before the optimizer steps —
evaluates the landscape and restores θ bit for bit, so the trial then goes on as it did.

What comes back is checked against what the trial recorded (`steps.parquet`): the rebuilt step's
losses, Gram matrix and η (`repro_rel_err`); at η = 0 the probe's losses are the step's `loss_r`,
`loss_f`, and at η = η_K they are `loss_r_after`, `loss_f_after` (tests).

The table, one row per (η, data):

    trial_id, step, data ("batch": the step's own two batches; "full": every forget / retain
    example, the mean of the per-batch losses weighted by examples), eta, loss_r, loss_f,
    and, the same on every row of one probe: eta_used (η_K), eta_in (η entering the step: AutoLR's
    probe width), fit_gd, fit_dhd, fit_eta, fit_source (the parabola L_R(θ − η·u) ≈ L₀ − η·fit_gd
    + ½η²·fit_dhd: AutoLR's own fit when it probed at step K, else the same three-point formula at
    ±eta_in measured here), gr_u, gf_u (exact g_R·u and g_F·u: −dL/dη at η = 0), gr_d, gf_d (g_R·d,
    g_F·d, recomputed), rec_* (the recorded step row), repro_rel_err, label, combiner, lr_rule,
    optimizer.

Memory: θ, u, and one gradient at a time (three model-sized copies beside the trial's own).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["ProbeError", "TrialRecord", "load_trial", "default_etas", "probe_step", "save_probe",
           "PROBE_FILE"]

PROBE_FILE = "probe.parquet"
_REPRO_COLUMNS = ("loss_r", "loss_f", "gram_rr", "gram_rf", "gram_ff", "lr", "loss_r_after", "loss_f_after")


class ProbeError(ValueError):
    """Input the probe cannot use; the message names the problem and the fix."""


# ------------------------------------------------------------------------------ the trial's record
@dataclass
class TrialRecord:
    """What the results say about one trial: its row, its spec, its grid point and its step rows."""

    folder: str
    trial: dict
    spec: dict
    point: dict
    steps: pd.DataFrame  # this trial's rows of steps.parquet, by step

    @property
    def trial_id(self) -> str:
        return str(self.trial["trial_id"])

    def step_row(self, step: int) -> dict:
        return self.steps[self.steps["step"] == step].iloc[0].to_dict()


def _point(row: dict) -> dict:
    """The trial's grid point, rebuilt from its trials.parquet row (what `run_trial` received)."""
    def comp(key: str) -> dict:
        return {"name": row[key], "params": json.loads(row.get(f"{key}_params") or "{}")}

    return {"combiner": comp("combiner"), "objective": comp("objective"), "lr_rule": comp("lr_rule"),
            "lr": float(row["lr"]), "seed": int(row["seed"])}


def load_trial(results: str, trial_id: str, step: int) -> TrialRecord:
    """Read and check a trial and step of a sweep folder (pyarrow only: fast, no torch).

    Raises ProbeError naming the problem and the fix: no results, an unknown trial, the
    No-unlearn baseline, a failed trial, a step it never took."""
    from analysis.results import load_results

    try:
        res = load_results(results)
    except FileNotFoundError:
        raise ProbeError(f"{results} holds no trials.parquet. Pass --results with the folder `pareto sweep` "
                         "printed.") from None
    t = res.trials
    if t.empty or trial_id not in set(t["trial_id"]):
        ids = sorted(t["trial_id"]) if len(t) else []
        shown = ", ".join(ids[:12]) + (" …" if len(ids) > 12 else "")
        raise ProbeError(f"no trial {trial_id!r} in {results}; its trials are: {shown or 'none'}. "
                         "`pareto frontier --results DIR` lists them with their labels.")
    row = t[t["trial_id"] == trial_id].iloc[0].to_dict()
    label = row.get("label", trial_id)
    unlearning = t[(t["combiner"] != "no-unlearn") & (t["status"].isin(["ok", "stopped", "diverged"]))]
    others = ", ".join(unlearning["trial_id"].head(8)) or "none"
    if row.get("combiner") == "no-unlearn":
        raise ProbeError(f"{trial_id} is the No-unlearn baseline ({label}): it takes no steps, so there is no "
                         f"update to probe. Pick an unlearning trial: {others}.")
    if row.get("status") == "failed":
        raise ProbeError(f"{trial_id} ({label}) failed ({row.get('error') or 'no error recorded'}) and has no "
                         f"steps to probe. Pick another trial ({others}) or rerun it with "
                         "`pareto sweep SPEC --resume`.")
    steps = res.steps[res.steps["trial_id"] == trial_id].sort_values("step") if len(res.steps) else res.steps
    if steps is None or len(steps) == 0:
        raise ProbeError(f"{results} has no step rows for {trial_id} (steps.parquet missing or without it): "
                         "the probe checks its reconstruction against them. Use the complete sweep folder.")
    done = [int(s) for s in steps["step"]]
    if step < 0 or step not in done:
        raise ProbeError(f"{trial_id} ({label}) has steps 0…{max(done)} recorded; step {step} is not one of "
                         f"them. Pass --step between 0 and {max(done)}.")
    spec_text = row.get("spec")
    if not isinstance(spec_text, str):
        raise ProbeError(f"{trial_id} has no recorded spec (the `spec` column of trials.parquet): these "
                         "results predate it and cannot be replayed. Rerun the sweep.")
    return TrialRecord(str(results), row, json.loads(spec_text), _point(row), steps.reset_index(drop=True))


# --------------------------------------------------------------------------------- the η grid
def default_etas(eta_in: float, eta_used: float, eta_star: float = math.nan, span: float = 3.0,
                 n: int = 49) -> np.ndarray:
    """A grid symmetric about 0: n linear points on [−span·s, span·s] and ±s·{0.001, 0.01, 0.1}
    near 0 (the slope), with s = max(η_in, η_used, η*), plus 0, ±η_in, η_used and η* themselves.

    >>> g = default_etas(0.01, 0.02, 0.05, n=5)  # s = η* = 0.05
    >>> round(float(g.min()), 6), round(float(g.max()), 6), {0.0, 0.01, -0.01, 0.02, 0.05} <= set(g)
    (-0.15, 0.15, True)
    """
    star = eta_star if math.isfinite(eta_star) and eta_star > 0 else 0.0
    s = max(abs(eta_in), abs(eta_used), star)
    if not s > 0:
        raise ProbeError(f"the step's learning rate is {eta_used!r}: there is no scale for the η grid. "
                         "Pass --etas explicitly.")
    near = s * np.array([1e-3, 1e-2, 1e-1])
    pts = [np.linspace(-span * s, span * s, n), near, -near, [0.0, eta_in, -eta_in, eta_used]]
    if star:
        pts.append([star])
    return np.unique(np.concatenate([np.asarray(p, dtype=float) for p in pts]))


# ------------------------------------------------------------------------------------ the probe
def _components(rec: TrialRecord, target_dir: Path, device: str):
    """The trial's model, batch streams and engine, set up by `start_trial` — the function the trial
    itself ran (same threads, seeds, device, memory options, components; a trial that ran on several
    workers is replayed in one process on the same global batches). Returns (model, forget, retain,
    engine, measure_every, batch): `batch(stream)` is the trial's next batch on the device."""
    from trainables.unlearn import start_trial

    setup = {"spec": rec.spec, "target_dir": str(target_dir)}
    trial = start_trial(setup, rec.point, device=device)
    return (trial.model, trial.forget, trial.retain, trial.engine, rec.spec["unlearn"]["measure_after_every"],
            trial.batch)


class _Landscape:
    """Wraps the trial's lr rule; at step `at` (d formed in `.grad`, the optimizer not yet stepped)
    it lets the rule pick η, then measures the losses along −u and restores θ exactly."""

    def __init__(self, rule, engine, at: int, etas, full: bool, forget, retain, device) -> None:
        self.rule, self.engine, self.at, self.etas, self.full = rule, engine, at, etas, full
        self.forget, self.retain, self.device = forget, retain, device
        self.batches: tuple[dict, dict] | None = None
        self.out: dict | None = None

    def next_lr(self, step, lr, probe):
        eta, fit = self.rule.next_lr(step, lr, probe)
        if step == self.at:
            self.out = self._measure(lr, eta, fit)
        return eta, fit

    def _losses(self, rb, fb) -> tuple[float, float]:
        e = self.engine  # batches or lists of micro-batches, under the trial's autocast
        return e.loss_value(e.retain_loss, rb), e.loss_value(e.objective.value, fb)

    def _full(self) -> tuple[float, float]:
        """Example-weighted mean of the step losses over every retain / forget example, in batches."""
        from pareto.data.qa import to_device

        e = self.engine
        vals = []
        for stream, fn in ((self.retain, e.retain_loss), (self.forget, e.objective.value)):
            tot = n = 0.0
            for b in stream.all():
                k = len(b["index"]) if "index" in b else len(next(iter(b.values())))
                tot += e.loss_value(fn, to_device(b, self.device)) * k
                n += k
            vals.append(tot / n)
        return vals[0], vals[1]

    def _grad_dots(self, u, d) -> dict:
        """g_R·u, g_F·u, g_R·d, g_F·d, with g_R and g_F recomputed on the step's batches (one at a
        time, through the engine: its micro-batches, normalisers and autocast, as the step took
        them); `.grad` holds d again afterwards."""
        import torch

        from pareto.core.engine import as_micro_batches

        e, (rb, fb) = self.engine, self.batches
        out = {}
        flat = torch.zeros_like(e._flat_r)
        views = e._views(flat)
        for key, fn, batch in (("r", e.retain_loss, rb), ("f", e.objective.value, fb)):
            e._backward(fn, as_micro_batches(batch), flat, views)
            out[f"g{key}_u"] = sum(float((a.double() * b.double()).sum()) for a, b in zip(views, u))
            out[f"g{key}_d"] = sum(float((a.double() * b.double()).sum()) for a, b in zip(views, d))
        del flat, views
        if e._flat_s is not None:  # the backward used the parameter-dtype scratch that held d: again
            e._flat_s.copy_(e._flat_g)
        for p, v in zip(e.params, d):
            p.grad = v
        return out

    def _measure(self, eta_in: float, eta_used: float, fit) -> dict:
        import torch

        from pareto.core.optim import step_direction

        e, (rb, fb) = self.engine, self.batches
        with torch.no_grad():
            d = [p.grad for p in e.params]
            theta = [p.detach().clone() for p in e.params]
            u = [step_direction(e.optimizer, p) for p in e.params]  # from the untouched optimizer state
        dots = self._grad_dots(u, d)
        cache: dict[float, tuple] = {}

        @torch.no_grad()
        def at(eta: float) -> tuple:
            eta = float(eta)
            if eta not in cache:
                for p, t, v in zip(e.params, theta, u):
                    p.copy_(t).add_(v, alpha=-eta)
                cache[eta] = (*self._losses(rb, fb), *(self._full() if self.full else (math.nan, math.nan)))
            return cache[eta]

        if fit is not None:  # AutoLR probed at this step: its own fit (width η_in)
            gd, dhd, source = fit.gd, fit.dhd, "autolr" + ("" if fit.accepted else " (rejected)")
        else:  # the same three-point formula, measured here at ±η_in
            # at(η) is L(θ − η·u): the probe's "plus" point θ + η_in·u is at(−η_in)
            (l0, *_), (plus, *_), (minus, *_) = at(0.0), at(-eta_in), at(eta_in)
            gd, dhd, source = (plus - minus) / (2 * eta_in), (plus + minus - 2 * l0) / eta_in ** 2, "three-point"
        star = gd / dhd if gd > 0 and dhd > 0 else math.nan
        etas = self.etas if self.etas is not None else default_etas(eta_in, eta_used, star)
        grid = np.unique(np.concatenate([np.asarray(etas, dtype=float), [0.0, eta_used]]))
        values = [at(x) for x in grid]
        with torch.no_grad():
            for p, t in zip(e.params, theta):
                p.copy_(t)
        return {"grid": grid, "values": values, "eta_in": eta_in, "eta_used": eta_used, "fit_gd": gd,
                "fit_dhd": dhd, "fit_eta": star, "fit_source": source, **dots}


def probe_step(rec: TrialRecord, step: int, etas: Sequence[float] | None = None, full: bool = False,
               target_dir: str | Path | None = None, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Rebuild the trial's model at `step` and measure L_R, L_F along its update (see the module).

    `target_dir`: the target the trial unlearned (default: prepared from the recorded spec, as
    `pareto sweep` does — found in the cache, or built). Returns the probe table."""
    import torch

    if target_dir is None:
        target_dir = _target(rec, log)
    target_dir = Path(target_dir)
    manifest = json.loads((target_dir / "manifest.json").read_text())
    want = rec.trial.get("target_hash")
    if isinstance(want, str) and manifest.get("hash") != want:
        raise ProbeError(f"the target at {target_dir} (hash {str(manifest.get('hash'))[:16]}) is not the one "
                         f"{rec.trial_id} unlearned (hash {want[:16]}); rebuild it with `pareto target` on the "
                         "sweep's spec or point PARETO_CACHE at the cache the sweep used.")
    unlearn = rec.spec["unlearn"]
    device = str(rec.trial.get("device") or "")
    if not device or device == "nan":
        device = unlearn["device"] if unlearn["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        log(f"note: {rec.trial_id} ran on {device}; probing on the CPU (expect differences in the last digits)")
        device = "cpu"
    threads_before = torch.get_num_threads()  # start_trial sets the trial's (float sums depend on it)
    try:
        model, forget, retain, engine, every, batch = _components(rec, target_dir, device)
        wrap = _Landscape(engine.lr_rule, engine, step, etas, full, forget, retain, device)
        engine.lr_rule = wrap
        for k in range(step + 1):
            rb, fb = batch(retain), batch(forget)
            wrap.batches = (rb, fb)
            row = engine.step(rb, fb, measure_after=bool(every) and k % every == 0)
    finally:
        torch.set_num_threads(threads_before)
    return _table(rec, step, wrap.out, row, full)


def _target(rec: TrialRecord, log) -> Path:
    from pareto.prepare import prepare_target
    from pareto.spec import SpecError, parse_spec

    try:
        spec, _ = parse_spec(json.dumps(rec.spec), source=f"{rec.trial_id}'s recorded spec")
    except SpecError as exc:
        raise ProbeError(f"{rec.trial_id}'s recorded spec no longer validates ({exc}); it was written by "
                         f"pareto {rec.trial.get('pareto_version')}.") from None
    return Path(prepare_target(spec, log=log).target_dir)


def _rel(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)):
        return 0.0 if (math.isnan(a) and math.isnan(b)) or a == b else math.inf
    return abs(a - b) / max(abs(b), 1e-12)


def _table(rec: TrialRecord, step: int, out: dict, row: dict, full: bool) -> pd.DataFrame:
    recorded = rec.step_row(step)
    err = max(_rel(float(row[c]), float(recorded[c])) for c in _REPRO_COLUMNS
              if c in recorded and recorded[c] is not None)
    t = rec.trial
    const = {
        "eta_used": out["eta_used"], "eta_in": out["eta_in"],
        **{k: out[k] for k in ("fit_gd", "fit_dhd", "fit_eta", "fit_source", "gr_u", "gf_u", "gr_d", "gf_d")},
        **{f"rec_{c}": float(recorded[c]) for c in ("loss_r", "loss_f", "loss_r_after", "loss_f_after",
                                                   "dot_r_upd", "dot_f_upd", "lr")},
        "repro_rel_err": err, "label": t.get("label"), "combiner": t.get("combiner"),
        "combiner_params": t.get("combiner_params"), "objective": t.get("objective"),
        "lr_rule": t.get("lr_rule"), "lr": t.get("lr"), "optimizer": t.get("optimizer"),
    }
    rows = []
    for eta, (lr_b, lf_b, lr_f, lf_f) in zip(out["grid"], out["values"]):
        rows.append({"trial_id": rec.trial_id, "step": step, "data": "batch", "eta": float(eta),
                     "loss_r": lr_b, "loss_f": lf_b, **const})
        if full:
            rows.append({"trial_id": rec.trial_id, "step": step, "data": "full", "eta": float(eta),
                         "loss_r": lr_f, "loss_f": lf_f, **const})
    return pd.DataFrame(rows).sort_values(["data", "eta"], kind="stable").reset_index(drop=True)


def save_probe(table: pd.DataFrame, path: str) -> str:
    """Write the probe table to `path` (a local file or a URI; .csv → CSV, else Parquet). A Parquet
    file that already holds probes keeps them, except those of the same trial and step."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    if str(path).endswith(".csv"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        return str(path)
    if "://" in str(path):
        fs, where = pafs.FileSystem.from_uri(str(path))
    else:
        fs, where = pafs.LocalFileSystem(), str(Path(path).resolve())
        Path(where).parent.mkdir(parents=True, exist_ok=True)
    if fs.get_file_info(where).type != pafs.FileType.NotFound:
        old = pq.read_table(where, filesystem=fs).to_pandas()
        keys = set(zip(table["trial_id"], table["step"]))
        old = old[[(a, int(b)) not in keys for a, b in zip(old["trial_id"], old["step"])]]
        table = pd.concat([old, table], ignore_index=True) if len(old) else table
    table = table.sort_values(["trial_id", "step", "data", "eta"], kind="stable").reset_index(drop=True)
    tmp = where + ".tmp"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp, filesystem=fs)
    fs.move(tmp, where)
    return str(path)
