"""A sweep on a real two-node Ray cluster (`ray start --head` + `ray start --address`) on this machine.

Checks what `pareto sweep --address` promises on a cluster: the trials are spread over the nodes
(each node has one CPU and every trial asks for one, so two at a time can only run on both), and
the results equal those of a local run of the same spec, timing and run-id columns aside. And when
the worker node dies mid-trial (every process of it SIGKILLed), its trial is rescheduled on the
head from its last checkpoint and the sweep still equals a local run.

The spread is read from trials.parquet's `node_id` (the Ray node id each trial records from
inside itself; Tune's `node_ip` and `hostname` cannot tell two nodes of one machine apart), checked
against the cluster's two node ids as `ray.nodes()` lists them.

Both nodes run under one short temporary --temp-dir (their sockets, logs and address file stay
out of /tmp/ray, so a local Ray that another test starts neither sees nor joins this cluster),
and the teardown ends exactly the processes this cluster started, by their ids: never
`ray stop`, which would end every Ray process on the machine, other tests' included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _helpers import ROOT, TIMING, Driver, assert_same_results, ok, pareto, write_spec

# Columns that may differ between two runs of one spec: timing, run id, attempts, and where it ran.
VARYING = [*TIMING, "node_id", "node_ip", "hostname"]

SPACE = """  space: {combiner: [ngdiff, lossnorm, {gdiff: {c: [0.5]}}]}"""  # + the baseline: 4 trials

# Ray 2.60's `ray start --head` turns token authentication on when ~/.ray/auth_token exists (a local
# ray.init() writes one) while `ray start --address` does not, and then the second node cannot join.
# Nodes and drivers must agree: this throwaway cluster goes without. Older Ray ignores the variable.
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> list[str]:
    beside = Path(sys.executable).parent / "ray"  # the console script of this interpreter's Ray
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        pytest.skip("no `ray` command next to this Python or on PATH")
    return [found]


class _Node:
    """One `ray start --block` process: it owns the node's processes, which share its fate."""

    def __init__(self, args: list[str], log: Path, env: dict) -> None:
        self.log = log
        self.proc = subprocess.Popen([*_ray_cli(), "start", "--block", *args], stdout=open(log, "w"),
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_started(self, timeout: float = 90) -> str | None:
        """None once the node is up; else why not (the log's tail)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log.read_text(errors="replace")
            if "Ray runtime started" in text:
                return None
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}:\n{text[-2000:]}"
            time.sleep(0.2)
        return f"not up after {timeout:.0f}s:\n{self.log.read_text(errors='replace')[-2000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:  # its session: the node's processes that outlived it (the same process group)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=20)


def _kill_leftovers(marker: str) -> None:
    """SIGKILL any process still running whose command line names this cluster's temp dir."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass


def _python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **ENV})


