"""Multi-worker trials in the spec (issue 16): `unlearn.parallel: ddp | fsdp` with
`resources.workers_per_trial: N`. Every check names the fix, all of a spec's problems come at once,
a valid parallel spec parses, `pareto validate` exits 2 on a bad one, and
`pareto.resources.parallel_resource_problems` says when a trial needs more than is there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pareto.resources import parallel_resource_problems
from pareto.spec import SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
BASE = "name: x\nsearch: {space: {combiner: [ngdiff]}}\n"


def spec_text(unlearn: str = "", resources: str = "", data: str = "") -> str:
    return BASE + (f"unlearn: {{{unlearn}}}\n" if unlearn else "") + \
        (f"resources: {{{resources}}}\n" if resources else "") + data


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    return err.value.problems


CIFAR = "data: {source: cifar10}\ntarget: {source: train}\neval: {metrics: [forget_acc, retain_acc]}\n"

BAD = [  # (unlearn, resources, extra sections), fragments that must be in the one problem reported
    ("parallel: dpp", "workers_per_trial: 2", "",
     ["unlearn.parallel (line 3)", "unknown parallel mode 'dpp'", "Did you mean 'ddp'?", "Available: ddp", "fsdp"]),
    ("parallel: fsdp", "", "",
     ["unlearn.parallel (line 3)", "needs resources.workers_per_trial", "e.g. resources.workers_per_trial: 2"]),
    ("", "workers_per_trial: 4", "",
     ["resources.workers_per_trial (line 3)", "needs unlearn.parallel", "e.g. unlearn.parallel: ddp"]),
    ("parallel: ddp", "workers_per_trial: 0", "", ["workers_per_trial must be an integer ≥ 1, got 0"]),
    ("parallel: ddp", "workers_per_trial: -2", "", ["workers_per_trial must be an integer ≥ 1, got -2"]),
    ("parallel: ddp", "workers_per_trial: 2.5", "", ["resources.workers_per_trial (line 4)", "expected an integer"]),
    ("parallel: ddp", "workers_per_trial: true", "", ["resources.workers_per_trial (line 4)", "expected an integer"]),
    ("parallel: ddp", "workers_per_trial: 4, gpus_per_trial: 1", "",
     ["resources.gpus_per_trial (line 4)", "gpus_per_trial is 1 with 4 worker(s)", "set resources.gpus_per_trial: 4",
      "NCCL cannot put two ranks", "or 0 (CPU workers, gloo)"]),
    ("parallel: ddp", "workers_per_trial: 2, gpus_per_trial: 0.5", "", ["gpus_per_trial is 0.5 with 2 worker(s)"]),
    ("parallel: fsdp", "workers_per_trial: 2", CIFAR,
     ["unlearn.parallel (line 3)", "FSDP wraps transformer blocks; use parallel: ddp for image classifiers"]),
    ("parallel: ddp, batch_size: 6", "workers_per_trial: 4", "",
     ["unlearn.batch_size (line 3)", "batch_size 6 does not split evenly over resources.workers_per_trial 4",
      "set unlearn.batch_size to a multiple of 4, e.g. 8"]),
    ("parallel: ddp, batch_size: 8, retain_batch_size: 6", "workers_per_trial: 4", "",
     ["unlearn.retain_batch_size (line 3)", "set unlearn.retain_batch_size to a multiple of 4, e.g. 8"]),
    ("parallel: ddp, batch_size: 8, grad_accum: 4", "workers_per_trial: 4", "",
     ["unlearn.batch_size (line 3)", "each of the 4 workers gets 2 example(s) of batch_size 8",
      "fewer than unlearn.grad_accum 4", "raise unlearn.batch_size to at least 16 or lower unlearn.grad_accum to 2"]),
]


@pytest.mark.parametrize("unlearn, resources, extra, expected", BAD, ids=[f"{u}|{r}|{'cifar' if e else ''}"
                                                                          for u, r, e, _ in BAD])
def test_each_parallel_check_names_the_fix(unlearn, resources, extra, expected):
    problems = problems_of(spec_text(unlearn, resources, extra))
    assert len(problems) == 1, problems
    for fragment in expected:
        assert fragment in problems[0], (fragment, problems[0])


def test_several_parallel_problems_are_reported_together():
    problems = problems_of(spec_text("parallel: fsdpp, batch_size: 4, retain_batch_size: 6, grad_accum: 2",
                                     "workers_per_trial: 4, gpus_per_trial: 0.5, cpus_per_trial: 0"))
    text = "\n".join(problems)
    for fragment in ["Did you mean 'fsdp'?", "gpus_per_trial is 0.5 with 4 worker(s)",
                     "each of the 4 workers gets 1 example(s) of batch_size 4",
                     "retain_batch_size 6 does not split evenly", "resources.cpus_per_trial (line 4): must be > 0"]:
        assert fragment in text, (fragment, text)
    assert len(problems) == 5, problems
    # the missing halves of a pair, and an unrelated problem, in one report as well
    problems = problems_of(spec_text("parallel: ddp, steps: -1"))
    assert len(problems) == 2 and any("steps must be ≥ 0" in p for p in problems), problems


def test_batch_too_small_for_grad_accum_is_reported_once():
    """grad_accum above the batch itself is the existing check's; the split check stays quiet."""
    problems = problems_of(spec_text("parallel: ddp, batch_size: 2, grad_accum: 4", "workers_per_trial: 2"))
    assert len(problems) == 1 and "grad_accum 4 is more micro-batches than a batch has" in problems[0], problems


