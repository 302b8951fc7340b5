"""Image-classification data: CIFAR-10/100 or any ImageFolder-style directory → uint8 tensors.

Sources (`data.source`):
- `cifar10`, `cifar100`: a local directory (or .tar of one) in ImageFolder layout when
  `data.path` is set, else torchvision's downloader (`torchvision.datasets.CIFAR10/100(download=
  True)`, into the cache) when torchvision imports; otherwise a clear error naming the fix.
- `image_folder`: `data.path` = `train/<class>/*.jpg|png` and `test/<class>/*.jpg|png` (or a .tar
  holding that, possibly under one top folder, e.g. cifar10_subset.tar → cifar10_subset/train/…).

Images are decoded once with Pillow (RGB, resized to 32×32 if they are not) into uint8 tensors
[N, 3, 32, 32] and cached under `<cache>/vision-data/<key>/` (safetensors + JSON, no pickle), keyed
by the folder's file list (names, sizes, mtimes) and `per_class`; the data hash is the sha256 of
the decoded tensors. Class names are the folder names, sorted (CIFAR's own class order is
alphabetical, so folder and torchvision labels agree).

The forget set (paper App. C): `forget_images` images of the class `forget_class`, sampled from
the train split with a fixed generator (seed 0), default 500 dog images (CIFAR-10) / 500 bed
images (CIFAR-100); the retain set is every train image of the other classes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import uuid
from pathlib import Path

import torch

from pareto.data.images import ImageSet  # defined there; the image metrics read it too

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = tuple("""apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster
man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree
plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail
snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout
tulip turtle wardrobe whale willow_tree wolf woman worm""".split())
assert len(CIFAR100_CLASSES) == 100

#: The classes of the torchvision datasets, known without the data (the sources: pareto/sources/cifar.py).
KNOWN_CLASSES = {"cifar10": CIFAR10_CLASSES, "cifar100": CIFAR100_CLASSES}
#: Images per class in the official train splits (what torchvision downloads).
TRAIN_PER_CLASS = {"cifar10": 5000, "cifar100": 500}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGE_SIZE = 32
LAYOUT_FIX = ("give data.path as a directory with train/<class>/*.jpg and test/<class>/*.jpg (ImageFolder "
              "layout; a .tar of one works too)")
FORMAT = 1  # bump when the decoded layout changes


class DataLayoutError(ValueError):
    """The data directory is missing or not in ImageFolder layout (the message names the fix)."""


# ---------------------------------------------------------------- layout: folders and tars
def _publish(tmp: Path, final: Path, marker: str) -> None:
    """Rename the finished `tmp` to `final` (atomic); if another process got there first (its
    `final` holds `marker`, written last), keep theirs: the caller removes `tmp`.

    Not `pareto.models._build.publish`: that one's marker is manifest.json, and it moves an
    existing `final` without the marker aside and replaces it, where this raises."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / marker).is_file():
            raise


def _tar_root(path: Path) -> Path:
    """Where a .tar of an ImageFolder tree is (or gets) extracted: once per tar, in the cache."""
    from pareto.models.cache import default_cache_dir

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    out = default_cache_dir() / "vision-data" / f"extracted-{path.stem}-{key}"
    if not (out / ".complete").is_file():
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
            (tmp / ".complete").write_text("")
            _publish(tmp, out, ".complete")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _descend(root: Path) -> Path:
    """`root`, or its only subfolder when the train/test folders sit one level down."""
    if not (root / "train").is_dir():
        subs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
        if len(subs) == 1 and (subs[0] / "train").is_dir():
            return subs[0]
    return root


def image_root(path: str | Path) -> Path:
    """The ImageFolder root of `data.path`: the directory itself (or its only subfolder), or the
    extracted copy of a .tar. Raises DataLayoutError naming the fix."""
    p = Path(path).expanduser()
    if p.is_file() and tarfile.is_tarfile(p):
        return _descend(_tar_root(p))
    if not p.is_dir():
        raise DataLayoutError(f"no such directory: {path}; {LAYOUT_FIX}")
    return _descend(p)


