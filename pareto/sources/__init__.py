"""Data sources and tasks, registered by name: `data.source` picks one, and it says what it needs.

    embedded      synthetic authors, built with the tiny embedded target (sources/embedded.py)
    tofu          TOFU from the hub or a local copy (sources/tofu.py)
    custom        your own question/answer files (sources/custom.py)
    muse_news     MUSE-News from the hub or a local copy (sources/muse_news.py)
    cifar10/100   CIFAR through torchvision or an ImageFolder copy (sources/cifar.py)
    image_folder  your own images in ImageFolder layout (sources/image_folder.py)

Each is one module (a `DataSource` subclass, `sources/_base.py`), found by importing every module
of this package: adding a source is adding a file. Its task (`sources/tasks.py`) owns the target. The spec asks `check_data` here; preflight, target building, estimates, the hub
check and the trial ask the source — nothing else switches on source names.

    bundle = load_data({"source": "tofu", "path": "/path/to/TOFU", "forget": "forget10", ...})
"""

from __future__ import annotations

import importlib
import pkgutil

from pareto._registry import did_you_mean
from pareto.sources._base import SOURCES, Add, DataBundle, DataSource, SourceCheck, register_source
from pareto.sources.tasks import TASKS, Task

for _module in pkgutil.iter_modules(__path__):  # every module here registers its sources: one file adds one
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["SOURCES", "TASKS", "DataBundle", "DataSource", "SourceCheck", "Task", "check_data", "load_data",
           "register_source", "source_of", "task_of"]


def source_of(data: dict | str) -> DataSource:
    """The registered source of a data section (or of its name); unknown names say what exists."""
    return SOURCES.get(data if isinstance(data, str) else data["source"])


def task_of(data: dict | str) -> Task:
    return TASKS.get(source_of(data).task)


def load_data(data: dict) -> DataBundle:
    """The rows of a language-model source; `data` is the spec's data section as a dict."""
    return source_of(data).load(data)


def readers_of(key: str) -> list[str]:
    return [name for name in SOURCES.names() if key in SOURCES.get(name).keys]


def check_data(spec, defaults: dict, add: Add) -> None:
    """Everything about `data:` that depends on the source, from the spec alone: the source exists,
    its keys are its own (another source's key left at its default), their values, the target it
    goes with, the settings its task allows and the metrics its data can feed."""
    data = {k: getattr(spec.data, k) for k in defaults}
    name = data["source"]
    if name not in SOURCES:
        add(("data", "source"), f"unknown data source {name!r}.{did_you_mean(name, SOURCES.names())} "
                                f"Available: {', '.join(SOURCES.names())}")
        return
    source, t = SOURCES.get(name), spec.target
    for key, default in defaults.items():
        if key != "source" and key not in source.keys and data[key] != default:
            readers = readers_of(key)
            add(("data", key), f"data.{key} applies to data.source {', '.join(readers)} only, not {name}: drop it"
                               + (" (the embedded target fixes its prompt)" if name == "embedded" else ""))
    if t.source in ("embedded", "train") and t.source != source.target:
        add(("target", "source"), "the embedded target goes with the embedded data: use data.source: embedded with "
                                  "target.source: embedded, or target.source: train for other data")
    source.check(data, add)
    TASKS.get(source.task).check(spec, add)
    check_metrics(spec, source, add)


#: What each kind of metric data is, in messages (a metric's `data`, a source's `metric_data`).
METRIC_DATA = {"qa": "question/answer data", "text": "text data", "muse": "MUSE-News data", "images": "image data"}


def check_metrics(spec, source: DataSource, add: Add) -> None:
    """Each metric of eval.metrics reads data this source provides, and has the reference it compares with."""
    from pareto.metrics import METRICS

    for i, metric in enumerate(spec.eval.metrics):
        if metric not in METRICS:
            continue  # the spec names unknown metrics
        cls = METRICS.get(metric)
        if cls.data is not None and cls.data not in source.metric_data:
            fits = [n for n in SOURCES.names() if cls.data in SOURCES.get(n).metric_data]
            mine = [m for m in METRICS.names() if METRICS.get(m).data in (None, *source.metric_data)]
            add(("eval", "metrics", i), f"{metric} is for {METRIC_DATA.get(cls.data, cls.data)} (data.source "
                                        f"{', '.join(fits)}), not data.source {source.name}; {source.name}'s "
                                        f"metrics: {', '.join(mine)}")
        if cls.reference and not spec.target.retain_model:
            add(("eval", "metrics", i), f"{metric} compares with the retain-only model: set target.retain_model: "
                                        f"true (or drop {metric})")
