"""The step engine against independent computations: float64 autograd, exact quadratics."""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import pytest
import torch

from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine, _Probe
from pareto.core.lr import LR_RULES
from pareto.core.objectives import ForgetObjective
from pareto.core.optim import build_optimizer, step_direction


class Quadratic(torch.nn.Module):
    """θ ∈ R^n; L_R = ½(θ−a)ᵀA(θ−a) + x·0, L_F = bᵀθ + ½θᵀBθ (float64)."""

    def __init__(self, n: int = 6, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.theta = torch.nn.Parameter(torch.randn(n, generator=g, dtype=torch.float64))
        m = torch.randn(n, n, generator=g, dtype=torch.float64)
        self.A = m @ m.T + n * torch.eye(n, dtype=torch.float64)
        self.a = torch.randn(n, generator=g, dtype=torch.float64)
        m2 = torch.randn(n, n, generator=g, dtype=torch.float64)
        self.B = m2 @ m2.T
        self.b = torch.randn(n, generator=g, dtype=torch.float64)

    def retain(self, theta=None):
        t = self.theta if theta is None else theta
        e = t - self.a
        return 0.5 * e @ self.A @ e

    def forget(self, theta=None):
        t = self.theta if theta is None else theta
        return self.b @ t + 0.5 * t @ self.B @ t


class QuadForget(ForgetObjective):
    def value(self, model, batch):
        return model.forget()


def quad_engine(combiner="ngdiff", lr_rule="fixed", opt="sgd", lr=0.05, seed=0, **opt_kw):
    model = Quadratic(seed=seed)
    optimizer = build_optimizer(opt, [model.theta], lr=lr, **opt_kw)
    return model, UnlearnEngine(model, build_combiner(combiner), QuadForget(), LR_RULES.build(lr_rule),
                                optimizer, lr=lr, retain_loss=lambda m, b: m.retain())


@pytest.mark.parametrize("name", ["ngdiff", "gdiff", "ga", "gd"])
def test_sgd_update_is_exactly_the_combined_direction(name):
    model, engine = quad_engine(combiner=name)
    theta0 = model.theta.detach().clone()
    g_r = torch.autograd.grad(model.retain(), model.theta)[0]
    g_f = torch.autograd.grad(model.forget(), model.theta)[0]
    row = engine.step({}, {})
    w_r, w_f = row["w_r"], row["w_f"]
    expected = theta0 - 0.05 * (w_r * g_r - w_f * g_f)
    torch.testing.assert_close(model.theta.detach(), expected, rtol=1e-12, atol=1e-12)
    assert row["gram_rr"] == pytest.approx((g_r @ g_r).item(), rel=1e-12)
    assert row["gram_rf"] == pytest.approx((g_r @ g_f).item(), rel=1e-12)
    assert row["gram_ff"] == pytest.approx((g_f @ g_f).item(), rel=1e-12)
    d = w_r * g_r - w_f * g_f
    assert row["dot_r_upd"] == pytest.approx((g_r @ d).item(), rel=1e-9, abs=1e-12)
    assert row["dot_f_upd"] == pytest.approx((g_f @ d).item(), rel=1e-9, abs=1e-12)
    assert row["loss_r_after"] == pytest.approx(model.retain().item(), rel=1e-12)
    assert row["loss_f_after"] == pytest.approx(model.forget().item(), rel=1e-12)


def test_ngdiff_weights_are_inverse_norms_and_lemma4_holds():
    model, engine = quad_engine()
    for _ in range(5):
        row = engine.step({}, {})
        assert row["w_r"] == pytest.approx(1 / math.sqrt(row["gram_rr"]))
        assert row["w_f"] == pytest.approx(1 / math.sqrt(row["gram_ff"]))
        assert row["dot_r_upd"] >= 0 >= row["dot_f_upd"]


@pytest.mark.parametrize("opt,kw", [("sgd", {}), ("sgd", {"momentum": 0.9, "weight_decay": 0.01}),
                                    ("sgd", {"momentum": 0.9, "nesterov": True}),
                                    ("adam", {}), ("adam", {"weight_decay": 0.1}), ("adamw", {})])
def test_step_direction_matches_a_real_optimizer_step(opt, kw):
    model, engine = quad_engine(opt=opt, lr=0.01, **kw)
    for _ in range(3):  # build up optimizer state first
        engine.step({}, {}, measure_after=False)
    # prepare a gradient, then compare the predicted update with a real step
    model.theta.grad = torch.autograd.grad(model.retain(), model.theta)[0]
    u = step_direction(engine.optimizer, model.theta)
    before = model.theta.detach().clone()
    engine.optimizer.step()
    torch.testing.assert_close((before - model.theta.detach()) / 0.01, u, rtol=1e-9, atol=1e-12)


# With SGD the step is NGDiff's d, a descent direction for L_R by Lemma 4; with Adam it is the
# preconditioned step, which is a descent direction for L_R when the combiner is GD.
@pytest.mark.parametrize("opt,combiner", [("sgd", "ngdiff"), ("adam", "gd"), ("adamw", "gd")])
def test_autolr_recovers_exact_minimising_step_on_a_quadratic(opt, combiner):
    model, engine = quad_engine(combiner=combiner, lr_rule="autolr", opt=opt, lr=1e-3)
    for _ in range(2):
        engine.step({}, {}, measure_after=False)
    engine.step_index = 10  # a probing step (every K = 10)
    theta0 = model.theta.detach().clone()
    g_r = torch.autograd.grad(model.retain(), model.theta)[0]
    row = engine.step({}, {}, measure_after=False)
    # the direction the optimizer actually took, per unit lr
    u = (theta0 - model.theta.detach()) / row["lr"]
    # exact minimiser of s ↦ L_R(θ0 − s·u) for L_R = ½(θ−a)ᵀA(θ−a)
    s_star = ((g_r @ u) / (u @ model.A @ u)).item()
    assert row["autolr_accepted"] is True
    assert row["autolr_eta"] == pytest.approx(s_star, rel=1e-6)
    assert row["lr"] == pytest.approx(s_star, rel=1e-6)
    assert row["autolr_gd"] == pytest.approx((g_r @ u).item(), rel=1e-6)
    assert row["autolr_dhd"] == pytest.approx((u @ model.A @ u).item(), rel=1e-5)
    # and the step landed on the line's minimum
    grad_after = torch.autograd.grad(model.retain(), model.theta)[0]
    assert abs((grad_after @ u).item()) < 1e-6 * (g_r @ u).abs().item()


def test_probe_leaves_parameters_and_optimizer_state_exactly_as_found():
    model, engine = quad_engine(opt="adam", lr=1e-2)
    for _ in range(3):
        engine.step({}, {}, measure_after=False)
    model.theta.grad = torch.autograd.grad(model.retain(), model.theta)[0]
    theta = model.theta.detach().clone()
    state = copy.deepcopy(engine.optimizer.state_dict())
    probe = _Probe(engine, {}, model.retain().item())
    minus, plus = probe(0.5)
    assert minus != plus
    assert torch.equal(model.theta.detach(), theta)
    after = engine.optimizer.state_dict()
    for k, v in state["state"][0].items():
        assert torch.equal(torch.as_tensor(after["state"][0][k]), torch.as_tensor(v)), k


def test_famo_refuses_gradient_ascent_with_a_clear_message():
    if "famo" not in __import__("pareto.core.combiners", fromlist=["x"]).COMBINERS:
        pytest.skip("famo not registered")
    model = Quadratic()
    opt = build_optimizer("sgd", [model.theta], lr=0.1)
    ga = __import__("pareto.core.objectives", fromlist=["x"]).OBJECTIVES.build("ga")
    with pytest.raises(ValueError, match="npo"):
        UnlearnEngine(model, build_combiner("famo"), ga, LR_RULES.build("fixed"), opt, lr=0.1,
                      retain_loss=lambda m, b: m.retain())


def test_the_core_imports_no_task():
    """The model-agnostic core (engine, objectives) loads without the LM or the vision task."""
    code = ("import sys, pareto.core.engine, pareto.core.objectives; "
            "bad = [m for m in sys.modules if m.startswith(('pareto.lm', 'pareto.vision'))]; assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_engine_has_no_default_retain_loss():
    model = Quadratic()
    opt = build_optimizer("sgd", [model.theta], lr=0.1)
    with pytest.raises(TypeError, match="retain_loss"):
        UnlearnEngine(model, build_combiner("ngdiff"), QuadForget(), LR_RULES.build("fixed"), opt, lr=0.1)


@pytest.mark.parametrize("name", ["ga", "npo", "simnpo"])
def test_an_objective_without_a_task_says_so_on_use(name):
    from pareto.core.objectives import OBJECTIVES

    batch = {"index": torch.tensor([0, 1]), "x": torch.zeros(2, 3)}
    obj = OBJECTIVES.build(name)
    match = f"forget objective '{name}' has no task: set objective.task"
    with pytest.raises(RuntimeError, match=match):
        obj.prepare(torch.nn.Linear(3, 1), [batch])
        obj.value(torch.nn.Linear(3, 1), batch)  # objectives with nothing to prepare fail here
    with pytest.raises(RuntimeError, match=match):
        obj.task.loss  # noqa: B018
