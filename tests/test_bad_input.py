"""A corpus of malformed specs (tests/bad_specs/*.yaml) through the real CLI: each one exits 2 with a
message that names the problem, where it is (key and line, file and row) and how to fix it, and
never a traceback.

Each file opens with two or three comment lines:

    # what is wrong
    # expect: fragment | fragment | ...      every fragment must appear in the output
    # status: warning | environment          (optional; default: error)

error        `pareto validate` and `pareto sweep` both exit 2 (the sweep before any work: no Ray, no files)
environment  the spec is fine but this machine cannot run it (no GPU, a model it cannot load):
             `pareto validate` exits 0 with a note, `pareto sweep` exits 2
warning      runs, but probably not as meant (forget and retain overlap): `pareto validate` exits 0 and
             says how much
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pareto.cli import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "bad_specs"
FILES = sorted(CORPUS.glob("*.yaml"))


def header(path: Path) -> tuple[str, list[str], str]:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("# expect: "), f"{path.name}: header missing"
    expect = [f.strip() for f in lines[1][len("# expect: "):].split("|") if f.strip()]
    status = lines[2][len("# status: "):].strip() if lines[2].startswith("# status: ") else "error"
    return lines[0][2:], expect, status


@pytest.fixture
def in_repo(monkeypatch):
    """The corpus names its data files relative to the repository (as a user types them)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a model name is checked against the local cache only
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def invoke(*args):
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        pytest.fail("the CLI raised instead of explaining:\n" + "".join(traceback.format_exception(result.exception)))
    return result


def test_the_corpus_covers_every_category():
    assert len(FILES) >= 30
    stems = {p.stem for p in FILES}
    for prefix in ("yaml_", "unknown_", "wrong_type_", "c_", "negative_lr", "missing_", "empty_forget",
                   "forget_retain_overlap", "gpus_where_none", "unknown_model_name", "storage_unwritable",
                   "combiner_import_path", "name_escapes_root", "several_"):
        assert any(s.startswith(prefix) for s in stems), prefix
    for path in FILES:
        header(path)


@pytest.mark.parametrize("command", ["validate", "sweep"])
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_bad_spec_is_explained_with_exit_2(path, command, in_repo, tmp_path):
    what, expect, status = header(path)
    if status == "warning" and command == "sweep":
        pytest.skip("a warning does not stop a sweep; the sweep would run")
    if path.stem == "gpus_where_none":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    rel = str(path.relative_to(ROOT))
    args = [command, rel]
    if command == "sweep" and not path.stem.startswith(("storage_", "several_data")):
        args += ["--storage", str(tmp_path / "results")]
    result = invoke(*args)
    out = result.output
    assert "Traceback" not in out
    missing = [e for e in expect if e not in out]
    assert not missing, f"{path.name} ({what}): {missing} not in:\n{out}"
    if status == "error" or (status == "environment" and command == "sweep"):
        assert result.exit_code == 2, out
        assert rel in out  # names the file
        if command == "sweep":
            assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.parquet"))
    elif status == "environment":
        assert result.exit_code == 0 and "note:" in out, out
    else:
        assert result.exit_code == 0 and "warning" in out, out


