#!/usr/bin/env python
"""Robustness as an objective (issue 21): the relearning curve as K grows, and quantisation.

    python benchmarks/robustness_curve.py                                   # embedded only (~1 min, CPU)
    PARETO_CACHE=/path/to/cache python benchmarks/robustness_curve.py --tofu /path/to/TOFU \\
        --json docs/results/robustness_curve.json                           # both parts

Measured with the library's own functions (pareto.metrics.robustness, docs/robustness.md):

1. The relearning curve, on the embedded default target of sweeps/robustness.yaml. The models
   are that sweep's trials, made by `trainables.unlearn.run_trial` exactly as the sweep makes
   them (30 steps, batch 8, Adam, GA, seed 0, its eval settings: max_new_tokens 24, 40 retain
   items): the No-unlearn baseline (the target itself) and the unlearned models of --settings at
   lr 1e-3 (default: every combiner of the sweep). The final model of each trial is the one
   `start_trial` hands run_trial (wrapped here to keep a reference; nothing in the trial changes,
   and its own robustness columns are kept as a cross-check). Then for each relearning rate
   (--relearn-lrs) and each K (--steps), `robustness_metrics(model, …, cfg={"relearn_steps": K,
   "relearn_lr": lr})` (a deepcopy fine-tuned K Adam steps on the relearn half, batch 8) gives
   relearn_rouge_f and relearn_loss_f_eval on the evaluated half, beside half_rouge_f (K = 0) and
   the target's values. The share undone is the report's (analysis/robustness.py) on rouge_f:
   1 − (target_K − model_K) / (target_0 − model_0), the target relearnt the same K steps.
2. Quantisation: `robustness_metrics(…, cfg={"quantize": "int8" | "int4"})` on the same embedded
   models and, with --tofu, on the 40-author stand-in target of sweeps/_repro2_base.yaml (built
   or found in PARETO_CACHE, as `pareto sweep` would) and on --tofu-settings trials of
   sweeps/repro2_fixed.yaml (seed 0, run with eval.every 0: only the final evaluation). Forget
   metrics on the evaluated half (half_* → quant_*), retain metrics on the trial's retain items
   (utility_r, loss_r_eval → quant_*; TOFU: its 320 retain rows with perturbed answers).

Prints markdown tables and writes every number to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trainables.unlearn as unlearn_mod  # noqa: E402
from pareto.metrics import EvalContext, evaluate  # noqa: E402
from pareto.metrics.robustness import RETAIN_METRICS, robustness_metrics, split_forget  # noqa: E402
from pareto.prepare import prepare_target  # noqa: E402
from pareto.spec import load_spec  # noqa: E402

SETTINGS = {"gdiff-0.5": ("gdiff", {"c": 0.5}), "ngdiff": ("ngdiff", {}), "gdiff-0.2": ("gdiff", {"c": 0.2}),
            "gdiff-0.8": ("gdiff", {"c": 0.8}), "lossnorm": ("lossnorm", {}), "pcgrad": ("pcgrad", {}),
            "imtlg": ("imtlg", {}), "mgda": ("mgda", {})}


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def trial_models(spec, points, prepared, log=print) -> dict:
    """label → (Target, final model, the trial's last row) for each point, each made by run_trial.
    The model is the one `start_trial` hands run_trial (wrapped here to keep a reference; the trial
    itself is unchanged); after run_trial returns it holds the trial's final weights."""
    setup = {"spec": spec.to_dict(), "target_dir": str(prepared.target_dir), "eval_splits": prepared.eval_splits,
             "reference": prepared.reference}
    original, caught, out = unlearn_mod.start_trial, {}, {}

    def hook(*args, **kw):
        caught["trial"] = original(*args, **kw)
        return caught["trial"]

    unlearn_mod.start_trial = hook
    try:
        for label, point in points.items():
            caught.clear()
            t0 = time.perf_counter()
            last = unlearn_mod.run_trial(setup, point, lambda row, ckpt=None: None)
            if last["status"] != "ok":
                raise RuntimeError(f"{label}: the trial did not finish: {last.get('error')}")
            trial = caught["trial"]
            trial.model.eval()
            out[label] = (trial.target, trial.model, {**last, "trial_s": time.perf_counter() - t0})
            log(f"{label}: trial {time.perf_counter() - t0:.1f}s, rouge_f {last['rouge_f']:.3f}, "
                f"utility_r {last['utility_r']:.3f}, the sweep's relearn_rouge_f {last.get('relearn_rouge_f')}")
    finally:
        unlearn_mod.start_trial = original
    return out


def choose(points: list[dict], settings: str, lr: float, where: str) -> dict:
    """label → grid point: the baseline, then each of `settings` (SETTINGS' names) at `lr`, seed 0."""
    chosen = {"target (no unlearning)": next(p for p in points if p.get("baseline"))}
    for name in filter(None, settings.split(",")):
        comb, params = SETTINGS[name]
        point = next((p for p in points if not p.get("baseline") and p["combiner"]["name"] == comb
                      and p["combiner"]["params"] == params and p["lr"] == lr and p["seed"] == 0), None)
        if point is None:
            raise SystemExit(f"{where} has no trial {name} at lr {lr:g}, seed 0")
        chosen[f"{name} (lr {lr:g})"] = point
    return chosen


def relearn_curve(models: dict, spec, steps: list[int], lrs: list[float], log=print) -> dict:
    """label → lr → K → {half_*, relearn_*} (values only)."""
    metrics, batch = list(spec.eval.metrics), spec.unlearn.batch_size
    curves: dict = {}
    for label, (target, model, _) in models.items():
        for lr in lrs:
            for k in steps:
                t0 = time.perf_counter()
                values = robustness_metrics(model, target.tokenizer, target.eval_splits, target.settings, metrics,
                                            {"relearn_steps": k, "relearn_lr": lr}, batch)
                row = {name: v.value for name, v in values.items()}
                curves.setdefault(label, {}).setdefault(f"{lr:g}", {})[str(k)] = row
                log(f"{label} lr {lr:g} K {k:>3}: relearn_rouge_f {row['relearn_rouge_f']:.3f} "
                    f"relearn_loss_f_eval {row['relearn_loss_f_eval']:.3f} ({time.perf_counter() - t0:.1f}s)")
    return curves


def quantised(models: dict, metrics, batch: int, reference: dict | None = None, log=print) -> dict:
    """label → {"before": retain metrics of the model as it is, bits → the robustness columns}."""
    out: dict = {}
    retain_names = [m for m in RETAIN_METRICS if m in metrics]
    for label, (target, model, _) in models.items():
        ctx = EvalContext(model, target.tokenizer, target.eval_splits, target.settings, reference=reference or {})
        before = {n: v.value for n, v in evaluate(ctx, retain_names).items()}
        out[label] = {"before": before}
        for bits in ("int8", "int4"):
            t0 = time.perf_counter()
            values = robustness_metrics(model, target.tokenizer, target.eval_splits, target.settings, metrics,
                                        {"quantize": bits}, batch, reference)
            out[label][bits] = {n: v.value for n, v in values.items()}
            log(f"{label} {bits}: half_rouge_f {values['half_rouge_f'].value:.3f} → quant_rouge_f "
                f"{values['quant_rouge_f'].value:.3f}; utility_r {before['utility_r']:.3f} → "
                f"{values['quant_utility_r'].value:.3f} ({time.perf_counter() - t0:.1f}s)")
    return out


def curve_tables(curves: dict, lr: str, steps: list[int], base: str) -> list[str]:
    """Two tables at one relearning rate, a row per model and a column per K: relearn_rouge_f (and the
    share of the forgetting undone) and relearn_loss_f_eval, both on the evaluated half."""
    b = curves[base][lr]
    head = ["| model | " + " | ".join(f"K={k}" for k in steps) + " |", "|---" * (len(steps) + 1) + "|"]
    rouge = [f"relearn_rouge_f, relearn_lr {lr} (K=0: half_rouge_f; in brackets the share of the forgetting "
             f"undone, 1 − (target_K − model_K) / (target_0 − model_0))", ""] + head
    loss = [f"relearn_loss_f_eval, relearn_lr {lr} (K=0: half_loss_f_eval)", ""] + head
    for label in curves:
        cells, losses = [], []
        for k in steps:
            r = curves[label][lr][str(k)]
            cell = f"{r['relearn_rouge_f']:.3f}"
            gap = b["0"]["half_rouge_f"] - r["half_rouge_f"]
            if label != base and k and gap > 0.05 * b["0"]["half_rouge_f"]:
                cell += f" ({1 - (b[str(k)]['relearn_rouge_f'] - r['relearn_rouge_f']) / gap:.0%})"
            cells.append(cell)
            losses.append(f"{r['relearn_loss_f_eval']:.2f}")
        rouge.append(f"| {label} | " + " | ".join(cells) + " |")
        loss.append(f"| {label} | " + " | ".join(losses) + " |")
    return rouge + [""] + loss


def quant_table(quant: dict, title: str) -> list[str]:
    lines = [title, "", "| model | half_rouge_f | int8 quant_rouge_f | int4 quant_rouge_f | half_loss_f_eval | "
             "int8 | int4 | utility_r | int8 quant_utility_r | int4 quant_utility_r | loss_r_eval | int8 | int4 |",
             "|---" * 13 + "|"]
    for label, q in quant.items():
        h, e, f = q["int8"], q["int8"], q["int4"]
        lines.append(f"| {label} | {h['half_rouge_f']:.3f} | {e['quant_rouge_f']:.3f} ({e['quant_rouge_f'] - h['half_rouge_f']:+.3f}) | "
                     f"{f['quant_rouge_f']:.3f} ({f['quant_rouge_f'] - h['half_rouge_f']:+.3f}) | "
                     f"{h['half_loss_f_eval']:.3f} | {e['quant_loss_f_eval']:.3f} | {f['quant_loss_f_eval']:.3f} | "
                     f"{q['before']['utility_r']:.3f} | {e['quant_utility_r']:.3f} | {f['quant_utility_r']:.3f} | "
                     f"{q['before']['loss_r_eval']:.3f} | {e['quant_loss_r_eval']:.3f} | {f['quant_loss_r_eval']:.3f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", default=",".join(SETTINGS),
                    help=f"unlearned models, from sweeps/robustness.yaml at lr 1e-3: {', '.join(SETTINGS)}")
    ap.add_argument("--lr", type=float, default=1e-3, help="the unlearning rate of the trials (a grid value)")
    ap.add_argument("--steps", type=_ints, default=[0, 1, 2, 3, 5, 10, 20, 40], help="relearning steps K")
    ap.add_argument("--relearn-lrs", type=_floats, default=[1e-3, 1e-4])
    ap.add_argument("--tofu", help="a local TOFU directory: also quantise the target of sweeps/_repro2_base.yaml "
                                   "(built or found in PARETO_CACHE); default: part 2 on the embedded target only")
    ap.add_argument("--tofu-settings", default="gdiff-0.8,gdiff-0.5,ngdiff",
                    help="unlearned models to quantise too, from sweeps/repro2_fixed.yaml (seed 0); '' for none")
    ap.add_argument("--tofu-lr", type=float, default=2e-4, help="their unlearning rate (a grid value)")
    ap.add_argument("--json", type=Path, help="write every number here")
    args = ap.parse_args()
    t_start = time.perf_counter()
    argv = ["/path/to/TOFU" if args.tofu and a == args.tofu else a for a in sys.argv[1:]]  # no local paths kept
    cmd = "PARETO_CACHE=/path/to/cache " * bool(args.tofu) + "python benchmarks/robustness_curve.py " + " ".join(argv)
    result: dict = {"command": cmd, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                                "python": platform.python_version(), "torch": torch.__version__,
                                "load_average_start": os.getloadavg()[0]},
                    "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "tofu"}}

    # ------------------------------------------------ 1. the relearning curve (embedded default)
    spec, points = load_spec(ROOT / "sweeps/robustness.yaml")
    prepared = prepare_target(spec, log=lambda s: None)
    chosen = choose(points, args.settings, args.lr, "sweeps/robustness.yaml")
    t0 = time.perf_counter()
    models = trial_models(spec, chosen, prepared)
    n_forget = len(models[next(iter(models))][0].eval_splits["forget"])
    relearn_half, eval_half = split_forget(models[next(iter(models))][0].eval_splits["forget"])
    result["embedded"] = {
        "target_dir_hash": json.loads((prepared.target_dir / "manifest.json").read_text()).get("hash"),
        "n_forget": n_forget, "n_relearn": len(relearn_half), "n_evaluated": len(eval_half),
        "n_retain_items": len(models[next(iter(models))][0].eval_splits["retain"]),
        "max_new_tokens": spec.eval.max_new_tokens, "batch_size": spec.unlearn.batch_size,
        "trials": {label: {"point": chosen[label], **{k: v for k, v in last.items() if isinstance(v, (int, float, str))
                                                      and k not in ("metric_settings",)}}
                   for label, (_, _, last) in models.items()},
        "trials_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    curves = relearn_curve(models, spec, args.steps, args.relearn_lrs)
    result["embedded"]["relearn"] = curves
    result["embedded"]["relearn_s"] = time.perf_counter() - t0
    # consistency: K = 10 at 1e-3 is the sweep's own setting, so the trial's column must equal the curve's
    for label, (_, _, last) in models.items():
        if "10" in curves[label].get("0.001", {}) and last.get("relearn_rouge_f") is not None:
            same = curves[label]["0.001"]["10"]["relearn_rouge_f"] == last["relearn_rouge_f"]
            result["embedded"]["trials"][label]["sweep_relearn_matches_curve"] = same
    t0 = time.perf_counter()
    result["embedded"]["quantize"] = quantised(models, list(spec.eval.metrics), spec.unlearn.batch_size)
    result["embedded"]["quantize_s"] = time.perf_counter() - t0

    # ------------------------------------------------ 2. quantisation of the 40-author stand-in target
    if args.tofu:
        t0 = time.perf_counter()
        tspec, tpoints = load_spec(ROOT / "sweeps/repro2_fixed.yaml", [f"data.path={args.tofu}", "eval.every=0"])
        tprep = prepare_target(tspec, log=print)
        manifest = json.loads((tprep.target_dir / "manifest.json").read_text())
        tmodels = trial_models(tspec, choose(tpoints, args.tofu_settings, args.tofu_lr, "sweeps/repro2_fixed.yaml"),
                               tprep)
        trials_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        quant = quantised(tmodels, list(tspec.eval.metrics), tspec.unlearn.batch_size, tprep.reference)
        target = next(iter(tmodels.values()))[0]
        _, half = split_forget(target.eval_splits["forget"])
        result["tofu"] = {"target_hash": manifest.get("hash"), "n_params": manifest.get("n_params"),
                          "answer_accuracy": manifest.get("answer_accuracy"),
                          "n_forget": len(target.eval_splits["forget"]), "n_evaluated": len(half),
                          "n_retain_items": len(target.eval_splits["retain"]),
                          "max_new_tokens": tspec.eval.max_new_tokens,
                          "trials": {label: {"point": p, **{k: v for k, v in tmodels[label][2].items()
                                                            if isinstance(v, (int, float, str)) and k != "metric_settings"}}
                                     for label, p in choose(tpoints, args.tofu_settings, args.tofu_lr, "").items()},
                          "quantize": quant, "trials_s": trials_s, "quantize_s": time.perf_counter() - t0}
    else:
        print("no --tofu: part 2 on the embedded target only (give a local TOFU directory to add the 40-author "
              "stand-in target of sweeps/_repro2_base.yaml)")

    # ------------------------------------------------ tables
    e = result["embedded"]
    print(f"\n## Relearning curve: embedded default, {e['n_evaluated']} evaluated / {e['n_relearn']} relearn "
          f"forget rows, max_new_tokens {e['max_new_tokens']}, batch {e['batch_size']}\n")
    print("| model | rouge_f (whole forget set) | utility_r | half_rouge_f | half_loss_f_eval |\n|---|---|---|---|---|")
    for label, t in e["trials"].items():
        k0 = curves[label][next(iter(curves[label]))]["0"]
        print(f"| {label} | {t['rouge_f']:.3f} | {t['utility_r']:.3f} | {k0['half_rouge_f']:.3f} | "
              f"{k0['half_loss_f_eval']:.3f} |")
    base = next(iter(curves))
    for lr in curves[base]:
        print()
        print("\n".join(curve_tables(curves, lr, args.steps, base)))
    print()
    print("\n".join(quant_table(e["quantize"], f"## Quantisation: embedded default ({e['n_evaluated']} evaluated "
                                                 f"forget rows, {e['n_retain_items']} retain items)")))
    if "tofu" in result:
        t = result["tofu"]
        print()
        print("\n".join(quant_table(t["quantize"], f"## Quantisation: TOFU stand-in target and repro2_fixed trials ({t['n_evaluated']} "
                                                   f"evaluated forget rows, {t['n_retain_items']} retain items, "
                                                   f"max_new_tokens {t['max_new_tokens']})")))
    result["wall_s"] = time.perf_counter() - t_start
    result["machine"]["load_average_end"] = os.getloadavg()[0]
    print(f"\n{result['wall_s']:.0f}s on {os.cpu_count()} CPUs; load average {result['machine']['load_average_start']:.1f}"
          f" → {result['machine']['load_average_end']:.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
