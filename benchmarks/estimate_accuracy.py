"""How close `pareto.estimate` comes to reality: estimate, then run, the quickstart.

    python benchmarks/estimate_accuracy.py                       # sweeps/quickstart.yaml
    python benchmarks/estimate_accuracy.py --spec S --set K=V    # any spec whose run is affordable

In a fresh cache: estimate, run `pareto sweep` (it builds the target, then runs the trials),
estimate again (the target is cached now) and run the sweep again (trials only). Measured: the
build's wall time and epochs (its manifest), the first run's trials (its wall time minus the
build) and the second run's wall time. The build estimate is an upper bound at the epoch cap,
so its per-epoch time is what is compared; the whole bound is shown beside the real build.
Ratios are estimate / measured; the load average is printed before and after, as a busy
machine slows both the measurement inside the estimate and the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def estimated(spec_path: str, overrides: list[str]):
    from pareto.estimate import estimate
    from pareto.spec import load_spec

    spec, points = load_spec(spec_path, overrides)
    t0 = time.perf_counter()
    est = estimate(spec, points)
    print("\n".join(est.lines()) + f"\n  (estimated in {time.perf_counter() - t0:.1f}s)")
    return est


def sweep(spec_path: str, overrides: list[str], storage: Path) -> float:
    args = [sys.executable, "-m", "pareto", "sweep", spec_path, "--storage", str(storage)]
    args += [f"--set={o}" for o in overrides]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"sweep failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="sweeps/quickstart.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PARETO_CACHE"] = str(Path(tmp) / "cache")  # read by the estimate and the sweeps
        load0 = os.getloadavg()
        cold = estimated(args.spec, args.overrides)
        first = sweep(args.spec, args.overrides, Path(tmp) / "results-1")
        manifests = [json.loads(p.read_text()) for p in (Path(tmp) / "cache").glob("*/manifest.json")]
        warm = estimated(args.spec, args.overrides)
        second = sweep(args.spec, args.overrides, Path(tmp) / "results-2")
        load1 = os.getloadavg()
    build = sum(m["wall_seconds"] for m in manifests)
    epochs = sum(m["epochs"] for m in manifests)
    est_epoch = sum(b.epoch_seconds for b in cold.builds) / len(cold.builds)
    rows = [("build: seconds per epoch", est_epoch, build / epochs),
            (f"build: whole (estimate at the cap, real: {epochs} epochs)", sum(b.seconds for b in cold.builds), build),
            ("trials of the first run (its wall time - the build)", cold.trials.seconds, first - build),
            ("second run (target cached)", warm.seconds, second)]
    print(f"\nload average (1 min) before {load0[0]:.1f}, after {load1[0]:.1f}; {os.cpu_count()} CPUs")
    print("| what | estimate | measured | estimate / measured |")
    print("|---|---|---|---|")
    for what, e, m in rows:
        print(f"| {what} | {e:.1f} s | {m:.1f} s | {e / m:.2f} |")


if __name__ == "__main__":
    main()
