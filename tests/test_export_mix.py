"""eval.keep_checkpoints, `pareto export` and `pareto mix` on tiny real sweeps of the embedded target
(through Ray Tune, as a user runs them): the kept weights reload and score exactly what the sweep
recorded; α = 0 is the target (the No-unlearn trial), α = 1 the trial; every bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _helpers import fails
from click.testing import CliRunner

from pareto.cli import main

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("loss_f_eval", "loss_r_eval", "rouge_f", "utility_r")
SWEEP = ("--set", "unlearn.steps=4", "--set", "eval.every=2", "--set", "eval.keep_checkpoints=true",
         "--set", "eval.retain_items=8", "--set", "eval.max_new_tokens=6", "--set", "search.space.lr=[0.001]",
         "--set", "search.space.combiner=[ngdiff]", "--set", "search.space.lr_rule=[fixed]")


def sweep(storage: Path, name: str, *extra: str) -> Path:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                             os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "pareto", "sweep", "sweeps/quickstart.yaml", "--storage", str(storage),
                           "--set", f"name={name}", *SWEEP, *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return storage / name


@pytest.fixture(scope="module")
def full_sweep(tmp_path_factory, embedded_target) -> Path:
    """t000 No-unlearn, t001 NGDiff (Adam, η 1e-3), evaluations at steps 2 and 4, weights kept."""
    return sweep(tmp_path_factory.mktemp("keep") / "results", "keep_full")


@pytest.fixture(scope="module")
def lora_sweep(tmp_path_factory, embedded_target) -> Path:
    return sweep(tmp_path_factory.mktemp("keep_lora") / "results", "keep_lora", "--set", "unlearn.lora={r: 4, alpha: 8}",
                 "--set", "search.space.lr=[0.01]")


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def recorded(folder: Path, trial: str, step: int) -> dict:
    evals = pq.read_table(folder / "evals.parquet").to_pylist()
    return next(e for e in evals if e["trial_id"] == trial and e["eval_step"] == step)


def pareto_evaluation(folder: Path, model) -> dict:
    """The sweep's own evaluation (its metrics, splits, template, BOS) of `model`."""
    from pareto.export import Evaluator, open_kept

    ev = Evaluator(open_kept(str(folder), "t001", 2), log=lambda s: None)
    return ev.evaluate(model)[0]


def test_the_sweep_keeps_every_evaluation_of_unlearning_trials(full_sweep):
    kept = full_sweep / "checkpoints"
    assert sorted(p.name for p in kept.iterdir()) == ["t001"]  # the baseline is the target: nothing kept
    assert sorted(p.name for p in (kept / "t001").iterdir()) == ["step2", "step4"]
    meta = json.loads((kept / "t001" / "step2" / "meta.json").read_text())
    assert meta["lora"] is None and meta["step"] == 2 and meta["dtype"] == "float32"
    assert not list(full_sweep.rglob("*.tmp*"))
    # the two kept steps differ (the trial moved), and step 4's are not the target's
    from safetensors.torch import load_file

    a, b = (load_file(str(kept / "t001" / s / "model.safetensors")) for s in ("step2", "step4"))
    assert a.keys() == b.keys() and any(not (a[k] == b[k]).all() for k in a)


