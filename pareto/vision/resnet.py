"""ResNets for 32×32 images (CIFAR), defined here so torchvision is not needed.

- `resnet18`, `resnet50`: He et al. 2015 ("Deep residual learning for image recognition",
  arXiv:1512.03385) in the standard CIFAR variant — a 3×3 stride-1 stem and no max-pool, four
  stages of BasicBlock [2, 2, 2, 2] / Bottleneck [3, 4, 6, 3] at widths 64·{1, 2, 4, 8}, global
  average pool, one linear layer (the layout of kuangliu/pytorch-cifar, which most CIFAR
  unlearning code uses). ResNet-18 on CIFAR-10 has 11,173,962 parameters and ResNet-50
  23,520,842; the paper's appendix C trains a ResNet-50 from scratch.
- `resnet_small`: He et al.'s own CIFAR family (Sec. 4.2): a 3×3 stem, three stages of n
  BasicBlocks at widths w·{1, 2, 4}, depth 6n + 2 (ResNet-20 = depth 20, width 16), with 1×1
  projection shortcuts. depth 8 / width 16 (≈ 78 k parameters) fits the CIFAR-10 subset on a CPU
  in a few minutes.

`Classifier` wraps a network with the input pipeline: uint8 [B, 3, H, W] images → [0, 1] →
per-channel normalisation (mean and std are buffers, saved with the weights), so batches stay
uint8 until they reach the model and training, unlearning and evaluation cannot disagree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: CIFAR-10's per-channel mean and std (the usual constants; CIFAR-100's differ by < 0.02).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, 4 * c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * c)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != 4 * c:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, 4 * c, 1, stride, bias=False), nn.BatchNorm2d(4 * c))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: 3×3 stem (no max-pool), one stage per entry of `blocks` (the first at stride
    1, the rest at stride 2, widths doubling), global average pool, linear classifier."""

    def __init__(self, block, blocks: list[int], num_classes: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        stages, c_in = [], width
        for i, n in enumerate(blocks):
            c = width * 2 ** i
            layers = []
            for j in range(n):
                layers.append(block(c_in, c, stride=2 if (i > 0 and j == 0) else 1))
                c_in = c * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():  # He et al.'s initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Classifier(nn.Module):
    """uint8 images [B, 3, H, W] → logits: scale to [0, 1], normalise per channel, run `net`."""

    def __init__(self, net: nn.Module, mean=CIFAR_MEAN, std=CIFAR_STD) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.mean.dtype) / 255.0
        return self.net((x - self.mean) / self.std)


def _small_blocks(depth: int) -> list[int]:
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet_small depth must be 6n + 2 with n ≥ 1 (8, 14, 20, 32, …), got {depth}")
    return [(depth - 2) // 6] * 3


#: arch name → (block, blocks per stage from depth, default width, default depth)
ARCHS = {
    "resnet18": (BasicBlock, lambda depth: [2, 2, 2, 2], 64, 18),
    "resnet50": (Bottleneck, lambda depth: [3, 4, 6, 3], 64, 50),
    "resnet_small": (BasicBlock, _small_blocks, 16, 8),
}


def build_model(arch: str, num_classes: int, width: int | None = None, depth: int | None = None) -> Classifier:
    """A `Classifier` around the named CIFAR ResNet; `width` is the first stage's channels (default:
    64 for resnet18/50, 16 for resnet_small), `depth` only for resnet_small (6n + 2, default 8)."""
    if arch not in ARCHS:
        from pareto._registry import did_you_mean

        raise ValueError(f"unknown arch {arch!r}.{did_you_mean(arch, list(ARCHS))} Available: {', '.join(ARCHS)}")
    block, blocks, default_width, default_depth = ARCHS[arch]
    if depth is not None and arch != "resnet_small" and depth != default_depth:
        raise ValueError(f"{arch} has a fixed depth ({default_depth}); depth is a resnet_small setting")
    width = width or default_width
    if width < 1:
        raise ValueError(f"width must be ≥ 1, got {width}")
    return Classifier(ResNet(block, blocks(depth or default_depth), num_classes, width))
