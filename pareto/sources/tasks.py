"""The tasks a data source's trials unlearn, registered by name: what each allows and how it builds
its target.

    language_model        a causal LM (pareto.lm): `target.train` is a TargetConfig (or the
                          embedded target), LoRA and FSDP apply, the retain-only reference serves
                          forget_quality and privleak
    image_classification  an image classifier (pareto.vision, paper App. C): `target.train` is a
                          VisionTargetConfig; BatchNorm modes apply, LoRA and FSDP do not

A task checks the settings that depend on it (`check(spec, add)`), checks its target before any
work (`preflight_target`) and builds the target (`prepare(spec, log)` → pareto.prepare.Prepared).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from pareto._registry import Registry, did_you_mean
from pareto.sources._base import Add


class Task:
    #: unlearn.lora, unlearn.parallel fsdp, unlearn.batchnorm other than `batch`, target.retain_model
    lora: bool = False
    fsdp: bool = False
    robustness: bool = False  # eval.robustness (question/answer attacks: relearning, paraphrases)
    batchnorm: bool = False
    reference: bool = False
    #: Who it is for, in messages ("transformers language models"); what its target.train keys are called.
    what: str = ""
    setting, valid_for = "target setting", ""

    @property
    def name(self) -> str:
        return self.registered_name  # type: ignore[attr-defined]

    def config_class(self) -> type:
        raise NotImplementedError

    def check(self, spec, add: Add) -> None:
        """The settings that only some tasks allow, and `target.train`'s keys."""
        u, t = spec.unlearn, spec.target
        if u.lora is not None and not self.lora:
            add(("unlearn", "lora"), f"LoRA is for transformers language models; {self.what} train every parameter "
                                     f"(remove unlearn.lora)")
        if u.parallel == "fsdp" and not self.fsdp:
            add(("unlearn", "parallel"), f"FSDP wraps transformer blocks; use parallel: ddp for {self.what}")
        if u.batchnorm in ("batch", "frozen") and u.batchnorm != "batch" and not self.batchnorm:
            add(("unlearn", "batchnorm"), "unlearn.batchnorm applies to image classifiers only (data.source "
                                          "cifar10, cifar100, image_folder)")
        if t.retain_model and not self.reference:
            add(("target", "retain_model"), "the retain-only reference serves forget_quality and privleak (TOFU, "
                                            f"MUSE); {self.what} have no such metric. Drop target.retain_model")
        if spec.eval.robustness and not self.robustness:
            add(("eval", "robustness"), f"the robustness attacks relearn and re-ask question/answer pairs of a language "
                                        f"model; {self.what} have none. Drop eval.robustness (docs/robustness.md)")
        _check_paraphrase(spec, add)
        if t.source == "train":
            self.check_train(t.train, add)
            _check_pretrain(spec, add)
        _check_objectives(spec, self.name, add)

    def check_train(self, train: dict, add: Add) -> None:
        names = [f.name for f in dataclasses.fields(self.config_class())]
        for key in train:
            if key not in names:
                add(("target", "train", key), f"unknown {self.setting} {key!r}.{did_you_mean(key, names)} "
                                              f"Valid{self.valid_for}: {', '.join(names)}")

    def preflight_target(self, spec, where: Callable[[tuple], str], out) -> None:
        """The target's settings and base model, before any work (out: pareto.preflight.Preflight)."""

    def prepare(self, spec, log: Callable[[str], None]):
        raise NotImplementedError


def _check_objectives(spec, task: str, add: Add) -> None:
    """Forget objectives of the search space that need what only language models have (answer
    text, hidden states): refused for other tasks before any work."""
    from pareto.core.objectives import OBJECTIVES
    from pareto.core.objectives._base import task_problem

    options = (spec.search.space or {}).get("objective", [])
    for option in options if isinstance(options, list) else []:
        name = next(iter(option)) if isinstance(option, dict) and len(option) == 1 else option
        if isinstance(name, str) and name in OBJECTIVES and (problem := task_problem(name, task)):
            add(("search", "space", "objective"), f"{problem}; choose another forget objective (docs/objectives.md)")


