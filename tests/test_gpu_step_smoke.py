"""benchmarks/gpu_step.py runs end to end (on CPU here, with the tiny config): every method, with
and without LoRA, the fit ladder's code path, 2 FSDP workers (gloo), and benchmarks/gpu_all.sh --cpu-smoke."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--lora"], ["--fit"]])
def test_gpu_step_smoke(tmp_path, extra):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_step.py", "--smoke", "--json", str(out), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    for run in runs:
        for method, v in run["methods"].items():
            assert "oom" not in v and v["ms"] > 0, (method, v)
        if run["lora"]:
            assert run["trainable"] < run["params"] / 2  # only the adapters are trained
            if "gdiff" in run["methods"]:  # the engine's buffer covers the adapters only
                assert run["methods"]["gdiff"]["grad_buffer_bytes"] == 4 * run["trainable"]
    if not extra:
        assert set(runs[0]["methods"]) == {"gdiff_usual", "gdiff", "ngdiff", "ngdiff_autolr", "npo"}


@pytest.mark.slow
def test_gpu_step_two_workers_fsdp(tmp_path):
    """`--workers 2 --parallel fsdp`: two gloo processes (spawned), every method; each rank holds half
    of the parameters, gradient buffers and Adam state that one process holds (local shards)."""
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_step.py", "--smoke", "--cpu", "--workers", "2",
                           "--parallel", "fsdp", "--threads", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = json.loads(out.read_text())["runs"]
    assert run["workers"] == 2 and run["parallel"] == "fsdp" and run["batch"] == 4
    assert set(run["methods"]) == {"gdiff_usual", "gdiff", "ngdiff", "ngdiff_autolr", "npo"}
    assert len(run["per_rank"]) == 2
    full = 4 * run["params"]  # fp32
    for ranks in run["per_rank"]:
        for method, v in ranks.items():
            assert "oom" not in v and v["ms"] > 0, (method, v)
            assert 0.45 * full < v["param_bytes"] < 0.55 * full, (method, v)  # a half, padding aside
            assert v["optim_bytes"] == 2 * v["param_bytes"]  # exp_avg, exp_avg_sq of the local shard
            # the engine: g_R and the .grad buffer over the local shard; the usual step: .grad only
            assert v["grad_bytes"] == (1 if method == "gdiff_usual" else 2) * v["param_bytes"]
    assert "| fsdp | 2 | ngdiff | 1 |" in proc.stdout  # the per-rank table


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_gpu_all_cpu_smoke(tmp_path):
    """benchmarks/gpu_all.sh --cpu-smoke: every part of the GPU script, tiny sizes on the CPU, each
    writes its JSON; summary.json records every part's exit status (and the env part's findings)."""
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}  # the interpreter running the tests
    proc = subprocess.run(["bash", "benchmarks/gpu_all.sh", "--cpu-smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    parts = {p["part"]: p for p in summary["parts"]}
    assert set(parts) == {"env", "single_1b", "lora_7b", "fsdp_1gpu", "fsdp_multi", "fit"}
    assert all(p["rc"] == 0 for p in parts.values()), parts
    assert summary["env"]["torch"] and "import" not in str(summary["env"]["transformers"])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) <= 8, files  # what the device tool brings back from $OUT
    multi = json.loads((tmp_path / "fsdp_multi.json").read_text())["runs"]
    assert [(r["parallel"], r["workers"]) for r in multi] == [("ddp", 2), ("fsdp", 2)]
