"""A newcomer's first hour: hub data that cannot be reached is a message with the CLI fix (never a
traceback, nothing written), a run that finished no trial never blocks the next one, and
`pareto validate sweeps/*.yaml` skips the include-only base files.

The hub is made unreachable for certain (a closed port on this machine as HF_ENDPOINT, an empty
HF_HOME), or replaced by a small server on the loopback address that answers like the hub."""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pareto.data.hub import check_hub_data, hub_files

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: connections are refused


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    """Environment of a machine without hub access and an empty hub cache."""
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "0", "PYTHONUNBUFFERED": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def pareto(*args, cwd=ROOT, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


# --- hub data -----------------------------------------------------------------------------------


def test_sweep_of_hub_data_without_the_hub_exits_2_with_the_cli_fix_and_writes_nothing(tmp_path, no_hub):
    t0 = time.time()
    proc = pareto("sweep", "sweeps/gdiff_c.yaml", "--storage", str(tmp_path / "results"), env=no_hub)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "Retry" not in out
    assert "locuslab/TOFU" in out and "cannot be reached" in out
    assert "--set data.path=/path/to/TOFU" in out
    assert "hf download locuslab/TOFU --repo-type dataset --local-dir /path/to/TOFU" in out
    assert out.count("--set data.path=") == 1  # said once
    assert not (tmp_path / "results").exists()  # refused before anything was written
    assert time.time() - t0 < 60  # no retry loop (31 s before); the bound is loose for a loaded machine


def test_validate_notes_unreachable_hub_data_and_target_refuses_it(tmp_path, no_hub):
    proc = pareto("validate", "sweeps/gdiff_c.yaml", "sweeps/quickstart.yaml", env=no_hub)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sweeps/gdiff_c.yaml: note: not runnable on this machine as it is: data.path" in proc.stderr
    assert "--set data.path=/path/to/TOFU" in proc.stderr
    assert "sweeps/gdiff_c.yaml: ok (14 trials; 1 note(s) above)" in proc.stdout
    assert "sweeps/quickstart.yaml: ok (11 trials)" in proc.stdout  # the embedded default needs no hub
    proc = pareto("target", "sweeps/tofu_cpu.yaml", env=no_hub)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--set data.path=/path/to/TOFU" in proc.stderr


def test_hub_data_with_downloads_off_names_the_same_fix(no_hub, monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    kind, why = check_hub_data({"source": "muse_news", "path": None, "articles": 8})
    assert kind == "environment" and "HF_HUB_OFFLINE" in why
    assert "--set data.path=/path/to/MUSE-News" in why and "hf download muse-bench/MUSE-News" in why


def test_local_data_needs_no_hub(tmp_path, no_hub):
    (tmp_path / "tofu").mkdir()
    assert hub_files({"source": "tofu", "path": str(tmp_path / "tofu")}) is None
    assert hub_files({"source": "embedded"}) is None
    assert check_hub_data({"source": "custom", "forget_file": "f.json", "retain_file": "r.json"}) == (None, "")


def test_a_local_folder_without_the_official_files_is_refused_before_any_work(tmp_path, no_hub):
    from pareto.data.hub import missing_local_files

    (tmp_path / "tofu").mkdir()
    (tmp_path / "tofu" / "forget10.json").write_text("{}")
    why = missing_local_files({"source": "tofu", "path": str(tmp_path / "tofu"), "forget": "forget10"})
    assert "lacks forget10_perturbed.json, retain_perturbed.json" in why and "forget10.json" not in why.split("lacks")[1]
    (tmp_path / "muse" / "raw").mkdir(parents=True)
    (tmp_path / "muse" / "raw" / "retain.json").write_text("[]")  # the original layout's retain articles
    why = missing_local_files({"source": "muse_news", "path": str(tmp_path / "muse"), "articles": 8})
    assert "raw/forget.json" in why and "retain" not in why.split("lacks")[1].split("privleak")[0]
    proc = pareto("sweep", "sweeps/gdiff_c.yaml", "--set", f"data.path={tmp_path / 'tofu'}",
                  "--storage", str(tmp_path / "results"), env=no_hub)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "not a TOFU folder" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_the_real_data_folders_have_every_file_the_loaders_read(real_data):
    from pareto.data.hub import missing_local_files

    assert missing_local_files({"source": "tofu", "path": str(real_data("tofu")), "forget": "forget10"}) is None
    assert missing_local_files({"source": "tofu", "path": str(real_data("tofu")), "authors": 40}) is None
    muse = str(real_data("muse_news"))
    assert missing_local_files({"source": "muse_news", "path": muse, "articles": None}) is None


class _FakeHub(http.server.BaseHTTPRequestHandler):
    """Answers like the hub's API for a repo that does not exist (a 404 with the hub's error code)."""

    def do_GET(self):  # noqa: N802 — http.server's name
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"error": "Repository not found"}).encode())

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


