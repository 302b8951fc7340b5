"""Helpers the end-to-end test modules share: `pareto` as a user runs it, small specs, sweeps
driven in a process of their own (to signal and kill), the comparison of two runs' results, and
the data a shipped spec names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: trials.parquet columns that say when, where and how often a trial ran, not what it computed.
TIMING = ["wall_s", "cpu_s", "gpu_s", "run_id", "attempts", "node_id"]
#: What differs between two runs of one experiment besides timing: the spec's storage section
#: (checkpoints on or off is not part of the experiment) and where a retried trial resumed.
RUN_COLUMNS = [*TIMING, "resumed_from_step", "spec", "spec_hash"]

SMALL = """name: {name}
unlearn: {{steps: 6, batch_size: 4}}
eval: {{retain_items: 8, max_new_tokens: 6, metrics: [loss_f_eval, loss_r_eval, rouge_f, utility_r]{extra_eval}}}
search:
{search}
resources: {{cpus_per_trial: 1}}
"""


def pareto(*args, cwd=ROOT, timeout=900, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


_IN_ONE_PROCESS = """
import json, sys, traceback
from click.testing import CliRunner
from pareto.cli import main
results = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(main, args)
    output = r.output
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        output += "".join(traceback.format_exception(r.exception))
    results.append({"returncode": r.exit_code, "output": output})
    print(args[:2], "exit", r.exit_code, flush=True)
with open(sys.argv[2], "w") as f:
    json.dump(results, f)
"""


def pareto_in_one_process(commands: list[list[str]], results: Path, timeout=1800) -> list[dict]:
    """Several `pareto` commands, one after another in one Python process (torch imported once,
    one local Ray for all the sweeps), each as the CLI runs it; [{"returncode", "output"}] each."""
    proc = subprocess.run([sys.executable, "-c", _IN_ONE_PROCESS, json.dumps(commands), str(results)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0 and results.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(results.read_text())


def write_spec(tmp_path: Path, name: str, search: str, extra_eval: str = "") -> Path:
    """A small sweep on the embedded target: 6 steps, 4 metrics, the given search section."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(SMALL.format(name=name, search=search, extra_eval=extra_eval))
    return path


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def tagged(tag: str) -> list[tuple[int, bytes]]:
    """(pid, command line) of every live process carrying PARETO_FAULT_TAG=tag in its environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PARETO_FAULT_TAG={tag}".encode() in env.split(b"\0") and cmd:
            found.append((int(entry.name), cmd))
    return found


def kill_tagged(tag: str) -> int:
    """SIGKILL every process that carries the tag (a dead driver's Ray); how many there were."""
    pids = [pid for pid, _ in tagged(tag)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(pids)


class Driver:
    """`pareto sweep ...` in a process of its own, its output collected line by line. It and every
    Ray process it starts carry PARETO_FAULT_TAG=<uuid>; `finish` SIGKILLs whatever is left, by pid."""

    def __init__(self, *args: str, env: dict | None = None, preexec_fn=None) -> None:
        self.tag = uuid.uuid4().hex
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "pareto", "sweep", *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=preexec_fn,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", "PARETO_FAULT_TAG": self.tag,
                                          **(env or {})})
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    def wait_for(self, done, timeout: float = 300) -> bool:
        """Poll `done()` until it holds (True), the driver exits or the time is up (False)."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            if done():
                return True
            time.sleep(0.05)
        return False

    def printed(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def finish(self, timeout: float = 600) -> str:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(timeout=10)
            kill_tagged(self.tag)
        return "".join(self.lines)


def assert_same_results(calm: Path, hurt: Path, n_steps: int = 40) -> pd.DataFrame:
    """Each trial once, each of its steps once, and every value equal to the uninterrupted run."""
    calm_t, hurt_t = pd.read_parquet(calm / "trials.parquet"), pd.read_parquet(hurt / "trials.parquet")
    assert not hurt_t.trial_id.duplicated().any() and sorted(hurt_t.trial_id) == sorted(calm_t.trial_id)
    assert (hurt_t.status == "ok").all(), hurt_t[["trial_id", "status", "error"]]
    pd.testing.assert_frame_equal(calm_t.drop(columns=RUN_COLUMNS), hurt_t.drop(columns=RUN_COLUMNS))
    calm_s = pd.read_parquet(calm / "steps.parquet").drop(columns=["step_time_s"])
    hurt_s = pd.read_parquet(hurt / "steps.parquet").drop(columns=["step_time_s"])
    assert not hurt_s.duplicated(["trial_id", "step"]).any()
    assert hurt_s.groupby("trial_id").step.apply(list).map(lambda s: s == list(range(n_steps))).all()
    pd.testing.assert_frame_equal(calm_s, hurt_s)
    for name, varying in (("evals", ["wall_s"]), ("items", [])):
        a, b = pd.read_parquet(calm / f"{name}.parquet"), pd.read_parquet(hurt / f"{name}.parquet")
        pd.testing.assert_frame_equal(a.drop(columns=varying), b.drop(columns=varying), obj=name)
    return hurt_t


def local_data(spec: Path) -> str | None:
    """The name of the local data folder a shipped spec names (a relative or absolute data.path,
    as sweeps/muse_news.yaml once did: ../shared/data/muse_news → "muse_news"); None for a hub id
    or no path."""
    raw = yaml.safe_load(spec.read_text()) or {}
    data = raw.get("data") or {}
    if "path" not in data and raw.get("include"):
        data = (yaml.safe_load((spec.parent / raw["include"]).read_text()) or {}).get("data") or {}
    path = data.get("path")
    return Path(path).name if path and str(path).startswith((".", "/")) else None


def local_data_overrides(spec: Path, real_data) -> list[str]:
    """`data.path=…` pointing a shipped spec that names a local data folder at the test data's copy
    (the `real_data` fixture, which skips when it is absent); none for a spec on a hub id."""
    name = local_data(spec)
    return [f"data.path={real_data(name)}"] if name else []


def fails(run, *words: str) -> str:
    """A CliRunner result that exited 2 with one line on stderr, `error: …`, holding every word of
    `words` and no traceback; returns that line."""
    assert run.exit_code == 2, (run.exit_code, run.output)
    assert isinstance(run.exception, SystemExit) and "Traceback" not in run.output
    err = run.stderr.strip()
    assert err.startswith("error: ") and err.count("\n") == 0, err
    for w in words:
        assert w in err, (w, err)
    return err

