"""The classifier a vision sweep unlearns from, trained once "until it fits" and cached.

    <cache_dir>/vision-<hash16>/
        manifest.json         kind "vision", config, data selection, accuracies, timings (written last)
        model.safetensors     the Classifier's state (weights, BatchNorm statistics, normalisation)
        images.safetensors    the decoded train/test images and labels (uint8), images.json their ids

The hash covers the config, the data selection (source, path, per_class, forget class and
count), the decoded data's hash and TRAINER_VERSION. Training (paper App. C trains ResNet-50 from
scratch): SGD with Nesterov momentum and weight decay, a cosine learning rate over `max_epochs`,
the standard CIFAR augmentation (random crop with 4-pixel padding, horizontal flip), seeded; it
stops early once the accuracy on (up to `fit_images` of) the train split, without augmentation,
reaches `target_accuracy`. The whole train split is trained on (the forget class included, as in
the paper); forget = `forget_images` images of the forget class, retain = the other classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from pareto.vision.data import ImageSet, augment, forget_index, load_images, save_sets
from pareto.vision.resnet import build_model

TRAINER_VERSION = 1


@dataclass(frozen=True)
class VisionTargetConfig:
    arch: str = "resnet_small"  # resnet_small | resnet18 | resnet50 (pareto.vision.resnet)
    width: int | None = None  # first stage's channels (default: 16 for resnet_small, 64 for resnet18/50)
    depth: int | None = None  # resnet_small only: 6n + 2 (default 8)
    max_epochs: int = 30
    target_accuracy: float = 0.95  # stop once the train accuracy (no augmentation) reaches it
    fit_images: int = 2000  # train images the accuracy is checked on after each epoch (evenly spread)
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True  # random crop (4-pixel padding) + horizontal flip
    seed: int = 0

    def __post_init__(self) -> None:
        build_model(self.arch, 2, self.width, self.depth)  # names a bad arch / width / depth
        for key in ("max_epochs", "batch_size", "fit_images"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be ≥ 1, got {getattr(self, key)}")
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@torch.no_grad()
def predict(model, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted labels, logits) of uint8 images, in eval mode, without gradients."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = [model(images[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    finally:
        model.train(was)
    logits = torch.cat(out) if out else torch.zeros(0, 1)
    return logits.argmax(1), logits


def accuracy(model, data: ImageSet, batch_size: int = 256) -> float:
    if not len(data):
        return float("nan")
    pred, _ = predict(model, data.images, batch_size)
    return (pred == data.labels).float().mean().item()


def spread(n: int, k: int) -> list[int]:
    """k indices evenly spread over range(n) (all of them when k ≥ n)."""
    return list(range(n)) if k >= n else [int(i * n / k) for i in range(k)]


def train_classifier(model, train: ImageSet, cfg: VisionTargetConfig, log: Callable[[str], None],
                     device: str = "cpu") -> dict:
    """SGD (Nesterov) with a cosine rate over max_epochs; stops once the fit accuracy reaches the
    target. Random draws come from one CPU generator (seeded), whatever the device."""
    g = torch.Generator().manual_seed(cfg.seed)
    model.to(device)
    images_all, labels_all = train.images.to(device), train.labels.to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BatchNorm and biases
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = cfg.max_epochs * per_epoch
    fit = train.subset(spread(len(train), cfg.fit_images))
    step, acc, loss_sum, epoch = 0, 0.0, float("nan"), 0
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=g)
        loss_sum = 0.0
        for i in range(0, len(train), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            images = images_all[idx.to(device)]
            if cfg.augment:
                images = augment(images, g)
            for group in opt.param_groups:  # cosine schedule over max_epochs
                group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(images), labels_all[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            step += 1
        acc = accuracy(model, fit)
        log(f"[vision] epoch {epoch}: train loss {loss_sum / len(train):.4f}, train accuracy {acc:.4f}")
        if acc >= cfg.target_accuracy:
            break
    return {"epochs": epoch, "final_train_loss": loss_sum / len(train), "fit_accuracy": acc}


def target_hash(cfg: VisionTargetConfig, selection: dict, digest: str) -> str:
    blob = json.dumps({"config": dataclasses.asdict(cfg), "data": selection, "data_hash": digest,
                       "trainer_version": TRAINER_VERSION}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def split_sets(sets: dict[str, ImageSet], manifest: dict) -> dict[str, ImageSet]:
    """The evaluation splits of a vision target: forget (the N forget images), retain (every train
    image of the other classes), test_forget / test_retain (the test images of the forget class / the rest)."""
    train, test = sets["train"], sets["test"]
    c = train.classes.index(manifest["forget_class"])
    return {"forget": train.subset(manifest["forget_index"]),
            "retain": train.subset(torch.nonzero(train.labels != c).flatten().tolist()),
            "test_forget": test.subset(torch.nonzero(test.labels == c).flatten().tolist()),
            "test_retain": test.subset(torch.nonzero(test.labels != c).flatten().tolist())}


def build_vision_target(data: dict, cfg: VisionTargetConfig, log: Callable[[str], None] = print, *,
                        num_threads: int = 1) -> Path:
    """Directory of the classifier for `data` (the spec's data section as a dict) and `cfg`,
    `<cache>/vision-<hash16>`, trained if absent, with `num_threads` torch threads on a CPU (the
    caller's setting is restored; the count is recorded in the manifest, not hashed: it changes
    float summation order at most)."""
    from pareto.models.cache import build_atomically, default_cache_dir

    source, path, per_class = data["source"], data.get("path"), data.get("per_class")
    forget_class = data["forget_class"]  # the source's default filled in (pareto.sources.tasks)
    sets, digest = load_images(source, path, per_class)
    index = forget_index(sets["train"], forget_class, int(data.get("forget_images", 500)))
    selection = {"source": source, "per_class": per_class, "forget_class": forget_class,
                 "forget_images": len(index)}
    h = target_hash(cfg, selection, digest)
    final = default_cache_dir() / f"vision-{h[:16]}"

    def build_into(out: Path) -> dict:
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        train = sets["train"]
        model = build_model(cfg.arch, len(train.classes), cfg.width, cfg.depth)
        log(f"[vision] training {cfg.arch} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
            f"{len(train)} images of {len(train.classes)} classes, until train accuracy {cfg.target_accuracy}")
        device = "cuda" if torch.cuda.is_available() else "cpu"  # a GPU trains ResNet-18/50 in reasonable time
        result = train_classifier(model, train, cfg, log, device)
        from safetensors.torch import save_model

        model.cpu()
        save_model(model, str(out / "model.safetensors"))
        model.to(device)
        save_sets(out, sets, {"data_hash": digest})
        manifest = {"kind": "vision", "hash": h, "config": dataclasses.asdict(cfg), "data": {**selection, "path": path},
                    "data_name": f"{source}:{path or 'torchvision'}", "data_hash": digest,
                    "trainer_version": TRAINER_VERSION, "classes": list(train.classes),
                    "forget_class": forget_class, "forget_index": index}
        splits = split_sets(sets, manifest)
        accs = {f"{k}_accuracy": round(accuracy(model, v), 4) for k, v in splits.items()}
        train_acc = round(accuracy(model, train), 4)
        manifest.update({
            "n_train": len(train), "n_test": len(sets["test"]), "n_forget": len(index), "n_retain": len(splits["retain"]),
            "n_params": sum(p.numel() for p in model.parameters()), **result, "train_accuracy": train_acc,
            "answer_accuracy": train_acc,  # the sweep's log line reads this key
            **accs, "test_accuracy": round(accuracy(model, sets["test"]), 4),
            "wall_seconds": round(time.perf_counter() - t0, 3), "num_threads": torch.get_num_threads(), "device": device,
            "versions": {"torch": torch.__version__},
        })
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")  # last: a complete target
        return manifest

    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        path_out, manifest = build_atomically(final, build_into, log, "vision")
    finally:
        torch.set_num_threads(before)
    if manifest is not None:
        log(f"[vision] done in {manifest['wall_seconds']:.1f}s: {manifest['epochs']} epochs, train accuracy "
            f"{manifest['train_accuracy']:.4f}, forget {manifest['forget_accuracy']:.4f}, retain "
            f"{manifest['retain_accuracy']:.4f}, test {manifest['test_accuracy']:.4f}")
    return path_out


def load_vision_target(path: str | Path):
    """(model in eval mode, the evaluation splits, manifest) of a built vision target."""
    from safetensors.torch import load_model

    from pareto.vision.data import load_sets

    path = Path(path)
    manifest = json.loads((path / "manifest.json").read_text())
    cfg = manifest["config"]
    model = build_model(cfg["arch"], len(manifest["classes"]), cfg["width"], cfg["depth"])
    load_model(model, str(path / "model.safetensors"))
    model.eval()
    sets, _ = load_sets(path)
    return model, split_sets(sets, manifest), manifest
