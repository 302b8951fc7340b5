from pathlib import Path

import pytest
from real_sweep import run_sgd_sweep
from synthetic_sweep import write_sweep


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    """A small synthetic sweep folder (tests/analysis/synthetic_sweep.py)."""
    return write_sweep(tmp_path / "synthetic")


@pytest.fixture(scope="session")
def sgd_sweep(tmp_path_factory, embedded_target) -> Path:
    """A tiny real sweep (tests/analysis/real_sweep.py): t001 NGDiff fixed η, t002 NGDiff AutoLR, SGD."""
    return run_sgd_sweep(tmp_path_factory.mktemp("sgd") / "results")


@pytest.fixture(scope="session")
def sgd_probes(sgd_sweep):
    """Probes of the SGD sweep, computed once: {(trial, step): table}.

    t001 step 1 (the default grid; loss_*_after not measured there), t001 step 2 (a small grid,
    and every example), t002 step 0 (AutoLR probed and fitted there)."""
    from pareto.probe import load_trial, probe_step

    out = {}
    for tid, step, kw in (("t001", 1, {}), ("t001", 2, {"etas": [-1e-4, 1e-4, 0.005], "full": True}),
                          ("t002", 0, {"etas": [-1e-4, 1e-4]})):
        out[tid, step] = probe_step(load_trial(str(sgd_sweep), tid, step), step, log=lambda s: None, **kw)
    return out