def test_a_dataset_the_hub_does_not_have_is_a_problem_of_the_spec(no_hub, monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        import huggingface_hub.constants as c

        monkeypatch.setattr(c, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
        kind, why = check_hub_data({"source": "tofu", "path": "nobody/no-such-tofu", "forget": "forget10"})
    finally:
        server.shutdown()
    assert kind == "problem", why
    assert "no dataset 'nobody/no-such-tofu'" in why


def _fake_record(path: str) -> dict:
    """A row with every field any TOFU config or MUSE-News split is checked for."""
    return {"question": f"q {path}", "answer": "a", "perturbed_answer": ["p1", "p2", "p3", "p4", "p5"],
            "paraphrased_answer": "pa", "paraphrased_question": "pq", "text": "some words of an article",
            "prompt": "some words", "gt": "of an article"}


@pytest.mark.parametrize("data", [
    {"source": "tofu", "forget": "forget10"},
    {"source": "tofu", "forget": "forget05", "authors": None},
    {"source": "tofu", "authors": 2, "forget_fraction": 0.5},
    {"source": "muse_news", "articles": 2},
    {"source": "muse_news", "articles": None},
])
def test_hub_files_are_exactly_the_files_load_data_fetches(data, tmp_path, monkeypatch):
    """hub_files is checked against what load_data really asks the hub for (every request recorded)."""
    from pareto import sources
    from pareto.data import muse, tofu

    asked = []

    def fake_hub_file(repo, filename, **kw):
        asked.append((repo, filename))
        path = tmp_path / filename.replace("/", "_")
        rows = [_fake_record(f"{filename}:{i}") for i in range(40)]  # 2 authors of 20 QA pairs
        if filename.endswith(".parquet"):
            pq.write_table(pa.Table.from_pylist(rows), path)
        else:
            path.write_text("\n".join(json.dumps(r) for r in rows))
        return path

    monkeypatch.setattr(tofu, "hub_file", fake_hub_file)
    monkeypatch.setattr(muse, "hub_file", fake_hub_file)
    full = {"path": None, "authors": None, "forget_fraction": 0.1, "articles": None, "context": None, **data}
    sources.load_data(full)
    repo, files = hub_files(full)
    assert {r for r, _ in asked} == {repo}
    assert sorted(set(f for _, f in asked)) == sorted(files)


# --- a run that finished no trial never blocks the next -----------------------------------------

SMALL = """name: tiny
unlearn: {{steps: 2, batch_size: 4}}
eval: {{retain_items: 4, max_new_tokens: 4, metrics: [loss_f_eval, loss_r_eval]}}
search:
  algorithm: grid
  baseline: false
  space: {{combiner: [{combiner}], lr: [1.0e-4]}}
resources: {{cpus_per_trial: 1}}
"""


def _spec(tmp_path, combiner="ngdiff"):
    path = tmp_path / f"tiny-{combiner}.yaml"
    path.write_text(SMALL.format(combiner=combiner))
    return path


def _open(tmp_path, combiner, resume=False):
    from pareto.results.store import Store
    from pareto.spec import load_spec
    from pareto.results.state import open_sweep

    spec, points = load_spec(_spec(tmp_path, combiner))
    return open_sweep(spec, points, Store(str(tmp_path / "results")), resume)


def _write_state(tmp_path, combiner, **extra):
    sweep, state, _ = _open(tmp_path, combiner)
    state.pop("new")
    sweep.write_state({**state, **extra})
    return sweep


def test_an_earlier_run_of_another_spec_without_a_finished_trial_is_replaced(tmp_path):
    _write_state(tmp_path, "lossnorm")
    _, state, complete = _open(tmp_path, "ngdiff")
    assert state.get("replaced") and state.get("new") and not complete
    assert state["points"][0]["combiner"]["name"] == "ngdiff"


def test_an_earlier_run_of_the_same_spec_without_a_finished_trial_starts_again_without_resume(tmp_path):
    _write_state(tmp_path, "ngdiff")
    _, state, complete = _open(tmp_path, "ngdiff")
    assert not complete and not state.get("new") and not state.get("replaced")


def test_finished_trials_of_another_spec_are_never_replaced(tmp_path):
    from pareto.results.state import SweepStateError

    sweep = _write_state(tmp_path, "lossnorm")
    sweep.store.write_table(f"{sweep.part('t000')}/trials.parquet", pa.table({"status": ["ok"]}))
    with pytest.raises(SweepStateError) as err:
        _open(tmp_path, "ngdiff")
    msg = str(err.value)
    assert "1 finished trial(s) of a different spec" in msg and "Nothing was run" in msg
    assert "--set name=tiny-2" in msg and f"mv {tmp_path / 'results' / 'tiny'}" in msg
    assert sweep.store.exists(f"{sweep.part('t000')}/trials.parquet")


def test_a_run_in_progress_on_this_machine_is_not_replaced(tmp_path):
    from pareto.results.state import SweepStateError

    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "pareto", "sweep"])
    try:
        _write_state(tmp_path, "lossnorm", driver={"host": socket.gethostname(), "pid": busy.pid})
        with pytest.raises(SweepStateError, match=f"being run right now by another pareto sweep \\(pid {busy.pid}"):
            _open(tmp_path, "ngdiff")
    finally:
        busy.kill()
        busy.wait()
    _, state, _ = _open(tmp_path, "ngdiff")  # once it is gone, the run goes ahead
    assert state.get("replaced")


