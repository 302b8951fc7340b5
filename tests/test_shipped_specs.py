"""Every shipped spec runs end to end through the CLI, shrunk with --set (real Ray, real Parquet).

The TOFU specs share one shrunken target (the last 10 authors of the real TOFU copy, one of them
forgotten, a one-layer tiny GPT-2), built once and cached; each spec keeps its own methods and
only its step count, evaluation size and learning-rate list shrink. The GPU specs cannot run on a
machine without a GPU: they must say so and exit 2 before any work.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "sweeps"

SMALL_RUN = ["unlearn.steps=2", "unlearn.epochs=null", "eval.retain_items=4", "eval.max_new_tokens=4"]
TINY_TOFU = ["data.authors=10",
             "target.train={base: tiny, n_layer: 1, n_embd: 64, n_head: 2, max_epochs: 40, target_accuracy: 0.9}"]


def pareto(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def run_spec(name: str, storage: Path, sets: list[str]) -> pd.DataFrame:
    args = ["sweep", f"sweeps/{name}.yaml", "--storage", str(storage)]
    for s in sets:
        args += ["--set", s]
    proc = pareto(*args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    trials = pd.read_parquet(storage / name / "trials.parquet")
    assert (trials.status == "ok").all(), trials[["label", "status", "error"]]
    return trials


@pytest.mark.slow
def test_frontier_search(tmp_path, embedded_target):
    trials = run_spec("frontier_search", tmp_path, SMALL_RUN + ["search.num_samples=3"])
    assert len(trials) == 4 and set(trials.search) == {"optuna"}


@pytest.mark.parametrize("name, n_points", [("gdiff_c", 14), ("mto", 13), ("autolr", 49), ("npo", 13),
                                             ("phi15_tofu", 31), ("llama2_7b_tofu", 7),
                                             ("repro_fixed", 145), ("repro_autolr", 48), ("repro_npo", 18),
                                             ("repro_gen", 24), ("repro_sgd", 72), ("repro_sgd_gdiff", 24),
                                             ("cifar10", 11), ("cifar100", 11), ("cifar10_cpu", 11)])
def test_full_spaces_expand_as_documented(name, n_points):
    from pareto.spec import load_spec

    assert len(load_spec(SWEEPS / f"{name}.yaml")[1]) == n_points  # baseline included


@pytest.mark.slow
@pytest.mark.parametrize("name, space, n_trials", [
    ("gdiff_c", "search.space.combiner=[{gdiff: {c: [0.0, 1.0]}}, ngdiff]", 4),
    ("mto", "search.space.combiner=[pcgrad, mgda]", 3),
    ("autolr", "search.space.lr=[1.0e-4]", 3),  # ngdiff (below) × fixed/autolr, and the baseline
    ("npo", "search.space.combiner=[famo]", 5),  # famo × npo/simnpo × fixed/autolr, and the baseline
    ("repro_fixed", "search.space.combiner=[ngdiff, {gdiff: {c: [0.0]}}]", 3),  # and the baseline
    ("repro_autolr", "search.space.combiner=[ngdiff]", 1),
    ("repro_npo", "search.space.lr=[1.0e-4]", 2),  # npo × fixed/autolr
    ("repro_gen", "search.space.combiner=[ngdiff]", 1),  # GeN's clipped, smoothed AutoLR
    ("repro_sgd", "search.space.combiner=[ngdiff]", 1),  # plain SGD
])
def test_tofu_specs(name, space, n_trials, tmp_path, real_data):
    """Each spec's data, target, evaluation and search settings, on a few of its methods."""
    sets = [f"data.path={real_data('tofu')}", *TINY_TOFU, *SMALL_RUN, space]
    if name == "autolr":
        sets.append("search.space.combiner=[ngdiff]")
    if name.startswith("repro_"):  # one rate, one seed
        sets += ["search.space.seed=[0]"] + (["search.space.lr=[1.0e-4]"] if name == "repro_fixed" else
                                                  ["search.space.lr=[0.01]"] if name == "repro_sgd" else [])
    trials = run_spec(name, tmp_path, sets)
    assert len(trials) == n_trials
    assert trials.forget_quality.between(0, 1).all() and trials.model_utility.notna().all()


@pytest.mark.parametrize("name", ["phi15_tofu", "llama2_7b_tofu", "cifar10", "cifar100"])
def test_gpu_specs_say_they_need_a_gpu(name, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = pareto("sweep", f"sweeps/{name}.yaml", "--storage", str(tmp_path))
    assert proc.returncode == 2 and "gpus_per_trial is 1" in proc.stderr and "GPU(s)" in proc.stderr, proc.stderr
    assert not (tmp_path / name).exists()


@pytest.mark.slow
def test_cifar10_cpu_spec(tmp_path, real_data):
    """The CPU vision spec on the subset tar, shrunk: every method, a tiny ResNet, 2 steps."""
    sets = [f"data.path={real_data('cifar10_subset.tar')}", "data.per_class=30", "data.forget_images=20",
            "target.train={arch: resnet_small, width: 8, max_epochs: 2, augment: false}", *SMALL_RUN]
    trials = run_spec("cifar10_cpu", tmp_path, sets)
    assert len(trials) == 11 and trials.forget_acc.between(0, 1).all() and trials.rouge_f.isna().all()
