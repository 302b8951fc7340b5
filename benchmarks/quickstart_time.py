"""Wall time of the main job as a user runs it: `pareto sweep sweeps/quickstart.yaml`.

Run 1 starts from an empty cache (it builds the embedded target); run 2 reuses it.
Targets (issue 2): ≤ 5 min fresh, ≤ 2 min cached, on a 2-core machine.

    python benchmarks/quickstart_time.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PARETO_CACHE": str(Path(tmp) / "cache")}
        times = []
        for label in ("fresh (builds the target)", "cached"):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "pareto", "sweep", "sweeps/quickstart.yaml",
                                   "--storage", str(Path(tmp) / f"results-{len(times)}")], cwd=ROOT, env=env,
                                  capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if proc.returncode:
                sys.exit(f"sweep failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            times.append((label, elapsed))
        print(f"machine: {os.cpu_count()} CPUs")
        print("| run | wall time | target |")
        print("|---|---|---|")
        for (label, t), limit in zip(times, (300, 120)):
            print(f"| {label} | {t:.0f} s | ≤ {limit} s: {'met' if t <= limit else 'MISSED'} |")


if __name__ == "__main__":
    main()
