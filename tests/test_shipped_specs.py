"""Every shipped spec runs end to end through the CLI, shrunk with --set (real Ray, real Parquet).

The TOFU specs share one shrunken target (the last 10 authors of the real TOFU copy, one of them
forgotten, a one-layer tiny GPT-2), built once and cached; each spec keeps its own methods and
only its step count, evaluation size and learning-rate list shrink. All these sweeps run one after
another in one process (`runs`: torch imported once, one local Ray), each as `pareto sweep` runs
it. The GPU specs cannot run on a machine without a GPU: they must say so and exit 2 before any work.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _helpers import pareto_in_one_process

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "sweeps"

SMALL_RUN = ["unlearn.steps=2", "unlearn.epochs=null", "eval.retain_items=4", "eval.max_new_tokens=4"]
TINY_TOFU = ["data.authors=10",
             "target.train={base: tiny, n_layer: 1, n_embd: 64, n_head: 2, max_epochs: 40, target_accuracy: 0.9}"]
TOFU_RUNS = [  # spec, its search space shrunk, the trials that leaves
    ("gdiff_c", "search.space.combiner=[{gdiff: {c: [0.0, 1.0]}}, ngdiff]", 4),
    ("mto", "search.space.combiner=[pcgrad, mgda]", 3),
    ("autolr", "search.space.lr=[1.0e-4]", 3),  # ngdiff (below) × fixed/autolr, and the baseline
    ("npo", "search.space.combiner=[famo]", 3),  # famo × npo × fixed/autolr, and the baseline
    ("simnpo", "search.space.combiner=[famo]", 3),  # famo × simnpo × fixed/autolr, and the baseline
    ("repro_fixed", "search.space.combiner=[ngdiff, {gdiff: {c: [0.0]}}]", 3),  # and the baseline
    ("repro_autolr", "search.space.combiner=[ngdiff]", 1),
    ("repro_npo", "search.space.lr=[1.0e-4]", 2),  # npo × fixed/autolr
    ("repro_gen", "search.space.combiner=[ngdiff]", 1),  # GeN's clipped, smoothed AutoLR
    ("repro_sgd", "search.space.combiner=[ngdiff]", 1),  # plain SGD
    ("repro2_fixed", "search.space.combiner=[ngdiff]", 2),  # round 2's stand-in target, and the baseline
    ("repro2_autolr", "search.space.combiner=[ngdiff]", 1),
]
CIFAR10_CPU = ["data.per_class=30", "data.forget_images=20",
               "target.train={arch: resnet_small, width: 8, max_epochs: 2, augment: false}", *SMALL_RUN]


def pareto(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def tofu_sets(name: str, space: str, tofu: Path) -> list[str]:
    """Each spec's data, target, evaluation and search settings, on a few of its methods."""
    sets = [f"data.path={tofu}", *TINY_TOFU, *SMALL_RUN, space]
    if name == "autolr":
        sets.append("search.space.combiner=[ngdiff]")
    if name.startswith("repro_"):  # one rate, one seed
        sets += ["search.space.seed=[0]"] + (["search.space.lr=[1.0e-4]"] if name == "repro_fixed" else
                                              ["search.space.lr=[0.01]"] if name == "repro_sgd" else [])
    if name.startswith("repro2_"):  # one rate, one seed, the stand-in kept in the shrunk target
        sets += ["search.space.seed=[0]", "search.space.lr=[2.0e-4]",
                 TINY_TOFU[1][:-1] + ", pretrain: [real_authors, world_facts]}"]
    return sets


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_data, embedded_target) -> dict:
    """{spec name: its trials.parquet as a frame} for every sweep of this file, the real-data ones
    only where real_data has their data; all in one process. A sweep that failed fails its test."""
    storage = tmp_path_factory.mktemp("shipped")
    sets = {"frontier_search": [*SMALL_RUN, "search.num_samples=3"], "methods": [*SMALL_RUN, "search.space.lr=[1.0e-3]"],
            "robustness": []}  # as shipped: 49 trials of 30 steps, ~1 min on 2 cores
    if tofu := real_data("tofu", required=False):
        sets.update({name: tofu_sets(name, space, tofu) for name, space, _ in TOFU_RUNS})
    if tar := real_data("cifar10_subset.tar", required=False):
        sets["cifar10_cpu"] = [f"data.path={tar}", *CIFAR10_CPU]
    commands = [["sweep", f"sweeps/{name}.yaml", "--storage", str(storage), *(a for s in v for a in ("--set", s))]
                for name, v in sets.items()]
    results = pareto_in_one_process(commands, storage / "results.json", timeout=3600)  # 15+ sweeps, 2 cores
    return {name: (result, storage / name) for name, result in zip(sets, results)}


