"""Image specs: validated like every spec — each problem named with its fix, exit status 2 from the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pareto.spec import SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]
METRICS = "[forget_acc, retain_acc, test_forget_acc, test_retain_acc, loss_f_eval, loss_r_eval]"


def spec_text(folder, **data) -> str:
    fields = {"source": "image_folder", "path": str(folder), "forget_class": "dog", "forget_images": 3, **data}
    body = ", ".join(f"{k}: {v}" for k, v in fields.items() if v is not None)
    return f"""name: v
data: {{{body}}}
target: {{source: train, train: {{arch: resnet_small, width: 4, max_epochs: 1}}}}
eval: {{metrics: {METRICS}}}
search: {{space: {{combiner: [ngdiff, lossnorm]}}}}
"""


def problems(text: str) -> str:
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    return "\n".join(err.value.problems)


def test_a_vision_spec_validates(image_folder):
    spec, points = parse_spec(spec_text(image_folder))
    assert spec.data.forget_class == "dog" and len(points) == 3  # the baseline and two methods


@pytest.mark.parametrize("data, expected", [
    ({"path": "/nonexistent/images"}, "data.path (line 2): no such directory: /nonexistent/images; give data.path as a "
                                      "directory with train/<class>/*.jpg"),
    ({"forget_class": "dgo"}, "unknown class 'dgo'. Did you mean 'dog'? The data's classes: cat, dog, frog"),
    ({"forget_images": 7}, "forget_images is 7 but class 'dog' has 6 train images; set data.forget_images to at most 6"),
    ({"per_class": 2}, "class 'dog' has 2 train images (per_class)"),
    ({"path": None}, "image_folder needs data.path"),
    ({"forget_class": None}, "needs data.forget_class"),
    ({"forget_images": 0}, "forget_images must be ≥ 1"),
])
def test_bad_image_data_is_named_with_its_fix(image_folder, data, expected):
    assert expected in problems(spec_text(image_folder, **data))


def test_wrong_layout_is_named(image_folder):
    (image_folder / "test").rename(image_folder / "valid")
    assert "has no test/ folder" in problems(spec_text(image_folder))


def test_metrics_and_settings_of_the_other_tasks_are_refused(image_folder):
    text = spec_text(image_folder).replace(METRICS, "[rouge_f, forget_acc]")
    text = text.replace("width: 4", "widht: 4").replace("name: v", "name: v\ntarget_x: 1")
    found = problems(text)
    assert "rouge_f is for question/answer data (data.source custom, embedded, tofu), not data.source " \
           "image_folder; image_folder's metrics: forget_acc, loss_f_eval, loss_r_eval, retain_acc" in found
    assert "unknown classifier setting 'widht'. Did you mean 'width'?" in found
    tofu = problems("name: t\ndata: {source: embedded, forget_class: dog}\neval: {metrics: [retain_acc]}\n")
    assert "data.forget_class applies to data.source cifar10, cifar100, image_folder only, not embedded" in tofu
    assert "retain_acc is for image data (data.source cifar10, cifar100, image_folder), not data.source embedded" in tofu


def test_cifar_classes_are_known_without_the_data():
    spec, _ = parse_spec(f"name: c\ndata: {{source: cifar100}}\ntarget: {{source: train}}\neval: {{metrics: {METRICS}}}\n")
    assert spec.data.forget_class is None  # bed, the paper's, at build time
    found = problems(f"name: c\ndata: {{source: cifar10, forget_class: bed}}\ntarget: {{source: train}}\n"
                     f"eval: {{metrics: {METRICS}}}\n")
    assert "unknown class 'bed'" in found and "airplane, automobile" in found


@pytest.mark.slow
def test_cli_exits_2_naming_the_problem(image_folder, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec_text(image_folder, forget_class="horse"))
    env = {**os.environ, "PARETO_CACHE": str(tmp_path / "cache")}
    for command in ("validate", "target", "sweep"):
        proc = subprocess.run([sys.executable, "-m", "pareto", command, str(bad)], cwd=ROOT, capture_output=True,
                              text=True, env=env, timeout=300)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "unknown class 'horse'" in proc.stderr and "Traceback" not in proc.stderr