def layout(root: Path) -> dict[str, dict[str, list[str]]]:
    """{split: {class: sorted image file names}} of an ImageFolder root, checked: both splits,
    the same ≥ 2 classes in each, every class with images."""
    out: dict[str, dict[str, list[str]]] = {}
    for split in ("train", "test"):
        d = root / split
        if not d.is_dir():
            raise DataLayoutError(f"{root} has no {split}/ folder; {LAYOUT_FIX}")
        classes = {}
        for c in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = sorted(f.name for f in os.scandir(c) if f.name.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                raise DataLayoutError(f"{c} holds no images ({', '.join(IMAGE_EXTENSIONS)}); {LAYOUT_FIX}")
            classes[c.name] = files
        if len(classes) < 2:
            raise DataLayoutError(f"{d} needs a folder per class (at least 2), found {len(classes)}; {LAYOUT_FIX}")
        out[split] = classes
    if set(out["train"]) != set(out["test"]):
        only = sorted(set(out["train"]) ^ set(out["test"]))
        raise DataLayoutError(f"{root}: train/ and test/ must hold the same class folders; only in one: "
                              f"{', '.join(only)}")
    return out


def class_counts(source: str, path: str | None) -> tuple[tuple[str, ...], dict[str, int]]:
    """(class names, train images per class) without decoding anything: the folder's listing, or the
    official CIFAR counts when the data comes from torchvision (no path)."""
    if path is None:
        classes = KNOWN_CLASSES[source]
        return classes, {c: TRAIN_PER_CLASS[source] for c in classes}
    lay = layout(image_root(path))
    return tuple(sorted(lay["train"])), {c: len(f) for c, f in lay["train"].items()}


# ---------------------------------------------------------------- decoding, cached
def _decode(file: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(file) as im:
        im = im.convert("RGB")
        if im.size != (IMAGE_SIZE, IMAGE_SIZE):
            im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
        data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    return data.view(IMAGE_SIZE, IMAGE_SIZE, 3).permute(2, 0, 1).contiguous()


def _folder_sets(root: Path, per_class: int | None) -> dict[str, ImageSet]:
    lay = layout(root)
    classes = tuple(sorted(lay["train"]))
    sets = {}
    for split, by_class in lay.items():
        files = [(c, f) for ci, c in enumerate(classes) for f in by_class[c][:per_class]]
        images = torch.stack([_decode(root / split / c / f) for c, f in files]) if files else torch.zeros(0, 3, 32, 32)
        labels = torch.tensor([classes.index(c) for c, _ in files], dtype=torch.long)
        sets[split] = ImageSet(images, labels, [f"{split}/{c}/{f}" for c, f in files], classes)
    return sets


def torchvision_problem(source: str) -> str | None:
    """Why `data.source` cifar10/cifar100 without `data.path` cannot run here (torchvision does not
    import), with the fix; None when it can (or when the source is not a torchvision one)."""
    if source not in KNOWN_CLASSES:
        return None
    try:
        import torchvision  # noqa: F401
    except ImportError as exc:
        return (f"data.source {source} without data.path downloads {source.upper()} with torchvision, which does "
                f"not import here ({exc}). Set data.path to a local copy in ImageFolder layout (train/<class>/*.jpg, "
                f"test/<class>/*.jpg, or a .tar of one), or pip install torchvision")
    return None


def _torchvision_sets(source: str, per_class: int | None) -> dict[str, ImageSet]:
    from pareto.models.cache import default_cache_dir

    why = torchvision_problem(source)
    if why:
        raise DataLayoutError(why)
    import torchvision
    cls = getattr(torchvision.datasets, source.upper())  # CIFAR10, CIFAR100
    root = default_cache_dir() / "vision-data" / "torchvision"
    sets = {}
    for split in ("train", "test"):
        try:
            ds = cls(str(root), train=split == "train", download=True)
        except Exception as exc:  # noqa: BLE001  (no network, a broken download)
            raise DataLayoutError(f"could not download {source.upper()} with torchvision ({exc}). Set data.path to a "
                                  f"local copy in ImageFolder layout (train/<class>/*.jpg, test/<class>/*.jpg)") from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(ds.targets, dtype=torch.long)
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(len(ds.classes))])
        keep = keep.sort().values
        sets[split] = ImageSet(images[keep], labels[keep], [f"{split}/{ds.classes[y]}/{i:05d}" for i, y in
                                                            zip(keep.tolist(), labels[keep].tolist())],
                               tuple(ds.classes))
    return sets


def data_hash(sets: dict[str, ImageSet]) -> str:
    h = hashlib.sha256()
    for split in sorted(sets):
        s = sets[split]
        h.update(json.dumps([split, list(s.classes), s.ids]).encode())
        h.update(s.images.numpy().tobytes())
        h.update(s.labels.numpy().tobytes())
    return h.hexdigest()


