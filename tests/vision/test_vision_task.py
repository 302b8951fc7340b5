"""The classification task: the losses the core differentiates, and one real engine step on a ResNet."""

import math

import pytest
import torch
import torch.nn.functional as F

from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.vision.resnet import build_model
from pareto.vision.task import CLASSIFIER_TASK, ClassifierTask


def batch(n=6, classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"images": torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
            "labels": torch.randint(0, classes, (n,), generator=g), "index": torch.arange(n)}


def warmed_model(classes=5):
    torch.manual_seed(0)
    model = build_model("resnet_small", classes, width=4)
    model.train()
    with torch.no_grad():  # BatchNorm statistics that are not the initial ones
        for s in range(3):
            model(batch(16, classes, seed=10 + s)["images"])
    return model


def test_losses_are_cross_entropy_of_the_label():
    model, b = warmed_model(), batch()
    model.eval()
    ce = F.cross_entropy(model(b["images"]), b["labels"], reduction="none")
    assert torch.allclose(CLASSIFIER_TASK.loss(model, b), ce.mean())
    assert torch.allclose(CLASSIFIER_TASK.logprob(model, b), -ce)  # NPO's log π(y|x)
    assert torch.allclose(CLASSIFIER_TASK.nll_mean(model, b), ce)  # SimNPO's length-normalised NLL: one label


@pytest.mark.parametrize("mode", ["batch", "frozen"])
def test_batchnorm_modes(mode):
    """frozen: the running statistics normalise and stay as they are; batch: the batch's own
    statistics normalise and the running ones move. Gradients reach every parameter either way."""
    model, b = warmed_model(), batch()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.eval()
    eval_loss = F.cross_entropy(model(b["images"]), b["labels"])
    model.train()  # as the engine leaves it
    loss = ClassifierTask(batchnorm=mode).loss(model, b)
    loss.backward()
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    moved = any(not torch.equal(before[k], after[k]) for k in before)
    assert moved == (mode == "batch")
    assert torch.allclose(loss, eval_loss) == (mode == "frozen")
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match="batchnorm must be one of batch, frozen"):
        ClassifierTask(batchnorm="eval")


def test_npo_on_a_classifier_is_the_formula_with_minus_ce():
    model, b = warmed_model(), batch()
    npo = OBJECTIVES.build("npo", beta=0.5)
    task = ClassifierTask(batchnorm="frozen")  # a loss that is a function of θ alone
    npo.task = task
    npo.prepare(model, [b])
    ref = -task.nll_mean(model, b).detach()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    logratio = task.logprob(model, b) - ref
    expected = (2 / 0.5) * F.logsigmoid(-0.5 * logratio).mean()  # L_F = −L_NPO
    assert torch.allclose(npo.value(model, b), expected)


@pytest.mark.parametrize("objective, mode", [("ga", "frozen"), ("npo", "frozen"), ("simnpo", "frozen"),
                                             ("ga", "batch")])
def test_one_engine_step_on_a_resnet(objective, mode):
    """NGDiff with AutoLR: Eq. 5 holds, AutoLR probed; with frozen statistics only the parameters changed."""
    model = warmed_model()
    task = ClassifierTask(batchnorm=mode)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    obj = OBJECTIVES.build(objective)
    obj.task = task
    forget, retain = batch(4, seed=1), batch(8, seed=2)
    obj.prepare(model, [forget])
    opt = build_optimizer("sgd", list(model.parameters()), lr=0.05)
    engine = UnlearnEngine(model, build_combiner("ngdiff", seed=0), obj, LR_RULES.build("autolr"), opt, lr=0.05,
                           retain_loss=task.loss)
    theta = [p.detach().clone() for p in model.parameters()]
    row = engine.step(retain, forget)
    assert row["dot_r_upd"] >= -1e-9 and row["dot_f_upd"] <= 1e-9  # paper Eq. 5 (Lemma 4)
    assert math.isfinite(row["autolr_gd"]) and math.isfinite(row["loss_r_after"])
    assert any(not torch.equal(a, p) for a, p in zip(theta, model.parameters()))
    unchanged = all(torch.equal(buffers[k], v) for k, v in model.named_buffers())
    assert unchanged == (mode == "frozen")