def test_validate_on_the_whole_corpus_as_a_user_runs_it():
    """One real process over every file: each bad file reported, exit 2, no traceback anywhere."""
    proc = subprocess.run([sys.executable, "-m", "pareto", "validate", *(str(p.relative_to(ROOT)) for p in FILES)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out
    for path in FILES:
        status = header(path)[2]
        rel = str(path.relative_to(ROOT))
        if status == "error":  # its problems counted (after any notes on this machine)
            assert re.search(rf"^{re.escape(rel)}: \d+ problem\(s\)$", proc.stderr, re.MULTILINE), rel


def test_validate_lists_every_problem_of_one_spec_at_once(in_repo):
    result = invoke("validate", "tests/bad_specs/several_problems.yaml")
    assert result.exit_code == 2
    problems = [ln for ln in result.output.splitlines() if ln.startswith("  - ")]
    assert len(problems) == 5 and all("(line " in p for p in problems), result.output
    result = invoke("validate", "tests/bad_specs/several_data_problems.yaml")
    problems = [ln for ln in result.output.splitlines() if ln.startswith("  - ")]
    assert result.exit_code == 2 and len(problems) == 3, result.output


def test_a_python_tag_runs_nothing(in_repo, tmp_path):
    """The spec's `!!python/object/apply:os.system` would write this file on an unsafe loader."""
    marker = Path("/tmp/pareto-pwned")
    marker.unlink(missing_ok=True)
    for command in ("validate", "sweep"):
        assert invoke(command, "tests/bad_specs/yaml_python_tag.yaml").exit_code == 2
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Security: specs are data; nothing a spec or a results folder holds can run code or climb out


@pytest.mark.parametrize("rel", ["../escape.parquet", "a/../../escape.parquet", "..", "/etc/passwd",
                                 "parts/../../../escape", "a\\..\\..\\escape"])
def test_no_path_inside_a_store_escapes_its_root(tmp_path, rel):
    import pyarrow as pa

    from pareto.results.store import PathEscapeError, StorageError, Store

    store = Store(str(tmp_path / "root"))
    with pytest.raises(PathEscapeError) as err:
        store.write_table(rel, pa.table({"x": [1]}))
    assert isinstance(err.value, StorageError) and "escapes the storage root" in str(err.value)
    assert not list(tmp_path.rglob("escape*")) and not (tmp_path / "root").exists()
    assert store.path("parts/../t001/x.parquet") == f"{tmp_path / 'root'}/t001/x.parquet"  # inside: fine


def test_trial_and_sweep_names_cannot_escape_the_storage_root(tmp_path, in_repo):
    from pareto.results.store import PathEscapeError, Store
    from pareto.results.state import Sweep

    sweep = Sweep(Store(str(tmp_path)), "ok")
    for tid in ("../../t000", "/tmp/t000", "t000/../../..", "..", "t001/x"):
        with pytest.raises(PathEscapeError):
            sweep.part(tid)
    assert sweep.part("t007") == "ok/parts/t007"
    for name in ("../../elsewhere", "/tmp/elsewhere", ".hidden", "a/b"):
        result = invoke("sweep", "sweeps/quickstart.yaml", "--set", f"name={name}", "--storage", str(tmp_path))
        assert result.exit_code == 2 and "cannot escape the results root" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_trust_remote_code_is_off_unless_the_spec_turns_it_on(in_repo):
    from pareto.models.target import TargetConfig
    from pareto.prepare import target_config
    from pareto.spec import parse_spec

    assert TargetConfig().trust_remote_code is False
    text = ("name: x\ndata: {source: custom, forget_file: tests/bad_specs/data/forget.json, "
            "retain_file: tests/bad_specs/data/retain.json}\n"
            "target: {source: train, train: {base: some-org/some-model}}\n")
    assert target_config(parse_spec(text)[0]).trust_remote_code is False
    on = text.replace("some-org/some-model}", "some-org/some-model, trust_remote_code: true}")
    assert target_config(parse_spec(on)[0]).trust_remote_code is True  # only when the spec says so, as a boolean


def test_a_checkpoint_holding_a_pickle_is_refused_without_running_it(tmp_path):
    """checkpoint.load reads the model through safetensors and the optimizer state with
    torch.load(weights_only=True): a pickle that would run code is an error, and runs nothing."""
    import json

    import torch
    from safetensors.torch import save_model

    from pareto import checkpoint

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    model = torch.nn.Linear(2, 2)
    save_model(model, str(tmp_path / "model.safetensors"))
    torch.save({"state": Evil(), "param_groups": []}, tmp_path / "optimizer.pt")
    (tmp_path / "state.json").write_text(json.dumps({"format": checkpoint.FORMAT, "steps_done": 3}))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(Exception) as err:
        checkpoint.load(tmp_path, model=model, optimizer=optimizer, engine=None, forget=None, retain=None)
    assert "weights_only" in str(err.value) or "Unsupported" in str(err.value) or "global" in str(err.value)
    assert not marker.exists()
