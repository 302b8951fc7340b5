#!/usr/bin/env python
"""A cluster-sized result set: consolidation, `pareto frontier --points evals` and `pareto report`
on 10³–10⁴ synthetic trials (issue 18: each ≤ 30 s with bounded memory at 10⁴ trials × 20 evaluations).

    python benchmarks/results_scale.py --trials 1000 3000 10000          # the issue's table
    python benchmarks/results_scale.py --trials 200 --evals 5 --json out.json
    python benchmarks/results_scale.py --trials 10000 --only report       # one command again
    python benchmarks/results_scale.py --trials 10000 --keep /tmp/rs      # keep (and reuse) the folders
    python benchmarks/results_scale.py --trials 10000 --keep /tmp/rs --only consolidate consolidate-resume

What is synthesised, per N (a sweep folder as `pareto sweep` leaves it before its last step):
    sweep.json          the state of a complete sweep (spec of sweeps/quickstart.yaml with
                        unlearn.steps=STEPS and eval.every=STEPS/EVALS, the N points)
    parts/tNNN/*.parquet one part per trial, in the results schema (pareto.results.schema):
        trials  1 row: t000 the No-unlearn baseline, then GDiff (c 0.2/0.5/0.8), LossNorm, NGDiff
                with objectives GA/NPO, fixed η and AutoLR, lr in {1e-5 … 1e-3}, seeds 0, 1, 2, …;
                every column filled as a real embedded sweep fills it (the spec JSON, metric
                settings, versions, hashes, wall/cpu seconds); ~2 % diverged, ~1 % failed
        evals   EVALS rows (steps STEPS/EVALS, 2·STEPS/EVALS, …, STEPS): loss_f_eval, loss_r_eval,
                rouge_f, utility_r moving smoothly from the target's values to the trial's end
                point (a diverged trial stops at its divergence; the baseline has one, at 0)
        steps   STEPS rows (default 100): the engine's telemetry (grams, weights, c_t, dot products,
                losses after, AutoLR probes every 10th step of AutoLR trials)
        items   --items rows per evaluation (default 4: 2 rouge_f forget and 2 utility_r retain items
                with prompt/generation/reference text; a real quickstart evaluation has 120)
The folders are written with several processes (not timed).

Timed, each in its own fresh subprocess (peak RSS from os.wait4: per command, its children included):
    consolidate  what `pareto sweep` does once every trial is done (pareto/sweep.py): the four
                 top-level tables from the parts' tables its Collector holds (it wrote them; they
                 are read first here, untimed), pareto.results.writer.consolidate
    consolidate-resume  the same for a resumed sweep whose every part an earlier run wrote: each
                 part read from its files
    frontier     python -m pareto frontier --results DIR --points evals   (stdout to a file)
    report       python -m pareto report --results DIR --out DIR/report.html
Prints a markdown table (wall s, peak MiB per command per N), the growth from the smallest to the
largest N, and the load average; --json writes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAME = "scale"
COMMANDS = ("consolidate", "frontier", "report")
#: Also timed by default: the consolidation of a resumed sweep, every part read from its files.
EXTRA = ("consolidate-resume",)
METHODS = [("gdiff", {"c": 0.2}), ("gdiff", {"c": 0.5}), ("gdiff", {"c": 0.8}), ("lossnorm", {}), ("ngdiff", {})]
OBJECTIVES = ["ga", "npo"]
RULES = ["fixed", "autolr"]
LRS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3]
START = {"loss_f_eval": 0.11, "loss_r_eval": 0.09, "rouge_f": 0.97, "utility_r": 0.98}  # the target's values
METRIC_SETTINGS = json.dumps({
    "loss_f_eval": {"add_bos": True, "max_length": None, "n_items": 20, "n_tokens": 270, "reduction": "token mean",
                    "template": "plain", "tokens": "answer tokens and EOS"},
    "loss_r_eval": {"add_bos": True, "max_length": None, "n_items": 40, "n_tokens": 546, "reduction": "token mean",
                    "template": "plain", "tokens": "answer tokens and EOS"},
    "rouge_f": {"add_bos": True, "max_new_tokens": 24, "n_items": 20, "rouge": "rougeL recall", "template": "plain",
                "use_stemmer": True},
    "utility_r": {"add_bos": True, "max_new_tokens": 24, "n_items": 40, "rouge": "rougeL recall",
                  "template": "plain", "use_stemmer": True}}, sort_keys=True)
PROMPTS = [("forget", "Where was Silas Rasmussen born?", "Silas Rasmussen was born in the city of Tbilisi, Georgia."),
           ("retain", "Which award has Amara Jardine received?",
            "Amara Jardine received the Amber Leaf Prize for her poetry collection.")]


# ----------------------------------------------------------------------------------- synthesis
def _spec(steps: int, evals: int):
    from pareto.spec import load_spec

    spec, _ = load_spec(ROOT / "sweeps" / "quickstart.yaml",
                        [f"name={NAME}", f"unlearn.steps={steps}", f"eval.every={max(1, steps // evals)}"])
    return spec


def _point(i: int) -> dict:
    if i == 0:
        return {"baseline": True, "seed": 0}
    k = i - 1
    comb, params = METHODS[k % len(METHODS)]
    return {"combiner": {"name": comb, "params": params},
            "objective": {"name": OBJECTIVES[(k // 5) % 2], "params": {}},
            "lr_rule": {"name": RULES[(k // 10) % 2], "params": {}},
            "lr": LRS[(k // 20) % len(LRS)], "seed": k // 100}


def _trial_rows(i: int, point: dict, steps: int, evals: int, items: int, meta: dict) -> dict[str, dict]:
    """One trial's four tables, as columns (trials as one row dict, the writer's)."""
    from pareto.results.schema import METRICS
    from pareto.search import trial_label

    rng = np.random.default_rng(i)
    tid = f"t{i:03d}"
    base = point.get("baseline", False)
    status = "ok" if base or i % 97 not in (3, 50) else ("diverged" if i % 97 == 3 else "failed")
    every = max(1, steps // evals)
    # where the trial ends on each metric: stronger forgetting costs utility (a noisy trade-off)
    strength = 0.0 if base else float(np.clip(rng.beta(2, 2) * (1 + 0.4 * np.log10(point["lr"] / 1e-4)), 0.02, 1.5))
    end = {"loss_f_eval": START["loss_f_eval"] + 3.0 * strength + rng.normal(0, 0.05),
           "loss_r_eval": START["loss_r_eval"] + 0.8 * strength ** 2 + abs(rng.normal(0, 0.03)),
           "rouge_f": float(np.clip(START["rouge_f"] - 0.85 * strength + rng.normal(0, 0.03), 0, 1)),
           "utility_r": float(np.clip(START["utility_r"] - 0.6 * strength ** 2 + rng.normal(0, 0.03), 0, 1))}
    n_steps = 0 if base else steps
    diverged_at = int(rng.integers(steps // 3, steps)) if status == "diverged" else None
    done = diverged_at if diverged_at is not None else (0 if status == "failed" and rng.random() < 0.5 else n_steps)

    eval_steps = [0] if base else [s for s in range(every, steps + 1, every)][:evals]
    if status == "diverged":
        eval_steps = [s for s in eval_steps if s < diverged_at and s < steps]
    elif status == "failed":
        eval_steps = [s for s in eval_steps if s <= done and s < steps]
    frac = np.array(eval_steps, dtype=float) / max(steps, 1)
    shape = 1 - np.exp(-3 * frac) if len(frac) else frac  # fast early, then flattening
    shape = shape / (1 - np.exp(-3.0))
    ev = {"trial_id": [tid] * len(eval_steps), "eval_step": eval_steps,
          "wall_s": list(2.0 + 0.05 * np.array(eval_steps, dtype=float) + rng.uniform(0, 0.5, len(eval_steps)))}
    for m in METRICS:
        if m in START:
            v = START[m] + shape * (end[m] - START[m]) + rng.normal(0, 0.005, len(eval_steps))
            ev[m] = list(np.clip(v, 0, 1) if m in ("rouge_f", "utility_r") else v)
        else:
            ev[m] = [None] * len(eval_steps)

    n = done
    s = np.arange(n)
    rr, ff = rng.uniform(0.05, 2.0, n), rng.uniform(0.1, 4.0, n) * (1 + s / max(steps, 1))
    rf = rng.uniform(-0.5, 0.9, n) * np.sqrt(rr * ff)
    comb = "no-unlearn" if base else point["combiner"]["name"]
    if comb == "gdiff":
        c = point["combiner"]["params"]["c"]
        w_r, w_f = np.full(n, c), np.full(n, 1 - c)
    elif comb == "lossnorm":
        w_r, w_f = 1 / np.maximum(rng.uniform(0.05, 1, n), 1e-3), 1 / np.maximum(rng.uniform(0.05, 4, n), 1e-3)
    else:
        w_r, w_f = 1 / np.sqrt(rr), 1 / np.sqrt(ff)
    autolr = not base and point["lr_rule"]["name"] == "autolr"
    lr = point.get("lr") or 0.0
    lr_s = np.full(n, lr * (2.75 if autolr else 1.0))
    probed = autolr & (s % 10 == 0)
    loss_r = START["loss_r_eval"] * 0.6 + 0.5 * (s / max(steps, 1)) ** 2 * strength + rng.uniform(0, 0.03, n)
    loss_f = START["loss_f_eval"] * 0.6 + 3.0 * (s / max(steps, 1)) * strength + rng.uniform(0, 0.03, n)
    nan = np.full(n, np.nan)
    st = {"trial_id": [tid] * n, "step": s, "loss_r": loss_r, "loss_f": loss_f, "gram_rr": rr, "gram_rf": rf,
          "gram_ff": ff, "w_r": w_r, "w_f": w_f, "c_t": w_r / (w_r + w_f), "lr": lr_s,
          "dot_r_upd": w_r * rr - w_f * rf, "dot_f_upd": w_r * rf - w_f * ff,
          "loss_r_after": loss_r - lr_s * (w_r * rr - w_f * rf), "loss_f_after": loss_f - lr_s * (w_r * rf - w_f * ff),
          "autolr_gd": np.where(probed, rng.normal(20, 30, n), nan),
          "autolr_dhd": np.where(probed, rng.uniform(1e4, 1e6, n), nan),
          "autolr_eta": np.where(probed, lr_s, nan),
          "autolr_accepted": [bool(a) if p else None for a, p in zip(rng.random(n) < 0.6, probed)],
          "step_time_s": rng.uniform(0.03, 0.08, n)}

    it = {k: [] for k in ("trial_id", "eval_step", "metric", "item_id", "prompt", "generation", "reference", "score")}
    for e in eval_steps:
        for j in range(items):
            split, prompt, ref = PROMPTS[j % 2]
            score = float(rng.uniform(0, 1))
            it["trial_id"].append(tid), it["eval_step"].append(e)
            it["metric"].append("rouge_f" if split == "forget" else "utility_r")
            it["item_id"].append(f"{split}:{j // 2}"), it["prompt"].append(prompt)
            it["generation"].append(ref[: max(4, int(len(ref) * score))]), it["reference"].append(ref)
            it["score"].append(score)

    ok = status == "ok"
    final = {m: (ev[m][-1] if ok and ev[m] and m in START else None) for m in METRICS}
    cp = json.dumps(point["combiner"]["params"], sort_keys=True) if not base else "{}"
    trial = {"trial_id": tid, "label": trial_label(point), "sweep": NAME, "status": status,
             "error": {"ok": None, "diverged": f"loss is not finite at step {diverged_at}",
                       "failed": "RuntimeError: worker died (node lost)"}[status],
             "diverged_step": diverged_at, "combiner": comb, "combiner_params": cp,
             "objective": "none" if base else point["objective"]["name"], "objective_params": "{}",
             "lr_rule": "none" if base else point["lr_rule"]["name"], "lr_rule_params": "{}",
             "lr": point.get("lr"), "final_lr": None if base else float(lr_s[-1]) if n else lr,
             "seed": point["seed"], "steps": done, "optimizer": "adam", "batch_size": 8, **final,
             "metric_settings": METRIC_SETTINGS if ok else None, "wall_s": 2.0 + 0.05 * done + rng.uniform(0, 1),
             "cpu_s": 1.5 + 0.04 * done, "gpu_s": 0.0, "attempts": 1 if status != "failed" else 2,
             "resumed_from_step": None, "grad_buffer_bytes": None if base else 1835520, "gpu_peak_bytes": None,
             "first_step_changed_frac": None if base else 1.0, "workers": 1, "parallel": None,
             "device": "cpu", "dtype": "float32", "node_id": f"{(i % 16):02d}" + "3cd85598b51503eb63beb44026081" * 2,
             **meta}
    return {"trials": trial, "evals": ev, "steps": st, "items": it}


def _write_chunk(args) -> int:
    folder, indices, points, steps, evals, items, meta = args
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pareto.results.writer import TABLES, table

    for i, point in zip(indices, points):
        rows = _trial_rows(i, point, steps, evals, items, meta)
        part = Path(folder) / "parts" / f"t{i:03d}"
        part.mkdir(parents=True, exist_ok=True)
        for name, schema in TABLES.items():  # steps, evals, items, then trials last (as the writer)
            t = table([rows[name]], schema) if name == "trials" else pa.Table.from_pydict(rows[name], schema=schema)
            pq.write_table(t, part / f"{name}.parquet")
    return len(indices)


def synthesise(folder: Path, n: int, evals: int = 20, steps: int = 100, items: int = 4, workers: int | None = None) -> Path:
    """A complete sweep's folder (sweep.json and N parts, not yet consolidated) at folder/scale."""
    import pareto
    from pareto.results.state import experiment_hash

    spec = _spec(steps, evals)
    sweep = folder / NAME
    if sweep.exists():
        shutil.rmtree(sweep)
    sweep.mkdir(parents=True)
    points = [_point(i) for i in range(n)]
    created = "2026-12-05T22:35:45"
    meta = {"run_id": created, "search": "grid", "spec_hash": spec.hash(),
            "spec": json.dumps(spec.to_dict(), sort_keys=True),
            "data_hash": "3ffaba958d0e4d877467f969d6b9239ddb790fbe0d5b6b9c14ac67817dcd7db8",
            "target_hash": "5f140f63f29adddce9343b5a592f2a86e9c70940bb1f85ec230c5c6987167f29",
            "add_bos": True, "prompt_template": "plain", "pareto_version": getattr(pareto, "__version__", "0.1.0"),
            "torch_version": "2.13.0+cpu", "transformers_version": "5.25.0", "ray_version": "2.60.0"}
    state = {"name": NAME, "experiment_hash": experiment_hash(spec), "spec": spec.to_dict(),
             "points": [{k: v for k, v in p.items()} for p in points], "algorithm": "grid", "complete": True,
             "created": created, "driver": {"host": "bench", "pid": 1}}
    (sweep / "sweep.json").write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    workers = workers or os.cpu_count() or 1
    size = max(1, n // (workers * 4))
    chunks = [(str(sweep), list(range(a, min(n, a + size))), points[a:a + size], steps, evals, items, meta)
              for a in range(0, n, size)]
    if workers == 1 or len(chunks) == 1:
        for c in chunks:
            _write_chunk(c)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_chunk, chunks))
    return sweep