@pytest.mark.parametrize("unlearn, resources", [
    ("parallel: ddp, batch_size: 8", "workers_per_trial: 2, cpus_per_trial: 2"),  # gloo CPU workers
    ("parallel: ddp, batch_size: 8", "workers_per_trial: 4, cpus_per_trial: 1"),  # 0.25 CPU each is fine
    ("parallel: ddp, batch_size: 8, retain_batch_size: 16, grad_accum: 2",
     "workers_per_trial: 4, gpus_per_trial: 4, cpus_per_trial: 8"),
    ("parallel: fsdp, batch_size: 8, lora: {r: 8}", "workers_per_trial: 2, gpus_per_trial: 2"),  # LoRA with FSDP
    ("parallel: ddp, batch_size: 8, lora: {r: 8}", "workers_per_trial: 2"),  # and with DDP
    ("parallel: ddp, batch_size: 3", "workers_per_trial: 1, gpus_per_trial: 1"),  # one worker: any batch
    ("batch_size: 3", "workers_per_trial: 1"),  # one worker without parallel: one process, as before
])
def test_valid_parallel_specs_parse(unlearn, resources):
    spec, points = parse_spec(spec_text(unlearn, resources))
    assert points and spec.resources.workers_per_trial == int(resources.split("workers_per_trial: ")[1][0])
    assert spec.unlearn.parallel == (unlearn.split("parallel: ")[1].split(",")[0] if "parallel" in unlearn else None)


def test_image_classifiers_take_ddp():
    spec, _ = parse_spec(spec_text("parallel: ddp", "workers_per_trial: 2", CIFAR))
    assert spec.unlearn.parallel == "ddp" and spec.data.source == "cifar10"


def test_defaults_keep_one_process_and_old_sweeps_resumable():
    """Left out, both keys are None: one process per trial as before. experiment_hash leaves out
    settings at their defaults and the whole resources section, so a sweep started before these
    keys existed still resumes; unlearn.parallel, when set, is part of the experiment."""
    from pareto.results.state import experiment_hash

    spec, _ = load_spec(ROOT / "sweeps" / "quickstart.yaml")
    assert spec.unlearn.parallel is None and spec.resources.workers_per_trial is None
    assert experiment_hash(spec) == "fc726c4a852eb57f"  # quickstart's hash before issue 16 (commit e2c3425)
    two, _ = parse_spec(spec_text("parallel: ddp, batch_size: 8", "workers_per_trial: 2"))
    four, _ = parse_spec(spec_text("parallel: ddp, batch_size: 8", "workers_per_trial: 4, gpus_per_trial: 4"))
    single, _ = parse_spec(spec_text("batch_size: 8"))
    fsdp, _ = parse_spec(spec_text("parallel: fsdp, batch_size: 8", "workers_per_trial: 2"))
    assert experiment_hash(two) == experiment_hash(four)  # how wide it runs is not the experiment
    assert len({experiment_hash(two), experiment_hash(single), experiment_hash(fsdp)}) == 3


def test_shipped_llama_spec_shards_over_four_gpus():
    spec, _ = load_spec(ROOT / "sweeps" / "llama2_7b_tofu.yaml")
    assert spec.unlearn.parallel == "fsdp" and spec.unlearn.lora is None
    assert spec.resources.workers_per_trial == spec.resources.gpus_per_trial == 4
    assert spec.unlearn.batch_size % 4 == 0


# ------------------------------------------------------------------ the CLI


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def test_validate_exits_2_on_a_bad_parallel_spec(in_repo):
    from pareto.cli import main

    result = CliRunner().invoke(main, ["validate", "tests/bad_specs/several_parallel_problems.yaml"])
    assert result.exit_code == 2, result.output
    listed = [ln for ln in result.output.splitlines() if ln.startswith("  - ")]
    assert len(listed) == 4 and all("(line " in ln for ln in listed), result.output
    assert "Traceback" not in result.output