def test_export_loads_with_transformers_and_scores_the_record(full_sweep, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "t001-s2"
    run = cli("export", "--results", str(full_sweep), "--trial", "t001", "--step", "2", "--out", str(out))
    assert run.exit_code == 0, run.output
    assert {"config.json", "model.safetensors", "tokenizer.json", "pareto_export.json"} <= {p.name for p in out.iterdir()}
    model = AutoModelForCausalLM.from_pretrained(out)
    model.eval()
    got, want = pareto_evaluation(full_sweep, model), recorded(full_sweep, "t001", 2)
    print("export t001@2:", {m: (got[m], want[m]) for m in METRICS})
    for m in METRICS:
        assert got[m] == pytest.approx(want[m], rel=1e-5, abs=1e-7), m
    assert recorded(full_sweep, "t001", 2)["loss_f_eval"] != recorded(full_sweep, "t000", 0)["loss_f_eval"]
    note = json.loads((out / "pareto_export.json").read_text())
    assert note["trial_id"] == "t001" and note["step"] == 2 and note["metrics"]["loss_f_eval"] == want["loss_f_eval"]
    # a second export to the same folder is refused, the folder left as it is
    fails(cli("export", "--results", str(full_sweep), "--trial", "t001", "--step", "2", "--out", str(out)),
          "--out", "not empty")


def test_mix_ends_are_the_target_and_the_trial_and_frontier_sees_them(full_sweep):
    before = pq.read_table(full_sweep / "trials.parquet").num_rows
    run = cli("mix", "--results", str(full_sweep), "--trial", "t001", "--step", "2", "--alphas", "0:1:0.5")
    assert run.exit_code == 0, run.output
    trials = {r["trial_id"]: r for r in pq.read_table(full_sweep / "trials.parquet").to_pylist()}
    mixes = {json.loads(r["combiner_params"])["alpha"]: r for r in trials.values() if r["combiner"] == "mix"}
    assert sorted(mixes) == [0.0, 0.5, 1.0] and len(trials) == before + 3
    base, own = trials["t000"], recorded(full_sweep, "t001", 2)
    print("mix α=0 vs t000:", {m: (mixes[0.0][m], base[m]) for m in METRICS})
    print("mix α=1 vs t001@2:", {m: (mixes[1.0][m], own[m]) for m in METRICS})
    for m in METRICS:
        assert mixes[0.0][m] == pytest.approx(base[m], rel=1e-6, abs=1e-9), m
        assert mixes[1.0][m] == pytest.approx(own[m], rel=1e-6, abs=1e-9), m
    assert min(base["loss_f_eval"], own["loss_f_eval"]) <= mixes[0.5]["loss_f_eval"]  # a real evaluation, not an end
    evals = [e for e in pq.read_table(full_sweep / "evals.parquet").to_pylist() if e["trial_id"] in
             {r["trial_id"] for r in mixes.values()}]
    assert sorted(e["eval_step"] for e in evals) == [2, 2, 2]
    # mixing again replaces, never duplicates; frontier reads the results unchanged
    again = cli("mix", "--results", str(full_sweep), "--trial", "t001", "--step", "2", "--alphas", "1")
    assert again.exit_code == 0, again.output
    assert pq.read_table(full_sweep / "trials.parquet").num_rows == before + 3
    front = cli("frontier", "--results", str(full_sweep))
    assert front.exit_code == 0 and "mix α=0.5 of t001@2" in front.output, front.output
    page = full_sweep.parent / "report.html"
    report = cli("report", "--results", str(full_sweep), "--out", str(page))
    text = page.read_text()
    assert report.exit_code == 0 and 'id="mix"' in text and "Mix(t001@2)" in text, report.output
    curve = text[text.index('id="mix"'):]
    assert curve.index("<td>0</td>") < curve.index("<td>0.5</td>") < curve.index("<td>1</td>")  # the α column, in order


def test_lora_keeps_adapters_exports_peft_and_mixes_the_delta(lora_sweep, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    meta = json.loads((lora_sweep / "checkpoints" / "t001" / "step4" / "meta.json").read_text())
    assert meta["lora"]["r"] == 4 and meta["n_tensors"] > 0
    out = tmp_path / "lora"
    run = cli("export", "--results", str(lora_sweep), "--trial", "t001", "--step", "4", "--out", str(out))
    assert run.exit_code == 0, run.output
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    base_dir = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), out)
    model.eval()
    from pareto.export import Evaluator, open_kept

    got = Evaluator(open_kept(str(lora_sweep), "t001", 4), log=lambda s: None).evaluate(model)[0]
    want = recorded(lora_sweep, "t001", 4)
    print("lora export t001@4:", {m: (got[m], want[m]) for m in METRICS})
    for m in METRICS:
        assert got[m] == pytest.approx(want[m], rel=1e-5, abs=1e-7), m
    run = cli("mix", "--results", str(lora_sweep), "--trial", "t001", "--alphas", "0,1")
    assert run.exit_code == 0, run.output
    trials = {r["trial_id"]: r for r in pq.read_table(lora_sweep / "trials.parquet").to_pylist()}
    mixes = {json.loads(r["combiner_params"])["alpha"]: r for r in trials.values() if r["combiner"] == "mix"}
    for m in METRICS:
        assert mixes[0.0][m] == pytest.approx(trials["t000"][m], rel=1e-6, abs=1e-9), m
        assert mixes[1.0][m] == pytest.approx(want[m], rel=1e-6, abs=1e-9), m