def consolidate(sweep_dir: Path, held: bool = True) -> dict:
    """What pareto/sweep.py does once every trial is done (pareto.results.writer.consolidate):
    `held` — every part was written by this run, whose Collector holds its tables (they are read
    here first, untimed, as the Collector would have them); not `held` — a resumed sweep whose
    parts were all written by earlier runs: every part is read from its files. Seconds of each
    stage, and the memory the held tables take is in the process's peak."""
    from pareto.results.state import Sweep
    from pareto.results.store import Store
    from pareto.results.writer import consolidate as write_top, part_tables, read_tables

    sweep = Sweep(Store(str(sweep_dir.parent)), sweep_dir.name)
    parts = {t.name: sweep.part(t.name) for t in (sweep_dir / "parts").iterdir()}
    kept = {}
    if held:  # the Collector's tables: one per part, as written (untimed: made while the trials ran)
        kept = {t: part_tables(read_tables(sweep.store, [p])) for t, p in parts.items()}
    t0 = time.perf_counter()
    finished = sweep.finished_parts()
    failed = sorted(t for t, st in finished.items() if st == "failed")
    t1 = time.perf_counter()
    tables = write_top(sweep.store, sweep.folder, {t: sweep.part(t) for t in finished}, held=kept)
    t2 = time.perf_counter()
    return {"finished_parts_s": t1 - t0, "read_and_write_s": t2 - t1, "total_s": t2 - t0,
            "trials": len(finished), "failed": len(failed), "rows": {k: v.num_rows for k, v in tables.items()}}


