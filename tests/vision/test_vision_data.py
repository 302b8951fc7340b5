"""Image data: ImageFolder layout, tars, decoding once, the forget sample, augmentation, batches."""

import tarfile

import pytest
import torch

from pareto.vision.data import (DataLayoutError, ImageBatches, augment, class_counts, forget_index, image_root,
                                load_images)


def test_folder_decodes_to_uint8_tensors_with_sorted_classes_and_ids(image_folder):
    sets, digest = load_images("image_folder", str(image_folder))
    train, test = sets["train"], sets["test"]
    assert train.images.shape == (18, 3, 32, 32) and train.images.dtype == torch.uint8
    assert len(test) == 6 and train.classes == ("cat", "dog", "frog")
    assert train.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert train.ids[6] == "train/dog/0000.png"
    # the class colours survive decoding (class c has mean ≈ 40 + 80·c)
    means = [train.images[train.labels == c].float().mean().item() for c in range(3)]
    assert means == sorted(means) and means[2] - means[0] > 100


def test_decoded_once_then_read_from_the_cache(image_folder):
    sets, digest = load_images("image_folder", str(image_folder))
    for f in (image_folder / "train" / "cat").iterdir():  # a cache hit does not open the images
        f.chmod(0)
    try:
        again, digest2 = load_images("image_folder", str(image_folder))
    finally:
        for f in (image_folder / "train" / "cat").iterdir():
            f.chmod(0o644)
    assert digest2 == digest and torch.equal(again["train"].images, sets["train"].images)
    small, digest3 = load_images("image_folder", str(image_folder), per_class=2)
    assert len(small["train"]) == 6 and digest3 != digest
    assert small["train"].ids[:2] == ["train/cat/0000.png", "train/cat/0001.png"]


def test_a_tar_with_one_top_folder_is_extracted_once(image_folder, tmp_path):
    tar = tmp_path / "subset.tar"
    with tarfile.open(tar, "w") as t:
        t.add(image_folder, arcname="subset")
    root = image_root(tar)
    assert (root / "train" / "dog").is_dir() and image_root(tar) == root
    classes, counts = class_counts("image_folder", str(tar))
    assert classes == ("cat", "dog", "frog") and counts == {"cat": 6, "dog": 6, "frog": 6}


@pytest.mark.parametrize("damage, message", [
    (lambda r: None, None),
    (lambda r: (r / "test").rename(r / "val"), "has no test/ folder"),
    (lambda r: (r / "train" / "frog").rename(r / "train" / "toad"), "same class folders"),
    (lambda r: [f.unlink() for f in (r / "train" / "cat").iterdir()], "holds no images"),
])
def test_wrong_layouts_are_named(image_folder, damage, message):
    damage(image_folder)
    if message is None:
        assert class_counts("image_folder", str(image_folder))[0] == ("cat", "dog", "frog")
        return
    with pytest.raises(DataLayoutError, match=message) as err:
        class_counts("image_folder", str(image_folder))
    assert "train/<class>/*.jpg" in str(err.value) or "same class" in str(err.value)


def test_missing_directory_names_the_fix(tmp_path):
    with pytest.raises(DataLayoutError, match="no such directory.*ImageFolder"):
        image_root(tmp_path / "nope")


def test_forget_sample_is_fixed_and_checked(image_folder):
    train = load_images("image_folder", str(image_folder))[0]["train"]
    idx = forget_index(train, "dog", 4)
    assert idx == forget_index(train, "dog", 4) and idx == sorted(idx) and len(set(idx)) == 4
    assert all(train.labels[i] == 1 for i in idx)
    with pytest.raises(DataLayoutError, match="unknown class 'bed'"):
        forget_index(train, "bed", 4)
    with pytest.raises(DataLayoutError, match="has 6 train images"):
        forget_index(train, "dog", 7)


def test_augmentation_is_a_padded_crop_and_flip_seeded():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    a = augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(a, augment(images, torch.Generator().manual_seed(1)))
    assert a.dtype == torch.uint8 and a.shape == images.shape
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for i in range(64):  # every output is one 32×32 window of the padded image, maybe mirrored
        hits = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                if torch.equal(a[i], (lambda w: w.flip(-1) if f else w)(padded[i, :, dy:dy + 32, dx:dx + 32]))]
        assert hits, i
    assert not torch.equal(a, images)


def test_batches_see_every_image_once_per_epoch_and_resume_from_their_state(image_folder):
    train = load_images("image_folder", str(image_folder))[0]["train"]
    stream = ImageBatches(train, 5, seed=3)
    seen = [i for _ in range(3) for i in stream.next()["index"].tolist()]  # 15 of the first epoch's 18
    assert len(set(seen)) == len(seen)
    from pareto import checkpoint

    state = checkpoint.batches_state(stream)
    ahead = [stream.next()["index"].tolist() for _ in range(5)]
    other = ImageBatches(train, 5, seed=99)
    checkpoint.load_batches_state(other, state)
    assert [other.next()["index"].tolist() for _ in range(5)] == ahead
    b = stream.all()[0]
    assert b["images"].dtype == torch.uint8 and b["labels"].tolist() == train.labels[:5].tolist()


def test_torchvision_path_without_torchvision_names_the_fix(tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("PARETO_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as on the CPU wheel here: it does not import
    with pytest.raises(DataLayoutError, match="Set data.path to a local copy in ImageFolder layout"):
        load_images("cifar10", None)