def test_bad_input_exits_2_naming_the_fix(full_sweep, tmp_path, monkeypatch):
    r = str(full_sweep)
    fails(cli("export", "--results", r, "--trial", "t001", "--step", "3", "--out", str(tmp_path / "x")),
          "step 3", "2, 4", "--step")
    fails(cli("export", "--results", r, "--trial", "t099", "--step", "2", "--out", str(tmp_path / "x")),
          "t099", "t000, t001")
    fails(cli("export", "--results", r, "--trial", "t000", "--step", "0", "--out", str(tmp_path / "x")),
          "baseline", "t001")
    for bad in ("1:0:0.1", "0:1:0", "0:1:0.3", "a,b", "0,2", ""):
        fails(cli("mix", "--results", r, "--trial", "t001", "--alphas", bad), "--alphas")
    assert not (tmp_path / "x").exists()
    monkeypatch.setenv("PARETO_CACHE", str(tmp_path / "empty-cache"))
    fails(cli("export", "--results", r, "--trial", "t001", "--step", "2", "--out", str(tmp_path / "x")),
          "not in the cache", "pareto target SPEC")
    # a sweep that did not keep its weights
    plain = tmp_path / "plain"
    plain.mkdir()
    t = pq.read_table(full_sweep / "trials.parquet")
    rows = t.to_pylist()
    for row in rows:
        spec = json.loads(row["spec"])
        spec["eval"]["keep_checkpoints"] = False
        row["spec"] = json.dumps(spec)
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), plain / "trials.parquet")
    fails(cli("mix", "--results", str(plain), "--trial", "t001"), "eval.keep_checkpoints=true")
    fails(cli("export", "--results", str(plain), "--trial", "t001", "--step", "2", "--out", str(tmp_path / "y")),
          "eval.keep_checkpoints=true")


def test_validate_estimates_what_keep_checkpoints_writes(full_sweep):
    """The size note's numbers against what the sweep wrote: 1 unlearning trial × 2 evaluations ×
    the kept file's size (safetensors adds a header of a few KiB)."""
    from pareto.export import kept_size
    from pareto.spec import load_spec

    spec, points = load_spec(str(ROOT / "sweeps" / "quickstart.yaml"), [a for a in SWEEP if a != "--set"])
    trials, evals, per, why = kept_size(spec, points)
    files = sorted((full_sweep / "checkpoints").rglob("model.safetensors"))
    assert (trials, evals, why) == (1, 2, "") and len(files) == trials * evals
    assert per == pytest.approx(files[0].stat().st_size, rel=0.01)
    run = cli("validate", str(ROOT / "sweeps" / "quickstart.yaml"), "--no-estimate", *SWEEP)
    assert run.exit_code == 0 and "eval.keep_checkpoints: 1 trial(s) × 2 evaluation(s) ×" in run.output, run.output


# ------------------------------------------------------------------ a trial on several workers
def _kept_on_workers(setup: dict, point: dict, name: str, folder: str) -> dict:
    """2 steps of the trial on this rank, its weights kept (every rank gathers, rank 0 writes);
    the full trained parameters, gathered, to compare with."""
    from pareto import checkpoint
    from pareto.core.parallel import strategy
    from pareto.results.store import Store
    from trainables.unlearn import start_trial

    par = strategy(name)
    trial = start_trial(setup, point, parallel=par)
    for _ in range(2):
        trial.engine.step(trial.batch(trial.retain), trial.batch(trial.forget))
    checkpoint.keep_weights(Store(folder), "", "t001", 2, trial.model, parallel=par)
    return {n.replace("_fsdp_wrapped_module.", "").removeprefix("module."):
            (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().cpu().clone()
            for n, p in trial.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("case", ["adam", "lora"])
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_a_trial_on_two_workers_keeps_whole_weights_named_as_one_process_does(embedded_target, tmp_path, case,
                                                                              parallel):
    """Under DDP and FSDP (gloo, CPU) the kept file holds the full (gathered) tensors, under the
    names a one-process trial keeps (LoRA: peft's adapter layout), written once by rank 0."""
    from test_parallel_trial import on_two_workers, spec_setup

    from pareto import checkpoint
    from pareto.results.store import Store
    from trainables.unlearn import start_trial

    setup, point = spec_setup(embedded_target, case, parallel)
    params = on_two_workers(_kept_on_workers, setup, point, parallel, str(tmp_path))
    kept, meta = checkpoint.read_kept(Store(str(tmp_path)), "", "t001", 2)
    one, _ = checkpoint.kept_tensors(start_trial(*spec_setup(embedded_target, case, None)).model)
    assert set(kept) == set(one) and (meta["lora"] is not None) == (case == "lora")
    for name, p in params.items():
        key = name.replace(".default.", ".")
        if key not in kept:  # a tied weight, kept once under its other name
            assert case != "lora" and any(torch_equal(p, t) for t in kept.values()), name
            continue
        assert torch_equal(kept[key], p), name


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())