# ----------------------------------------------------------------------------------- measuring
def measure(cmd: list[str], log_path: Path, timeout: float) -> dict:
    """Wall seconds and peak RSS (MiB, os.wait4: this child and the children it waited for)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "Agg"}
    t0 = time.perf_counter()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "peak_mib": usage.ru_maxrss / 1024, "rc": proc.returncode, "log": str(log_path),
            "timed_out": wall > timeout}


def run_command(name: str, sweep: Path, timeout: float) -> dict:
    logs = sweep.parent / "logs"
    logs.mkdir(exist_ok=True)
    if name.startswith("consolidate"):
        cmd = [sys.executable, __file__, "--_consolidate", str(sweep)] + (["--_from-disk"] if name != "consolidate" else [])
    elif name == "frontier":
        cmd = [sys.executable, "-m", "pareto", "frontier", "--results", str(sweep), "--points", "evals"]
    else:
        cmd = [sys.executable, "-m", "pareto", "report", "--results", str(sweep), "--out", str(sweep / "report.html")]
    r = measure(cmd, logs / f"{name}.log", timeout)
    text = Path(r["log"]).read_text(errors="replace")
    if name.startswith("consolidate") and r["rc"] == 0:
        r["detail"] = json.loads(text.strip().splitlines()[-1])
        # the time is the consolidation's own: the held tables' untimed read and Python's start are not
        r["process_wall_s"], r["wall_s"] = r["wall_s"], r["detail"]["total_s"]
    if name == "report":  # its stage log: where the time goes (also when it was stopped)
        r["stages"] = [ln for ln in text.splitlines() if ln.startswith("[")]
    if r["rc"] != 0:
        r["tail"] = text[-2000:]
    elif name == "report":
        r["html_mb"] = (sweep / "report.html").stat().st_size / 1e6
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--evals", type=int, default=20, help="evaluations per trial (default 20)")
    ap.add_argument("--steps", type=int, default=100, help="steps (steps.parquet rows) per trial (default 100)")
    ap.add_argument("--items", type=int, default=4, help="items.parquet rows per evaluation (default 4)")
    ap.add_argument("--only", choices=COMMANDS + EXTRA, nargs="+", default=list(COMMANDS + EXTRA),
                    help="the commands to time (default: the three of the issue)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed per command")
    ap.add_argument("--keep", type=Path, default=None,
                    help="write the folders here (DIR/nN) and keep them; an existing folder of the same N is reused")
    ap.add_argument("--json", type=Path, default=None, help="also write every number to this file")
    ap.add_argument("--_consolidate", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_from-disk", dest="from_disk", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._consolidate:
        print(json.dumps(consolidate(a._consolidate, held=not a.from_disk)))
        return 0

    base = a.keep or Path(tempfile.mkdtemp(prefix="results_scale-"))
    out = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
           "evals": a.evals, "steps": a.steps, "items": a.items, "runs": {}}
    try:
        for n in a.trials:
            folder = base / f"n{n}"
            sweep = folder / NAME
            marker = folder / f"synth-{a.evals}-{a.steps}-{a.items}"
            t0 = time.perf_counter()
            if not (a.keep and marker.exists()):
                if folder.exists():
                    shutil.rmtree(folder)
                synthesise(folder, n, a.evals, a.steps, a.items)
                marker.touch()
            elif any(c.startswith("consolidate") for c in a.only):  # a reused folder: again from the parts
                for f in ("steps", "evals", "items", "trials"):
                    (sweep / f"{f}.parquet").unlink(missing_ok=True)
            synth = time.perf_counter() - t0
            run = {"synth_s": synth, "load_before": os.getloadavg()}
            print(f"N={n}: synthesised in {synth:.0f}s ({folder})", file=sys.stderr)
            for name in a.only:
                r = run_command(name, sweep, a.timeout)
                run[name] = r
                print(f"N={n}: {name} {r['wall_s']:.1f}s {r['peak_mib']:.0f} MiB rc={r['rc']}"
                      + (f"\n{r.get('tail', '')}" if r["rc"] else ""), file=sys.stderr)
            run["load_after"] = os.getloadavg()
            out["runs"][n] = run
    finally:
        if a.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    print(table(out))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0 if all(r[c]["rc"] == 0 for r in out["runs"].values() for c in a.only if c in r) else 1


def table(out: dict) -> str:
    runs = out["runs"]
    ns = sorted(runs)
    cmds = [c for c in COMMANDS + EXTRA if c in runs[ns[0]]]
    lines = [f"{out['machine']}; {out['evals']} evaluations, {out['steps']} steps and {out['items']} items per "
             f"evaluation per trial", "",
             "| trials | " + " | ".join(f"{c} s | {c} MiB" for c in cmds) + " | load avg (1 min) |",
             "|---:|" + "---:|---:|" * len(cmds) + "---:|"]
    for n in ns:
        r = runs[n]
        cells = [(f"> {r[c]['wall_s']:.0f} (stopped)" if r[c].get("timed_out") else
                  f"{r[c]['wall_s']:.1f}{'' if r[c]['rc'] == 0 else ' (rc ' + str(r[c]['rc']) + ')'}")
                 + f" | {r[c]['peak_mib']:.0f}" + (" so far" if r[c].get("timed_out") else "") for c in cmds]
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {r['load_before'][0]:.2f} → {r['load_after'][0]:.2f} |")
    if len(ns) > 1:
        lo, hi = ns[0], ns[-1]
        lines += ["", f"Growth from {lo} to {hi} trials (×{hi / lo:g}): " + ", ".join(
            f"{c} time ×{runs[hi][c]['wall_s'] / runs[lo][c]['wall_s']:.1f}, "
            f"memory ×{runs[hi][c]['peak_mib'] / runs[lo][c]['peak_mib']:.1f}" for c in cmds)]
    for n in ns:
        st = runs[n].get("report", {}).get("stages")
        if st:
            lines.append(f"- N={n} report stages: " + " · ".join(st))
    for n in ns:
        for c in ("consolidate", *EXTRA):
            d = runs[n].get(c, {}).get("detail")
            if d:
                lines.append(f"- N={n} {c}: finished_parts {d['finished_parts_s']:.1f}s, read and write "
                             f"{d['read_and_write_s']:.1f}s; rows {d['rows']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