def trials_of(runs: dict, name: str) -> pd.DataFrame:
    result, folder = runs[name]
    assert result["returncode"] == 0, result["output"][-3000:]
    assert "Traceback" not in result["output"]
    trials = pd.read_parquet(folder / "trials.parquet")
    assert (trials.status == "ok").all(), trials[["label", "status", "error"]]
    return trials


@pytest.mark.slow
def test_frontier_search(runs):
    trials = trials_of(runs, "frontier_search")
    assert len(trials) == 4 and set(trials.search) == {"optuna"}


@pytest.mark.slow
def test_methods_runs_every_objective_with_both_rules(runs):
    from pareto.core.objectives import OBJECTIVES

    trials = trials_of(runs, "methods")
    assert len(trials) == 21 and set(trials.objective[trials.combiner != "no-unlearn"]) == set(OBJECTIVES.names())


@pytest.mark.slow
def test_robustness_front_of_three_objectives_equals_a_brute_force_front(runs):
    """Issue 21: `pareto frontier --objectives rouge_f,utility_r,relearn_rouge_f` on sweeps/robustness.yaml's
    results marks dominated exactly the trials some other trial weakly beats on all three and strictly on one."""
    import io

    trials = trials_of(runs, "robustness")
    assert len(trials) == 49 and trials.relearn_rouge_f.notna().all() and trials.quant_rouge_f.notna().all()
    out = pareto("frontier", "--results", str(runs["robustness"][1]), "--objectives",
                 "rouge_f,utility_r,relearn_rouge_f", "--format", "csv")
    assert out.returncode == 0, out.stderr
    front = pd.read_csv(io.StringIO(out.stdout)).set_index("trial_id")
    signs = {"rouge_f": 1, "utility_r": -1, "relearn_rouge_f": 1}  # minimise s * value
    v = {t: [signs[m] * r[m] for m in signs] for t, r in trials.set_index("trial_id").iterrows()}
    beats = lambda a, b: all(x <= y for x, y in zip(v[a], v[b])) and v[a] != v[b]  # noqa: E731
    brute = {t: sorted(o for o in v if beats(o, t)) for t in v}
    assert set(front.index) == set(v)
    assert {t: bool(front.loc[t, "dominated"]) for t in v} == {t: bool(d) for t, d in brute.items()}
    by = front["dominated_by"].fillna("").astype(str)
    assert {t: sorted(filter(None, by[t].split(","))) for t in v} == brute
    assert 0 < sum(not d for d in brute.values()) < len(v)  # a front, and trials off it


@pytest.mark.parametrize("name, n_points", [("gdiff_c", 14), ("mto", 20), ("methods", 41), ("autolr", 49), ("npo", 7), ("simnpo", 7),
                                             ("phi15_tofu", 31), ("llama2_7b_tofu", 7),
                                             ("repro_fixed", 145), ("repro_autolr", 48), ("repro_npo", 18),
                                             ("repro_gen", 24), ("repro_sgd", 72), ("repro_sgd_gdiff", 24),
                                             ("repro2_fixed", 31), ("repro2_autolr", 15), ("repro2_quick", 9),
                                             ("cifar10", 11), ("cifar100", 11), ("cifar10_cpu", 11), ("robustness", 49)])
def test_full_spaces_expand_as_documented(name, n_points):
    from pareto.spec import load_spec

    assert len(load_spec(SWEEPS / f"{name}.yaml")[1]) == n_points  # baseline included


@pytest.mark.slow
@pytest.mark.parametrize("name, n_trials", [(name, n) for name, _, n in TOFU_RUNS])
def test_tofu_specs(name, n_trials, runs, real_data):
    real_data("tofu")
    trials = trials_of(runs, name)
    assert len(trials) == n_trials
    assert trials.forget_quality.between(0, 1).all() and trials.model_utility.notna().all()


@pytest.mark.parametrize("name", ["phi15_tofu", "llama2_7b_tofu", "cifar10", "cifar100"])
def test_gpu_specs_say_they_need_a_gpu(name, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = pareto("sweep", f"sweeps/{name}.yaml", "--storage", str(tmp_path))
    asks = "workers_per_trial is 4 with one GPU per worker" if name == "llama2_7b_tofu" else "gpus_per_trial is 1"
    assert proc.returncode == 2 and asks in proc.stderr and "GPU(s)" in proc.stderr, proc.stderr
    assert not (tmp_path / name).exists()


@pytest.mark.slow
def test_cifar10_cpu_spec(runs, real_data):
    """The CPU vision spec on the subset tar, shrunk: every method, a tiny ResNet, 2 steps."""
    real_data("cifar10_subset.tar")
    trials = trials_of(runs, "cifar10_cpu")
    assert len(trials) == 11 and trials.forget_acc.between(0, 1).all() and trials.rouge_f.isna().all()