def save_sets(directory: Path, sets: dict[str, ImageSet], extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file({f"{s}_{k}": getattr(v, k).contiguous() for s, v in sets.items() for k in ("images", "labels")},
              str(directory / "images.safetensors"))
    meta = {"format": FORMAT, "classes": list(next(iter(sets.values())).classes),
            "ids": {s: v.ids for s, v in sets.items()}, **(extra or {})}
    (directory / "images.json").write_text(json.dumps(meta))


def load_sets(directory: Path) -> tuple[dict[str, ImageSet], dict]:
    from safetensors.torch import load_file

    meta = json.loads((directory / "images.json").read_text())
    tensors = load_file(str(directory / "images.safetensors"))
    classes = tuple(meta["classes"])
    sets = {s: ImageSet(tensors[f"{s}_images"], tensors[f"{s}_labels"], ids, classes) for s, ids in meta["ids"].items()}
    return sets, meta


def load_images(source: str, path: str | None, per_class: int | None = None) -> tuple[dict[str, ImageSet], str]:
    """({"train": ImageSet, "test": ImageSet}, data hash), decoded once and cached."""
    from pareto.models.cache import default_cache_dir

    if path is not None:
        root = image_root(path)
        lay = layout(root)
        listing = [(s, c, f, os.stat(root / s / c / f).st_size) for s, by in sorted(lay.items())
                   for c, fs in sorted(by.items()) for f in fs[:per_class]]
        what = json.dumps([FORMAT, str(root.resolve()), per_class, listing])
    else:
        what = json.dumps([FORMAT, "torchvision", source, per_class])
    key = hashlib.sha256(what.encode()).hexdigest()[:16]
    cache = default_cache_dir() / "vision-data" / f"{source}-{key}"
    if (cache / "images.json").is_file():
        sets, meta = load_sets(cache)
        return sets, meta["data_hash"]
    sets = _folder_sets(root, per_class) if path is not None else _torchvision_sets(source, per_class)
    digest = data_hash(sets)
    tmp = cache.with_name(f".{cache.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        save_sets(tmp, sets, {"data_hash": digest, "source": source, "path": path, "per_class": per_class})
        _publish(tmp, cache, "images.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sets, digest


def forget_index(train: ImageSet, forget_class: str, n: int, seed: int = 0) -> list[int]:
    """Indices (into `train`) of `n` images of `forget_class`, sampled with a fixed generator, sorted."""
    if forget_class not in train.classes:
        raise DataLayoutError(f"unknown class {forget_class!r}; the data has: {', '.join(train.classes)}")
    members = torch.nonzero(train.labels == train.classes.index(forget_class)).flatten()
    if n > len(members):
        raise DataLayoutError(f"data.forget_images is {n} but class {forget_class!r} has {len(members)} train images")
    pick = torch.randperm(len(members), generator=torch.Generator().manual_seed(seed))[:n]
    return sorted(members[pick].tolist())


# ---------------------------------------------------------------- batches
def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The standard CIFAR augmentation (He et al. 2015, Sec. 4.2): pad 4 pixels with zeros, take a
    random 32×32 crop, flip horizontally with probability ½; uint8 in, uint8 out, seeded."""
    n, _, h, w = images.shape
    dev = images.device  # the draws come from `generator` (CPU), so a GPU run draws the same crops
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
    rows = dy.view(n, 1) + torch.arange(h, device=dev).view(1, h)  # [n, h]
    cols = dx.view(n, 1) + torch.arange(w, device=dev).view(1, w)  # [n, w]
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
    idx_n = torch.arange(n, device=dev).view(n, 1, 1, 1)
    idx_c = torch.arange(images.shape[1], device=dev).view(1, -1, 1, 1)
    return padded[idx_n, idx_c, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


class ImageBatches:
    """An endless, seeded stream of image batches, reshuffled each epoch (every image once per
    epoch): the interface of `pareto.data.qa.Batches` (`next`, `all`, `examples`, and the
    `generator` / `_order` state that checkpoints save), with batches {images, labels, index}."""

    def __init__(self, data: ImageSet, batch_size: int, seed: int) -> None:
        if not len(data):
            raise ValueError("no images to batch")
        self.data, self.examples = data, list(range(len(data)))
        self.batch_size = min(batch_size, len(data))
        self.generator = torch.Generator().manual_seed(seed)
        self._order: list[int] = []

    def _batch(self, idx: list[int]) -> dict:
        t = torch.as_tensor(idx, dtype=torch.long)
        return {"images": self.data.images[t], "labels": self.data.labels[t], "index": t}

    def next(self) -> dict:
        if len(self._order) < self.batch_size:
            self._order += torch.randperm(len(self.examples), generator=self.generator).tolist()
        idx, self._order = self._order[:self.batch_size], self._order[self.batch_size:]
        return self._batch(idx)

    def all(self, batch_size: int | None = None) -> list[dict]:
        """Every image once, in order (NPO's reference log-probabilities)."""
        bs = batch_size or self.batch_size
        return [self._batch(list(range(i, min(i + bs, len(self.examples))))) for i in range(0, len(self.examples), bs)]
