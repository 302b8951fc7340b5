"""The target (and the retain-only reference) a sweep unlearns, built once by the driver.

`prepare_target(spec)` builds or finds in the cache the target model of the spec's data and
target sections, and, when `target.retain_model` is on, the retain-only "Retrain" model whose
values the reference-based metrics compare with: TOFU's forget truth ratios (forget_quality,
QA data with perturbed answers) and MUSE's forget-vs-holdout Min-K% AUC (privleak, data with
privleak splits), each computed by the very function the metric uses, with the same settings.
`retrain_metrics` evaluates that model with the sweep's own metrics: every trial row records them
(`reference_metrics`), the Retrain line of the report and `pareto pick`'s first-below-retain level.

The prompt settings travel with the target: `data.template` and `data.add_bos` go into its
config (and hash) and manifest, and every trial reads them from there. `data.context` (tokens
per text window) is the target's `max_length`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from pareto.spec import SweepSpec


@dataclass
class Prepared:
    target_dir: Path
    manifest: dict
    eval_splits: dict = field(default_factory=dict)  # beyond forget/retain (TOFU: real_authors, world_facts; MUSE)
    reference: dict = field(default_factory=dict)  # values of the retain-only model (forget_quality, privleak)


def target_config(spec: SweepSpec, download: bool = False):
    """The TargetConfig of a `target.source: train` spec: `target.train` with the data section's
    prompt template, BOS choice and text window length (`data.context` → max_length). `data.add_bos`
    left out: the reference code's choice for the base's tokenizer, which `download` may fetch (the
    build); without it only a local or cached tokenizer is read (checks never reach the network)."""
    from pareto.models.target import TargetConfig

    d, train = spec.data, dict(spec.target.train)
    for key, value in (("template", d.template), ("add_bos", d.add_bos), ("max_length", d.context)):
        if value is None:
            continue
        if key in train and train[key] != value:
            where = "data.context" if key == "max_length" else f"data.{key}"
            raise ValueError(f"target.train.{key} ({train[key]!r}) differs from {where} ({value!r}); "
                             f"set it once, in {where}")
        train[key] = value
    if d.add_bos is None and "add_bos" not in train:  # the reference code's choice for this tokenizer
        from pareto.models.target_base import reference_bos

        bos = reference_bos(TargetConfig(**train), download=download)
        if bos is not None:
            train["add_bos"] = bos
    return TargetConfig(**train)


def prepare_target(spec: SweepSpec, log: Callable[[str], None] = print) -> Prepared:
    """Build (or find in the cache) the target, and the retain-only reference when asked for: the
    task of the spec's data source builds it (pareto.sources.tasks; image data gets a classifier,
    paper App. C)."""
    from pareto.sources import task_of

    return task_of(spec.data.source).prepare(spec, log)


def prepare_embedded(spec: SweepSpec, log: Callable[[str], None] = print) -> Prepared:
    """The embedded target, built together with its synthetic data (`target.embedded`)."""
    from pareto.models.embedded import EmbeddedConfig, build_embedded_target

    if spec.data.template != "plain" or spec.data.add_bos is False:
        raise ValueError(f"the embedded target is trained with the plain template and BOS; data.template "
                         f"{spec.data.template!r} / data.add_bos {spec.data.add_bos} need a target of their own: "
                         f"use target.source: train (e.g. data.source: tofu or custom) or drop these settings")
    path = build_embedded_target(EmbeddedConfig(**spec.target.embedded), log=log)
    return Prepared(Path(path), json.loads((Path(path) / "manifest.json").read_text()))


def prepare_trained(spec: SweepSpec, log: Callable[[str], None] = print) -> Prepared:
    """A language model finetuned on the source's rows (`target.train`), and its Retrain reference."""
    from pareto.models.target_build import build_target
    from pareto.sources import load_data

    data = load_data(asdict(spec.data))
    cfg = target_config(spec, download=True)
    # every evaluated word in the tiny tokenizer's vocabulary (none maps to <unk>)
    vocab_rows = [r for rows in data.eval_splits.values() for r in rows]
    # target.train.pretrain: the stand-in splits, learned by the target and its Retrain twin alike
    build = dict(data_name=data.name, vocab_rows=vocab_rows, eval_splits=data.eval_splits, log=log)
    path = Path(build_target(data.forget, data.retain, cfg, **build))
    prepared = Prepared(path, json.loads((path / "manifest.json").read_text()), data.eval_splits)
    if spec.target.retain_model:
        ref_path = build_target(data.forget, data.retain, replace(cfg, retain_only=True), **build)
        prepared.reference = reference_values(ref_path, data.forget, data.eval_splits, spec.eval.batch_size,
                                              spec.eval.privleak_tokens)
    return prepared


def reference_values(ref_path, forget: list[dict], eval_splits: dict, batch_size: int,
                     privleak_tokens: int | None = None) -> dict:
    """The retain-only model's values that reference-based metrics compare with: the forget truth
    ratios (QA rows with paraphrased and perturbed answers: forget_quality) and the privleak AUC
    (privleak splits: privleak), each by the metric's own function with the target's settings."""
    from pareto.metrics import EvalContext
    from pareto.metrics._base import eval_settings
    from pareto.metrics.muse import privleak_auc
    from pareto.metrics.tofu import split_truth_ratios
    from pareto.models.embedded import load_target

    model, tokenizer, manifest = load_target(ref_path)
    import torch

    if torch.cuda.is_available():  # a real-size Retrain model is evaluated where it is fast
        model.to("cuda")
    ctx = EvalContext(model, tokenizer, {"forget": forget, **eval_splits},
                      eval_settings(manifest, batch_size=batch_size, privleak_tokens=privleak_tokens))
    reference: dict = {"retain_model": str(ref_path)}
    if all("paraphrased_answer" in r and "perturbed_answer" in r for r in forget):
        reference["forget_truth_ratios"] = split_truth_ratios(ctx, "forget").tolist()
    if eval_splits.get("privleak_forget") and eval_splits.get("privleak_holdout"):
        reference["privleak_auc"] = privleak_auc(ctx)[0]
    return reference


def retrain_metrics(setup: dict, metrics: list[str]) -> dict:
    """The Retrain (retain-only) model's values of the sweep's own metrics, evaluated as every trial's
    evaluation is (trainables.unlearn: the same splits, settings and reference): the level MUSE's
    protocol compares knowmem_f with (`pareto pick --rule first-below-retain`). Against itself its
    forget_quality is 1 and its privleak 0. NaN values are recorded as null."""
    import math

    import torch

    from pareto.metrics import EvalContext, evaluate
    from pareto.models.embedded import load_target
    from trainables.unlearn import open_target

    target = open_target(setup)
    model, _, _ = load_target(setup["reference"]["retain_model"])
    if torch.cuda.is_available():
        model.to("cuda")
    ctx = EvalContext(model, target.tokenizer, target.eval_splits, target.settings, reference=setup["reference"])
    values = evaluate(ctx, metrics)
    return {name: (None if not math.isfinite(v.value) else float(v.value)) for name, v in values.items()}