@pytest.fixture(scope="module")
def cluster_nodes(embedded_target):
    """A head node and a worker node, one CPU each, told apart by a custom resource; yields (the
    head's address, [head node, worker node]). One cluster for the module: the test that kills its
    worker node comes last."""
    if sys.platform != "linux":
        pytest.skip("the two-node cluster test runs on Linux")
    temp_dir = tempfile.mkdtemp(prefix="pareto-ray-", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    env = {**os.environ, **ENV}
    common = ["--num-cpus", "1", "--temp-dir", temp_dir, "--disable-usage-stats",
              "--object-store-memory", str(150 * 2**20), "--min-worker-port", "0", "--max-worker-port", "0",
              "--node-manager-port", "0", "--dashboard-agent-listen-port", str(_free_port())]
    nodes: list[_Node] = []
    try:
        port = _free_port()
        nodes.append(_Node(["--head", "--port", str(port), "--include-dashboard=false",
                            "--resources", json.dumps({"pareto_head_node": 1}), *common],
                           Path(temp_dir) / "head.log", env))
        why = nodes[0].wait_started()
        if why:
            pytest.skip(f"`ray start --head` failed in this environment: {why}")
        # the address the head advertises (its node IP, which need not be 127.0.0.1)
        address = next((ln.split("--address=")[1].strip().strip("'\"") for ln in
                        nodes[0].log.read_text().splitlines() if "ray start --address=" in ln), f"127.0.0.1:{port}")
        nodes.append(_Node(["--address", address, "--include-log-monitor", "false",
                            "--resources", json.dumps({"pareto_worker_node": 1}), *common],
                           Path(temp_dir) / "worker.log", env))
        why = nodes[1].wait_started()
        if why:
            pytest.skip(f"`ray start --address {address}` (a second node) failed in this environment: {why}")
        # both nodes registered and alive before any trial is scheduled
        proc = _python(f"""
            import time, ray
            ray.init(address={address!r}, logging_level="ERROR", log_to_driver=False)
            for _ in range(150):
                alive = [n for n in ray.nodes() if n["Alive"]]
                if len(alive) == 2:
                    break
                time.sleep(0.2)
            print(len(alive))
        """)
        assert proc.stdout.strip().endswith("2"), proc.stdout[-2000:] + proc.stderr[-2000:]
        yield address, nodes
    finally:
        for node in reversed(nodes):
            node.stop()
        _kill_leftovers(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _cluster_nodes(address: str) -> dict[str, list[str]]:
    """{node id: its pareto_* custom resources} of the cluster's live nodes, as Ray lists them."""
    proc = _python(f"""
        import json, ray
        ray.init(address={address!r}, logging_level="ERROR", log_to_driver=False)
        print("RESULT " + json.dumps({{n["NodeID"]: sorted(k for k in n["Resources"] if k.startswith("pareto_"))
                                      for n in ray.nodes() if n["Alive"]}}))
    """)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


def _drop(df: pd.DataFrame, cols) -> pd.DataFrame:
    return df.drop(columns=[c for c in cols if c in df.columns])


@pytest.mark.slow
def test_sweep_on_a_two_node_cluster_spreads_trials_and_equals_a_local_run(tmp_path, cluster_nodes):
    address, _ = cluster_nodes
    spec = write_spec(tmp_path, "twonode", SPACE)

    t0 = time.time()
    proc = ok(pareto("sweep", str(spec), "--address", address, "--storage", str(tmp_path / "cluster"), env=ENV))
    cluster_s = time.time() - t0
    assert "2 node(s)" in proc.stdout and "(2 CPUs" in proc.stdout, proc.stdout[-2000:]
    out = tmp_path / "cluster" / "twonode"
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 4 and (trials.status == "ok").all(), trials[["trial_id", "status", "error"]]

    # where each trial ran: its recorded node id, one of the cluster's two, both used
    nodes = _cluster_nodes(address)
    head = [n for n, res in nodes.items() if res == ["pareto_head_node"]]
    worker = [n for n, res in nodes.items() if res == ["pareto_worker_node"]]
    assert len(head) == len(worker) == 1, nodes
    ran_on = dict(zip(trials.trial_id, trials.node_id))
    assert set(ran_on.values()) == {head[0], worker[0]}, f"not both of the cluster's nodes {nodes}: {ran_on}"

    # the same spec on a local Ray (no --address): the same results
    t0 = time.time()
    ok(pareto("sweep", str(spec), "--storage", str(tmp_path / "local"), env=ENV))
    local_s = time.time() - t0
    local = tmp_path / "local" / "twonode"
    pd.testing.assert_frame_equal(_drop(pd.read_parquet(local / "trials.parquet"), VARYING), _drop(trials, VARYING))
    for name, varying in (("steps", ["step_time_s"]), ("evals", ["wall_s"]), ("items", [])):
        a, b = pd.read_parquet(local / f"{name}.parquet"), pd.read_parquet(out / f"{name}.parquet")
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(_drop(a, varying), _drop(b, varying), obj=name)
    print(f"two-node sweep {cluster_s:.0f}s, local sweep {local_s:.0f}s; trial → node: "
          + ", ".join(f"{t}→{'head' if n == head[0] else 'worker'}" for t, n in sorted(ran_on.items())))


LEAVING = """name: leaving
unlearn: {steps: 40, batch_size: 4}
eval: {every: 8, retain_items: 8, max_new_tokens: 6, metrics: [loss_f_eval, loss_r_eval, rouge_f, utility_r]}
search: {baseline: false, space: {combiner: [rlw, ngdiff]}}
resources: {cpus_per_trial: 1, max_failures: 2}
storage: {checkpoints: last}
"""


def _session(sid: int) -> list[tuple[int, bytes]]:
    """(pid, command line) of every live process in session `sid` (a node's `ray start` and all it started)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == sid:
                out.append((int(entry.name), (entry / "cmdline").read_bytes()))
        except OSError:
            continue
    return out


@pytest.mark.slow
def test_a_worker_node_leaving_mid_trial_gets_its_trial_rescheduled(tmp_path, cluster_nodes):
    """Two trials run at once, one per node; the worker node dies (SIGKILL to every process of it)
    while both are mid-way. Its trial is retried on the head from its last checkpoint; the sweep
    finishes with each trial once, every step once, equal to a local run."""
    address, (_, worker) = cluster_nodes
    spec = tmp_path / "leaving.yaml"
    spec.write_text(LEAVING)
    d = Driver(str(spec), "--address", address, "--storage", str(tmp_path / "cluster"), env=ENV)
    on_worker: list[int] = []

    def both_mid_way() -> bool:
        # at step 16 each trial's step-8 checkpoint is registered with Tune (see test_faults)
        if not (d.printed("t000 at step 16") and d.printed("t001 at step 16")):
            return False
        on_worker[:] = [pid for pid, cmd in _session(worker.proc.pid) if cmd.startswith(b"ray::ImplicitFunc")]
        return bool(on_worker)

    assert d.wait_for(both_mid_way, timeout=300), "".join(d.lines)[-3000:]
    node_pids = _session(worker.proc.pid)
    for pid, _ in node_pids:  # the node goes away at once: raylet, object store, its workers
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    out = d.finish(timeout=600)
    assert d.proc.returncode == 0 and "Traceback" not in out, out[-3000:]
    assert "retrying from its last checkpoint (step " in out, out[-3000:]

    trials = pd.read_parquet(tmp_path / "cluster" / "leaving" / "trials.parquet")
    moved = trials[trials.attempts == 2]
    assert len(moved) == 1 and moved.resumed_from_step.iloc[0] > 0, trials[["trial_id", "attempts", "node_id"]]
    assert trials.node_id.nunique() == 1  # both finished on the head: the worker node is gone

    ok(pareto("sweep", str(spec), "--storage", str(tmp_path / "local"), env=ENV))
    assert_same_results(tmp_path / "local" / "leaving", tmp_path / "cluster" / "leaving")
    print(f"worker node ({len(node_pids)} processes) killed mid-trial; {moved.trial_id.iloc[0]} rescheduled on "
          f"the head from step {int(moved.resumed_from_step.iloc[0])}")


# ---------------------------------------------------------------------------------------------
# The cloud files in cluster/: launched nowhere from here, but parsed and checked as Ray and
# KubeRay would read them.

@pytest.mark.parametrize("name", ["aws", "gcp"])
def test_cluster_launcher_files_pass_rays_own_schema_check(name):
    """What `ray up` does before it calls any cloud: fill in the provider's defaults, validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / "cluster" / f"{name}.yaml").read_text())
    config = prepare_config(raw)
    validate_config(config)  # Ray's ray-schema.json (unknown keys rejected) and its cross-checks
    nodes = config["available_node_types"]
    workers = [v for k, v in nodes.items() if k != config["head_node_type"]]
    assert workers and all(w["min_workers"] >= 1 for w in workers)  # a GPU is up when the sweep checks
    assert "-gpu" in config["docker"]["worker_image"] and "-gpu" not in config["docker"]["head_image"]
    assert config["file_mounts"]["~/pareto"] == "."
    setup = " ; ".join(config["worker_setup_commands"])
    assert setup.index('"torch==2.13.0"') < setup.index("pip install --quiet -e ~/pareto")
    for cmds in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert "cluster.env" in config[cmds][-1] and "PARETO_CACHE" in config[cmds][-1]  # HF_TOKEN for every process
    if name == "gcp":
        assert all(w["resources"].get("GPU", 0) >= 1 for w in workers)
        assert all({"onHostMaintenance": "TERMINATE"} in w["node_config"]["scheduling"] for w in workers)


def test_rayjob_manifest_runs_the_gdiff_c_sweep_on_gpu_workers():
    docs = list(yaml.safe_load_all((ROOT / "cluster" / "rayjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    assert spec["entrypoint"].startswith("pareto sweep sweeps/gdiff_c.yaml") and "--storage s3://" in spec["entrypoint"]
    assert (ROOT / "sweeps" / "gdiff_c.yaml").is_file()
    assert set(yaml.safe_load(spec["runtimeEnvYAML"])) >= {"working_dir", "pip"}
    cluster = spec["rayClusterSpec"]
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["name"] == "ray-head"
    (group,) = cluster["workerGroupSpecs"]
    (worker,) = group["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
