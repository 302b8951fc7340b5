"""The CIFAR ResNets: the standard variants' parameter counts, shapes, and the input pipeline."""

import pytest
import torch

from pareto.vision.resnet import build_model


@pytest.mark.parametrize("arch, classes, n_params", [
    ("resnet18", 10, 11_173_962),  # the known count of the CIFAR ResNet-18 (3×3 stem, no max-pool)
    ("resnet18", 100, 11_220_132),
    ("resnet50", 10, 23_520_842),
    ("resnet50", 100, 23_705_252),
    ("resnet_small", 10, 78_042),  # depth 8, width 16
])
def test_parameter_counts_are_the_standard_ones(arch, classes, n_params):
    model = build_model(arch, classes)
    assert sum(p.numel() for p in model.parameters()) == n_params


def test_cifar_variant_has_a_3x3_stride_1_stem_and_no_max_pool():
    model = build_model("resnet18", 10)
    stem = model.net.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


def test_uint8_images_in_logits_out_and_normalisation_is_part_of_the_model():
    model = build_model("resnet_small", 7, width=4).eval()
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    logits = model(images)
    assert logits.shape == (5, 7)
    # the same images as floats in [0, 255] give the same logits: scaling happens inside
    assert torch.allclose(model(images.float()), logits)
    assert {"mean", "std"} <= set(dict(model.named_buffers()))


def test_bad_architecture_settings_are_named():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        build_model("resnet_small", 10, depth=9)
    with pytest.raises(ValueError, match="Did you mean 'resnet18'"):
        build_model("resnet19", 10)
    with pytest.raises(ValueError, match="fixed depth"):
        build_model("resnet18", 10, depth=34)
