"""benchmarks/robustness_curve.py at a tiny size (one unlearned model, K = 0 and 10, one rate): it
still makes its models as `sweeps/robustness.yaml`'s trials and its curve agrees with their columns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_curve_benchmark_runs_and_matches_the_sweeps_own_columns(tmp_path, embedded_target):
    out = tmp_path / "curve.json"
    proc = subprocess.run([sys.executable, "benchmarks/robustness_curve.py", "--settings", "ngdiff", "--steps", "0,10",
                           "--relearn-lrs", "1e-3", "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())["embedded"]
    assert (result["n_evaluated"], result["n_relearn"]) == (10, 10)
    target, ngdiff = result["relearn"]["target (no unlearning)"]["0.001"], result["relearn"]["ngdiff (lr 0.001)"]["0.001"]
    assert abs(target["10"]["relearn_rouge_f"] - target["0"]["relearn_rouge_f"]) < 0.02  # nothing forgotten to return
    assert ngdiff["10"]["relearn_loss_f_eval"] < ngdiff["0"]["relearn_loss_f_eval"]  # the forgetting partly undone
    assert all(t["sweep_relearn_matches_curve"] for t in result["trials"].values())
    assert "| ngdiff (lr 0.001) |" in proc.stdout
