"""The in-memory image split: what every image source produces (`pareto.vision.data`) and what the
image metrics read (`pareto.metrics.vision`). Torch only, so either side can import it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class ImageSet:
    """Images [N, 3, 32, 32] uint8, labels [N] int64, an id per image, and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    ids: list[str]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Sequence[int]) -> ImageSet:
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], [self.ids[i] for i in idx.tolist()], self.classes)
