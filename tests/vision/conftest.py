"""Shared pieces of the vision tests: one torch thread, a tiny ImageFolder tree written with Pillow."""

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_folder(root: Path, classes=("cat", "dog", "frog"), train=6, test=2, size=32, seed=0) -> Path:
    """train/<class>/NNNN.png and test/<class>/NNNN.png: random images, one mean colour per class."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    for split, n in (("train", train), ("test", test)):
        for ci, c in enumerate(classes):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                px = (torch.rand(size, size, 3, generator=g) * 80 + ci * 80).clamp(0, 255).to(torch.uint8)
                Image.fromarray(px.numpy()).save(root / split / c / f"{i:04d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PARETO_CACHE", str(tmp_path / "cache"))
    return write_folder(tmp_path / "imgs")
