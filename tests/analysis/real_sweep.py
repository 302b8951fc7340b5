"""A tiny real sweep on the embedded default, for the tests that need a model (the probe, the
interactive report): NGDiff with a fixed η and with AutoLR, plain SGD, 4 steps, both losses
re-measured after every other step; ~25 s on 2 cores (Ray and the cached embedded target)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: SGD: the step the optimizer takes is d itself (u = d), so Lemma 4 speaks about the probed line.
SGD_SWEEP = ("--set", "name=probe_sgd", "--set", "unlearn.steps=4", "--set", "eval.every=2",
             "--set", "eval.retain_items=10", "--set", "eval.max_new_tokens=8",
             "--set", "unlearn.optimizer=sgd", "--set", "search.space.lr=[0.01]",
             "--set", "unlearn.measure_after_every=2", "--set", "search.space.combiner=[ngdiff]")


def pareto(*args, cwd=ROOT, timeout=600, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m pareto ARGS`, this checkout first on the path."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*(env_extra or {}).get("PYTHONPATH", "").split(os.pathsep),
                                                      str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_sgd_sweep(storage: Path) -> Path:
    """t000 No-unlearn, t001 NGDiff fixed η = 0.01, t002 NGDiff AutoLR; returns the sweep folder."""
    proc = pareto("sweep", "sweeps/quickstart.yaml", "--storage", str(storage), *SGD_SWEEP)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return storage / "probe_sgd"
