"""benchmarks/gpu_step.py runs end to end (on CPU here, with the tiny config): every method, with
and without LoRA, and the fit ladder's code path."""

import json
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