def test_validate_as_a_user_runs_it(tmp_path):
    """A real process: a bad spec exits 2 naming the fix; the same spec fixed with --set is ok."""
    spec = tmp_path / "par.yaml"
    spec.write_text(spec_text("steps: 2, batch_size: 6, parallel: ddp", "workers_per_trial: 4, cpus_per_trial: 1"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pareto", "validate", str(spec), "--no-estimate"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and "set unlearn.batch_size to a multiple of 4, e.g. 8" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pareto", "validate", str(spec), "--no-estimate",
                           "--set", "unlearn.batch_size=8"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0 and "ok (2 trials" in proc.stdout, proc.stdout + proc.stderr


# ------------------------------------------------------------------ against a machine or cluster


def parallel_spec(workers: int, gpus: float, cpus: float = 2.0):
    return parse_spec(spec_text("parallel: ddp, batch_size: 8",
                                f"workers_per_trial: {workers}, gpus_per_trial: {gpus}, cpus_per_trial: {cpus}"))[0]


def test_a_trial_that_fits_has_no_resource_problems():
    assert parallel_resource_problems(parallel_spec(4, 4, 8), cpus=16, gpus=4, where="this machine") == []
    assert parallel_resource_problems(parallel_spec(2, 0, 1), cpus=2, gpus=0, where="this machine") == []  # gloo
    single = parse_spec(spec_text("batch_size: 8", "gpus_per_trial: 8, cpus_per_trial: 64"))[0]
    assert parallel_resource_problems(single, cpus=2, gpus=0, where="this machine") == []  # the old checks' job


def test_more_gpu_workers_than_gpus_names_both_fixes():
    [msg] = parallel_resource_problems(parallel_spec(4, 4), cpus=16, gpus=2, where="the Ray cluster at ray://head")
    for fragment in ["resources.workers_per_trial is 4 with one GPU per worker",
                     "the Ray cluster at ray://head has 2 GPU(s)",
                     "--set resources.workers_per_trial=2 --set resources.gpus_per_trial=2",
                     "--set resources.gpus_per_trial=0 for 4 CPU workers (gloo)"]:
        assert fragment in msg, (fragment, msg)
    [msg] = parallel_resource_problems(parallel_spec(2, 2), cpus=16, gpus=0, where="this machine")
    assert "this machine has 0 GPU(s)" in msg and "--set resources.gpus_per_trial=0" in msg
    assert "workers_per_trial=0" not in msg  # no GPU here: fewer GPU workers is no fix


def test_more_cpus_than_there_are_names_the_fix():
    [msg] = parallel_resource_problems(parallel_spec(4, 0, 8), cpus=2, gpus=0, where="this machine")
    for fragment in ["resources.cpus_per_trial is 8 (4 worker(s) × 2 CPU)", "this machine has 2 CPU(s)",
                     "--set resources.cpus_per_trial=2", "each worker then gets 0.5 CPU"]:
        assert fragment in msg, (fragment, msg)
    both = parallel_resource_problems(parallel_spec(4, 4, 8), cpus=2, gpus=1, where="this machine")
    assert len(both) == 2 and "GPU(s)" in both[0] and "CPU(s)" in both[1]


@pytest.mark.parametrize("config, refused", [("BertConfig", True), ("LlamaConfig", False)])
def test_fsdp_needs_a_model_it_can_wrap(tmp_path, config, refused):
    """Preflight reads the base model's config.json (no weights): FSDP shards a causal LM's transformer
    blocks (`_no_split_modules`); a class that names none is refused, naming parallel: ddp."""
    import transformers

    from pareto.preflight import preflight

    base = tmp_path / "base"
    getattr(transformers, config)().save_pretrained(base)
    data = ROOT / "tests" / "bad_specs" / "data"
    spec, _ = parse_spec(BASE + f"data: {{source: custom, forget_file: {data / 'forget.json'}, "
                                f"retain_file: {data / 'retain.json'}}}\n"
                                f"target: {{source: train, train: {{base: {base}}}}}\n"
                                "unlearn: {parallel: fsdp, batch_size: 4}\nresources: {workers_per_trial: 2}\n")
    found = preflight(spec, storage=str(tmp_path / "results"))
    hits = [p for p in found.problems if "FSDP" in p]
    if refused:
        assert hits and "BertLMHeadModel names no transformer blocks" in hits[0] and "use unlearn.parallel: ddp" in hits[0]
    else:
        assert not hits, found.problems
