"""The No-unlearn and Retrain models of sweeps/tofu_cpu.yaml on real TOFU: build time and metrics.

    python benchmarks/tofu_target.py --set data.path=/path/to/TOFU
    python benchmarks/tofu_target.py --spec sweeps/repro_fixed.yaml --set … --json out.json

Builds (or finds in the cache) the target and the retain-only reference exactly as
`pareto target sweeps/tofu_cpu.yaml` does, then evaluates both with every TOFU metric.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pareto.metrics import EvalContext, EvalSettings, evaluate
from pareto.models.embedded import load_target
from pareto.spec import load_spec
from pareto.prepare import prepare_target

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", type=Path, default=ROOT / "sweeps/tofu_cpu.yaml",
                        help="any spec with a trained target and retain_model: true")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", type=Path, help="also write both models' metrics and manifests here")
    args = parser.parse_args()
    spec, _ = load_spec(args.spec, args.overrides)
    prepared = prepare_target(spec, log=print)
    from pareto.sources import load_data
    from dataclasses import asdict

    data = load_data(asdict(spec.data))
    splits = {"forget": data.forget, "retain": data.retain, **data.eval_splits}
    rows = []
    for label, path in (("No-unlearn (target)", prepared.target_dir), ("Retrain (retain only)", prepared.reference["retain_model"])):
        model, tok, manifest = load_target(path)
        t0 = time.perf_counter()
        values = evaluate(EvalContext(model, tok, splits, EvalSettings(max_new_tokens=spec.eval.max_new_tokens),
                                      reference=prepared.reference), spec.eval.metrics)
        rows.append((label, manifest, {k: v.value for k, v in values.items()}, time.perf_counter() - t0))
    names = list(spec.eval.metrics)
    print("| model | build (s) | epochs | " + " | ".join(names) + " | eval (s) |")
    print("|---" * (len(names) + 4) + "|")
    for label, m, v, t in rows:
        print(f"| {label} | {m['wall_seconds']:.0f} | {m['epochs']} | " + " | ".join(f"{v[n]:.3g}" for n in names) + f" | {t:.0f} |")
    print(json.dumps({label: v for label, _, v, _ in rows}, indent=1))
    if args.json:
        keep = ("hash", "n_params", "epochs", "answer_accuracy", "rouge_l", "train_seconds", "wall_seconds", "device")
        args.json.write_text(json.dumps({label: {"metrics": v, "eval_seconds": t,
                                                 "manifest": {k: m.get(k) for k in keep}}
                                         for label, m, v, t in rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