@pytest.mark.slow
def test_the_corrected_command_runs_at_once_after_a_run_that_finished_nothing(tmp_path, embedded_target):
    _write_state(tmp_path, "lossnorm")  # e.g. a run stopped while its target was being built
    proc = pareto("sweep", str(_spec(tmp_path, "ngdiff")), "--storage", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "replacing an earlier run of another spec that finished no trial" in proc.stdout
    state = json.loads((tmp_path / "results" / "tiny" / "sweep.json").read_text())
    assert state["complete"] and state["points"][0]["combiner"]["name"] == "ngdiff"


# --- validate sweeps/*.yaml ----------------------------------------------------------------------


def test_validate_skips_include_only_base_files_but_checks_a_spec_without_a_name(tmp_path, no_hub):
    (tmp_path / "base.yaml").write_text("unlearn: {steps: 3}\n")
    (tmp_path / "child.yaml").write_text("name: child\ninclude: base.yaml\n")
    (tmp_path / "_shared.yaml").write_text("eval: {retain_items: 4}\n")
    (tmp_path / "forgot_name.yaml").write_text("unlearn: {steps: 3}\n")
    files = [str(tmp_path / n) for n in ("base.yaml", "child.yaml", "_shared.yaml")]
    proc = pareto("validate", *files, env=no_hub)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{files[0]}: skipped: a base file for include: ({files[1]} includes it)" in proc.stdout
    assert f"{files[2]}: skipped: a base file for include: (its name starts with _)" in proc.stdout
    assert f"{files[1]}: ok (2 trials)" in proc.stdout  # the baseline and the default point
    proc = pareto("validate", str(tmp_path / "forgot_name.yaml"), env=no_hub)
    assert proc.returncode == 2 and "name" in proc.stderr
    proc = pareto("validate", *sorted(str(p) for p in (ROOT / "sweeps").glob("*.yaml")), env=no_hub)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "_tofu_base.yaml: skipped" in proc.stdout and "_repro_base.yaml: skipped" in proc.stdout


# --- what a spec costs ------------------------------------------------------------------------


def test_validate_prices_one_spec_and_several_only_when_asked(tmp_path, no_hub, embedded_target):
    proc = pareto("validate", "sweeps/quickstart.yaml", env=no_hub)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "sweeps/quickstart.yaml: ok (11 trials)"
    assert lines[1].startswith("  estimate on this machine (") and "target: cached (0s)" in lines[1]
    assert lines[2].startswith("  11 trials ≈ ") and "about" in lines[2]
    proc = pareto("validate", "sweeps/quickstart.yaml", "sweeps/gdiff_c.yaml", env=no_hub)
    assert proc.returncode == 0 and "estimate" not in proc.stdout
    proc = pareto("validate", "sweeps/gdiff_c.yaml", "sweeps/mto.yaml", "--estimate", env=no_hub)
    assert proc.returncode == 0 and proc.stdout.count("estimate on this machine") == 2
    # hub data is counted, not downloaded to price
    assert "the data is on the hub (locuslab/TOFU) and is not downloaded to estimate" in proc.stdout


def _estimate(seconds: float, until: bool):
    from pareto.estimate import BuildEstimate, Estimate, TrialsEstimate

    build = BuildEstimate("target", seconds=seconds, rows=4000, epochs=300, until_memorised=until, epoch_seconds=60)
    return Estimate("2 CPUs, no GPU", (build,), TrialsEstimate(14, 1, 188, 1, 2, 1.0, 30.0, seconds=600))


def test_a_run_of_hours_on_a_cpu_says_where_it_belongs_and_the_laptop_variant():
    import torch

    from pareto.estimate import long_run_hint
    from pareto.spec import load_spec

    if torch.cuda.is_available():
        pytest.skip("the hint is for machines without a GPU")
    full, _ = load_spec(ROOT / "sweeps" / "gdiff_c.yaml")
    subset, _ = load_spec(ROOT / "sweeps" / "gdiff_c.yaml", ["data.authors=40"])
    hint = long_run_hint(full, _estimate(18000, until=True))
    assert "--address" in hint and "--set data.authors=40" in hint and "at the epoch cap" in hint
    assert "--set data.authors" not in long_run_hint(subset, _estimate(18000, until=False))
    assert "epoch cap" not in long_run_hint(subset, _estimate(18000, until=False))
    assert long_run_hint(full, _estimate(1800, until=True)) is None  # under an hour: nothing to say


def test_a_sweep_prices_its_run_only_when_a_target_must_be_built(tmp_path, real_data, monkeypatch):
    from pareto.estimate import estimate
    from pareto.spec import load_spec

    sets = [f"data.path={real_data('tofu')}", "data.authors=4", "data.forget_fraction=0.25",
            "target.train={base: tiny, n_layer: 1, n_embd: 32, n_head: 2, max_epochs: 3}", "unlearn.steps=2",
            "unlearn.epochs=null", "eval.retain_items=4", "eval.max_new_tokens=4", "search.space.lr=[1.0e-4]",
            "search.space.combiner=[ngdiff]", "search.baseline=false"]
    monkeypatch.setenv("PARETO_CACHE", str(tmp_path / "cache"))
    spec, points = load_spec(ROOT / "sweeps" / "gdiff_c.yaml", sets)
    est = estimate(spec, points, unless_cached=True)
    assert est is not None and "target build ≤ " in est.lines()[0] and "Retrain reference build ≤ " in est.lines()[0]
    proc = pareto("sweep", "sweeps/gdiff_c.yaml", "--storage", str(tmp_path / "r"), *(a for s in sets for a in ("--set", s)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.index("estimate on this machine") < proc.stdout.index("[target] building")
    assert estimate(spec, points, unless_cached=True) is None  # built now: nothing measured, nothing said
    assert "target: cached (0s), Retrain reference: cached (0s)" in estimate(spec, points).lines()[0]


def test_the_estimate_prices_the_stand_in_phase_and_the_stand_in_rows(tmp_path, real_data, monkeypatch):
    """target.train.pretrain: a first phase on the stand-in alone, then the data with the stand-in
    mixed in (pretrain_mix) or without it; both builds of both models are priced."""
    from pareto.estimate import estimate
    from pareto.sources import load_data
    from pareto.spec import load_spec

    tofu = real_data("tofu")
    sets = [f"data.path={tofu}", "data.authors=4", "data.forget_fraction=0.25", "unlearn.steps=2",
            "target.train={base: tiny, n_layer: 1, n_embd: 32, n_head: 2, max_epochs: 3, "
            "pretrain: [real_authors, world_facts]}", "search.space.lr=[1.0e-4]"]
    monkeypatch.setenv("PARETO_CACHE", str(tmp_path / "cache"))
    splits = load_data({"source": "tofu", "path": str(tofu), "authors": 4, "forget_fraction": 0.25}).eval_splits
    n_stand_in = len(splits["real_authors"]) + len(splits["world_facts"])
    for mix, extra in (("true", n_stand_in), ("false", 0)):
        spec, points = load_spec(ROOT / "sweeps" / "repro2_quick.yaml", [*sets, f"target.train.pretrain_mix={mix}"])
        line = estimate(spec, points).lines()[0]
        for what, n in (("target", 80), ("Retrain reference", 60)):
            assert f"{what} (stand-in phase) build ≤ " in line and f"({n_stand_in} stand-in QA pairs, ≤ 3 epochs" in line
            assert f"{what} build ≤ " in line and (f"({n + extra} QA pairs with the stand-in," if extra
                                                   else f"({n} QA pairs,") in line