def _check_paraphrase(spec, add: Add) -> None:
    """eval.robustness.paraphrase re-asks questions: refused for a source without question/answer rows."""
    from pareto.sources import METRIC_DATA
    from pareto.sources._base import SOURCES

    cfg = spec.eval.robustness
    source = SOURCES.get(spec.data.source) if spec.data.source in SOURCES else None
    if isinstance(cfg, dict) and cfg.get("paraphrase") is True and source is not None and "qa" not in source.metric_data:
        what = " and ".join(METRIC_DATA.get(k, k) for k in source.metric_data) or "no question/answer rows"
        add(("eval", "robustness", "paraphrase"), f"asks the forget questions in other words; data.source "
                                                  f"{source.name} is {what}, with no questions: drop paraphrase")


def _check_pretrain(spec, add: Add) -> None:
    """`target.train.pretrain` names evaluation splits the data source declares (not forget/retain)."""
    from pareto.sources._base import SOURCES

    names = spec.target.train.get("pretrain")
    names = [names] if isinstance(names, str) else names if isinstance(names, list) else []
    source = SOURCES.get(spec.data.source) if spec.data.source in SOURCES else None
    if not names or source is None or source.eval_splits is None:
        return
    unknown = [n for n in names if n not in source.eval_splits]
    if unknown:
        has = ", ".join(source.eval_splits) or "none"
        add(("target", "train", "pretrain"), f"unknown evaluation split(s) {', '.join(map(repr, unknown))} of "
                                             f"data.source {source.name}; it has: {has}")


TASKS: Registry[Task] = Registry("task")


def _register(name: str):
    def deco(cls):
        TASKS.register(name)(cls())
        cls.registered_name = name
        return cls

    return deco


@_register("language_model")
class LanguageModelTask(Task):
    lora = fsdp = reference = robustness = True
    what = "language models"

    def config_class(self) -> type:
        from pareto.models.target import TargetConfig

        return TargetConfig

    def check_train(self, train: dict, add: Add) -> None:
        """TargetConfig's fields; the prompt and window are the data's, set once for target and trials."""
        for key in ("template", "add_bos", "max_length"):
            if key in train:
                home = "data.context" if key == "max_length" else f"data.{key}"
                add(("target", "train", key), f"set {key} once, as {home}: the data, the target and every trial share it")
        super().check_train(train, add)

    def preflight_target(self, spec, where, out) -> None:
        if spec.target.source == "embedded":
            from pareto.preflight import check_embedded_target

            check_embedded_target(spec, where, out)
        else:
            from pareto.preflight import check_base

            check_base(spec, where, out)

    def prepare(self, spec, log):
        from pareto.prepare import prepare_embedded, prepare_trained

        return (prepare_embedded if spec.target.source == "embedded" else prepare_trained)(spec, log)


@_register("image_classification")
class ImageClassificationTask(Task):
    batchnorm = True
    what = "image classifiers"
    setting, valid_for = "classifier setting", " for image data"

    def config_class(self) -> type:
        from pareto.vision.train import VisionTargetConfig

        return VisionTargetConfig

    def check_train(self, train: dict, add: Add) -> None:
        """VisionTargetConfig's fields, and their values checked by building it."""
        super().check_train(train, add)
        names = {f.name for f in dataclasses.fields(self.config_class())}
        if set(train) <= names:  # every key known: build it to check the values
            try:
                self.config_class()(**train)
            except (TypeError, ValueError) as exc:
                add(("target", "train"), str(exc))

    def prepare(self, spec, log):
        """A classifier trained until it fits (pareto.vision.train), with a trial's CPU share of
        threads (unlearn.threads, else resources.cpus_per_trial); its images travel inside the
        target directory."""
        import json
        from pathlib import Path

        from pareto.prepare import Prepared
        from pareto.vision.train import VisionTargetConfig, build_vision_target

        from pareto.sources import source_of

        data = dataclasses.asdict(spec.data)
        data["forget_class"] = data["forget_class"] or source_of(data).default_forget_class
        threads = spec.unlearn.threads or max(1, int(spec.resources.cpus_per_trial))
        path = Path(build_vision_target(data, VisionTargetConfig(**spec.target.train), log=log, num_threads=threads))
        return Prepared(path, json.loads((path / "manifest.json").read_text()))
