"""What a metric is: a registered, named computation with a direction, and per-item records.

A metric reads what it needs from an `EvalContext` (the model, its tokenizer, the evaluation
splits, reference values from the retain-only model, the settings) and returns a `MetricValue`:
the number, the per-item scores behind it (`items.parquet`), and the settings that define it
(stemmer, number of items, …) so every result records how it was computed. Work shared by
several metrics (greedy answers, truth ratios) is memoised in the context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pareto._registry import Registry


@dataclass(frozen=True)
class ItemScore:
    item_id: str
    score: float
    prompt: str | None = None
    generation: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class MetricValue:
    value: float
    items: tuple[ItemScore, ...] = ()
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSettings:
    max_new_tokens: int = 32
    batch_size: int = 32
    use_stemmer: bool = True  # ROUGE: open-unlearning / TOFU on; MUSE's code off
    add_bos: bool = True  # BOS before every prompt / text, as the target was trained
    template: str = "plain"  # prompt template by name (pareto.data.templates), as the target was trained
    max_length: int | None = None  # tokens per example / text window, as the target was trained (None: 128 for
    #                                QA, as encode_qa; texts: the model's context)
    privleak_tokens: int | None = None  # privleak's tokens per text (None: whole texts, up to the model's context)
    trained_positions: int | None = None  # a target trained from scratch: the positions it learnt (its window);
    #                                       None: every position of its context (a pretrained base)

    @property
    def template_format(self) -> str:
        from pareto.data.templates import resolve_template

        return resolve_template(self.template)

    def recorded(self) -> dict:
        """The prompt settings every metric that builds prompts records with its value."""
        return {"template": self.template, "add_bos": self.add_bos}


def eval_settings(manifest: dict, **kw) -> EvalSettings:
    """The settings of an evaluation of the target described by `manifest`: its prompt template,
    BOS choice and example length (a target made before they were recorded: plain, BOS, 128). A
    tiny base is trained from scratch on windows of max_length tokens, so positions past them were
    never learnt: `trained_positions`."""
    config = manifest.get("config") or {}
    scratch = manifest.get("base") == "tiny" or config.get("base") == "tiny"
    return EvalSettings(template=manifest.get("template", "plain"), add_bos=manifest.get("add_bos", True),
                        max_length=config.get("max_length"),
                        trained_positions=config.get("max_length") if scratch else None, **kw)


@dataclass
class EvalContext:
    model: Any
    tokenizer: Any
    data: dict[str, list[dict]]  # split name → rows (forget, retain, real_authors, verbmem, …)
    settings: EvalSettings = field(default_factory=EvalSettings)
    reference: dict[str, Any] = field(default_factory=dict)  # from the retain-only model
    _memo: dict = field(default_factory=dict, repr=False)

    def split(self, name: str) -> list[dict]:
        if name in self.data and not self.data[name]:
            raise KeyError(f"the {name!r} split of this evaluation is empty: the data subset has no such items "
                           f"(MUSE-News with few `articles` can leave knowmem splits empty: use more articles)")
        if name not in self.data:
            raise KeyError(f"this evaluation has no {name!r} split; it has: {', '.join(sorted(self.data)) or 'none'}")
        return self.data[name]

    def need_reference(self, key: str, metric: str, what: str) -> Any:
        """A value of the retain-only model; a metric without it refuses to run, never guesses."""
        if self.reference.get(key) is None:
            raise ValueError(f"{metric} compares with the retain-only model's {what}, and this evaluation has none. "
                             "Build the Retrain reference (target.retain_model: true) or drop the metric.")
        return self.reference[key]

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


class Metric:
    #: "max" when higher is better, "min" when lower is better, "zero" when closest to 0 is best.
    direction: str = "max"
    #: Splits of the EvalContext this metric reads.
    needs: tuple[str, ...] = ()
    #: The kind of data it reads ("qa" rows, "muse" texts, "images"; None: any). A data source
    #: declares the kinds it provides (pareto.sources, `metric_data`).
    data: str | None = None
    #: It compares with the retain-only reference model (target.retain_model).
    reference: bool = False

    def compute(self, ctx: EvalContext) -> MetricValue:
        raise NotImplementedError


METRICS: Registry[type[Metric]] = Registry("metric")


def register_metric(name: str, direction: str, needs: tuple[str, ...] = (), data: str | None = None,
                    reference: bool = False):
    if direction not in ("max", "min", "zero"):
        raise ValueError(f"direction must be 'max', 'min' or 'zero', got {direction!r}")

    def deco(cls):
        cls.direction, cls.needs, cls.data, cls.reference = direction, needs, data, reference
        return METRICS.register(name)(cls)

    return deco


class SplitMetric(Metric):
    """A metric that is one function of one split, `value(ctx, split)` (most are)."""

    split: str = ""

    @staticmethod
    def value(ctx: EvalContext, split: str) -> MetricValue:
        raise NotImplementedError

    def compute(self, ctx: EvalContext) -> MetricValue:
        return self.value(ctx, self.split)


def register_split_metrics(table, data: str | None = None) -> None:
    """Register one SplitMetric per row (name, direction, value function, split) of `table`."""
    for name, direction, value, split in table:
        cls = type(f"SplitMetric[{name}]", (SplitMetric,), {"value": staticmethod(value), "split": split})
        register_metric(name, direction, needs=(split,), data=data)(cls)


def item_id(row: dict, index: int, split: str) -> str:
    return str(row.get("item_id", f"{split}:{index}"))
