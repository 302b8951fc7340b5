"""What every image source shares (paper App. C): the class forgotten, how many of its train
images form the forget set, and a per-class cap for CPU-sized runs; the classifier task; the
accuracy metrics. The images load inside the target's build (pareto.vision.train), so there are
no rows to `load` here."""

from __future__ import annotations

from pareto._registry import did_you_mean
from pareto.sources._base import DataSource

IMAGE_PLANES = (("loss_f_eval", "loss_r_eval"), ("forget_acc", "retain_acc"), ("test_forget_acc", "test_retain_acc"))


class ImageSource(DataSource):
    task = "image_classification"
    keys = ("path", "forget_class", "forget_images", "per_class")
    metric_data = ("images",)
    metrics = ("loss_f_eval", "loss_r_eval", "forget_acc", "retain_acc", "test_forget_acc", "test_retain_acc")
    family, planes = "vision", IMAGE_PLANES
    #: The class forgotten when `data.forget_class` is left out (None: it must be given).
    default_forget_class: str | None = None

    def check(self, data: dict, add) -> None:
        """The forget count (no more than the class has) and the forget class (one of the data's)."""
        if data["forget_images"] < 1:
            add(("data", "forget_images"), f"forget_images must be ≥ 1, got {data['forget_images']}")
        if data["per_class"] is not None and data["per_class"] < 1:
            add(("data", "per_class"), f"per_class must be ≥ 1, got {data['per_class']}")
        if not self.folder_given(data, add):
            return
        forget_class = data["forget_class"] or self.default_forget_class
        if forget_class is None:
            add(("data", "forget_class"), f"{self.name} data needs data.forget_class: the class folder to forget")
            return
        from pareto.vision.data import DataLayoutError, class_counts

        try:
            classes, counts = class_counts(self.name, data["path"])
        except (DataLayoutError, OSError) as exc:
            add(("data", "path"), str(exc))
            return
        if forget_class not in classes:
            add(("data", "forget_class"), f"unknown class {forget_class!r}.{did_you_mean(forget_class, list(classes))} "
                                          f"The data's classes: {', '.join(classes)}")
            return
        have = min(counts[forget_class], data["per_class"] or counts[forget_class])
        if data["forget_images"] > have:
            add(("data", "forget_images"), f"forget_images is {data['forget_images']} but class {forget_class!r} has "
                                           f"{have} train images{' (per_class)' if data['per_class'] else ''}; set "
                                           f"data.forget_images to at most {have}")

    def folder_given(self, data: dict, add) -> bool:
        return True

    def not_estimated(self, data: dict) -> str | None:
        return "image data: not estimated yet"
