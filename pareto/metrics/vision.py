"""Image-classifier metrics (paper App. C, Table 4): accuracy on the forget and retain splits.

    forget_acc       accuracy on the forget images (train split; Table 4's Forget Acc ↓)
    retain_acc       accuracy on the retain images of the train split (Table 4's Retain Acc ↑;
                     `eval.retain_items` of them, evenly spread over the other classes)
    test_forget_acc  accuracy on the test images of the forgotten class ↓
    test_retain_acc  accuracy on the test images of every other class ↑

The model is evaluated in eval mode (BatchNorm running statistics). `loss_f_eval` / `loss_r_eval`
(pareto.metrics.loss) give the mean cross-entropy on the same forget / retain images. Each image
is an item: its id (split/class/file), 1 or 0, the predicted and the true class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pareto.data.images import ImageSet
from pareto.metrics._base import EvalContext, ItemScore, MetricValue, register_split_metrics


def predictions(ctx: EvalContext, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted labels, per-image cross-entropy) of an image split, computed once per evaluation."""

    @torch.no_grad()
    def compute():
        data, model = ctx.split(split), ctx.model
        was = model.training
        model.eval()
        device = next(model.parameters()).device
        bs = ctx.settings.batch_size
        preds, ces = [], []
        try:
            for i in range(0, len(data), bs):
                logits = model(data.images[i:i + bs].to(device)).float()
                labels = data.labels[i:i + bs].to(device)
                preds.append(logits.argmax(1).cpu())
                ces.append(F.cross_entropy(logits, labels, reduction="none").double().cpu())
        finally:
            model.train(was)
        return torch.cat(preds), torch.cat(ces)

    return ctx.memo(("image_predictions", split), compute)


def _settings(data, split: str) -> dict:
    return {"n_items": len(data), "split": split, "batchnorm": "running statistics (eval mode)"}


def accuracy_value(ctx: EvalContext, split: str) -> MetricValue:
    data = ctx.split(split)
    pred, _ = predictions(ctx, split)
    correct = (pred == data.labels).double()
    names = data.classes
    items = tuple(ItemScore(data.ids[i], float(c), None, names[p], names[y])
                  for i, (c, p, y) in enumerate(zip(correct.tolist(), pred.tolist(), data.labels.tolist())))
    return MetricValue(correct.mean().item(), items, _settings(data, split))


def loss_value(ctx: EvalContext, split: str) -> MetricValue:
    """Mean cross-entropy over the images of `split` (what loss_f_eval / loss_r_eval report for images)."""
    data = ctx.split(split)
    _, ce = predictions(ctx, split)
    names = data.classes
    items = tuple(ItemScore(data.ids[i], v, None, None, names[y]) for i, (v, y) in enumerate(zip(ce.tolist(), data.labels.tolist())))
    return MetricValue(ce.mean().item(), items, {**_settings(data, split), "reduction": "image mean"})


def is_images(rows) -> bool:
    return isinstance(rows, ImageSet)


# name, direction, value, split: Table 4's Forget Acc ↓ and Retain Acc ↑, on the train and test images
register_split_metrics((
    ("forget_acc", "min", accuracy_value, "forget"), ("retain_acc", "max", accuracy_value, "retain"),
    ("test_forget_acc", "min", accuracy_value, "test_forget"), ("test_retain_acc", "max", accuracy_value, "test_retain"),
), data="images")
