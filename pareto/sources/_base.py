"""What a data source is: one registered class that knows everything pareto needs about it.

A source (TOFU, MUSE-News, your own files, CIFAR, …) declares

    task          the task its trials unlearn (`pareto.sources.tasks`: language_model or
                  image_classification), which owns the target's settings and builds it
    keys          the `data:` keys it reads besides `source` (any other key left at its default)
    metric_data   the kinds of metric data it provides (a metric registered with data="qa" reads
                  question/answer rows; metrics without a kind fit every source)
    metrics       its default `eval.metrics` (used when the spec gives none)
    family        the results family `pareto frontier --dataset` selects it by, and its `planes`
    target        the `target.source` it goes with (embedded data: the embedded target)

and implements

    check(data, add)          its settings' values, from the spec alone (add(key_path, message))
    preflight(data, out)      whether its data is here: files, fields, the hub (nothing downloaded)
    load(data)                the rows: a `DataBundle` (language-model sources)
    forget_rows(data)         the forget set's size without reading it (estimates), if known
    not_estimated(data)       why `pareto.estimate` cannot price it here, or None

`data` is the spec's `data:` section as a dict (pareto.spec.DataSpec). Adding a source is one new
module in this package that subclasses `DataSource` and registers itself (`@register_source`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from pareto._registry import Registry

Add = Callable[[tuple, str], None]  # add(key path, message): the spec's problem list


@dataclass
class DataBundle:
    """The rows of a language-model source: forget, retain and the extra evaluation splits."""

    name: str
    forget: list[dict]
    retain: list[dict]
    eval_splits: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class SourceCheck:
    """What a source's preflight found: `problems` (its files are wrong), `environment` (this machine
    cannot get them), `warnings` (it runs, but probably not as meant); each a (key path, message)."""

    problems: list[tuple[tuple, str]] = field(default_factory=list)
    environment: list[tuple[tuple, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


#: The spec's data keys every language-model source reads (its prompts; the text window).
PROMPT_KEYS = ("template", "add_bos", "context")
#: The default metrics of question/answer sources: both losses, forget ROUGE and retain ROUGE.
QA_METRICS = ("loss_f_eval", "loss_r_eval", "rouge_f", "utility_r")


class DataSource:
    task: str = "language_model"
    keys: tuple[str, ...] = ()
    metric_data: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("loss_f_eval", "loss_r_eval")
    family: str = ""
    planes: tuple[tuple[str, ...], ...] = ()
    target: str = "train"
    #: The hub dataset it reads when `data.path` is left out (None: never from the hub), and the
    #: folder name a local copy gets in messages.
    hub_repo: str | None = None
    label: str = ""
    #: One line for `pareto validate --help`-style listings and the docs.
    summary: str = ""
    #: The evaluation splits `load` gives beyond forget and retain, for what names them in a spec
    #: (`target.train.pretrain`); None: not declared, not checked.
    eval_splits: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return self.registered_name  # type: ignore[attr-defined]

    def check(self, data: dict, add: Add) -> None:
        """The values of this source's settings (the keys themselves are checked by the spec)."""

    def preflight(self, data: dict, out: SourceCheck) -> None:
        """Whether the data is here and readable, before any work; never a download."""

    def load(self, data: dict) -> DataBundle:
        raise TypeError(f"data source {self.name!r} is built together with its target; it has no rows to load")

    def forget_rows(self, data: dict) -> int | None:
        return None

    def not_estimated(self, data: dict) -> str | None:
        return None

    def departures(self, data: dict) -> dict[str, list[str]]:
        """metric → how these settings make its value differ from the reference tool's (a subset
        mode, a cut text): recorded beside the value in `metric_settings` ("departures") and shown
        next to the number by the report and `pareto frontier`. {} when they match it."""
        return {}

    def eval_warnings(self, data: dict, ev) -> list[str]:
        """Evaluation settings (`ev`: the spec's EvalSpec) that run but score this data otherwise than
        its reference tool does; `pareto validate` and `pareto sweep` print them."""
        return []

    def smaller_hint(self, data: dict) -> str:
        """For a run of hours on a CPU: the laptop-sized variant of this data, if there is one."""
        return ""

    # hub sources (tofu, muse_news): the files `load` fetches, as (part, split) pairs
    def hub_parts(self, data: dict) -> list[tuple[str, str]] | None:
        return None

    def hub_filename(self, part: str, split: str) -> str:
        return f"{part}/{split}.json" if part else f"{split}.json"


SOURCES: Registry[DataSource] = Registry("data source")


def register_source(name: str):
    """Register a DataSource subclass under `name` (one instance: sources hold no state)."""

    def deco(cls: type[DataSource]) -> type[DataSource]:
        SOURCES.register(name)(cls())
        cls.registered_name = name  # type: ignore[attr-defined]
        return cls

    return deco
