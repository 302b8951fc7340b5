"""The target (and the retain-only reference) a sweep unlearns, built once by the driver.

`prepare_target(spec)` builds or finds in the cache the target model of the spec's data and
target sections, and, when `target.retain_model` is on, the retain-only "Retrain" model whose
values the reference-based metrics (forget_quality, privleak) compare with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from pareto.models.embedded import EmbeddedConfig, build_embedded_target
from pareto.spec import SweepSpec


@dataclass
class Prepared:
    target_dir: Path
    manifest: dict
    eval_splits: dict = field(default_factory=dict)  # beyond forget/retain (TOFU: real_authors, world_facts)
    reference: dict = field(default_factory=dict)  # values of the retain-only model (forget_quality)


def prepare_target(spec: SweepSpec, log: Callable[[str], None] = print) -> Prepared:
    """Build (or find in the cache) the target, and the retain-only reference when asked for."""
    if spec.target.source == "embedded":
        path = build_embedded_target(EmbeddedConfig(**spec.target.embedded), log=log)
        return Prepared(Path(path), json.loads((Path(path) / "manifest.json").read_text()))
    from pareto.data.sources import load_data
    from pareto.models.target import TargetConfig, build_target

    data = load_data(asdict(spec.data))
    cfg = TargetConfig(**spec.target.train)
    path = Path(build_target(data.forget, data.retain, cfg, data_name=data.name, log=log))
    prepared = Prepared(path, json.loads((path / "manifest.json").read_text()), data.eval_splits)
    if spec.target.retain_model:
        from pareto.metrics.probability import truth_ratios
        from pareto.models.embedded import load_target

        ref_path = build_target(data.forget, data.retain, replace(cfg, retain_only=True), data_name=data.name, log=log)
        model, tokenizer, _ = load_target(ref_path)
        prepared.reference = {"retain_model": str(ref_path), "forget_truth_ratios": truth_ratios(
            model, tokenizer, data.forget, correct_field="paraphrased_answer").tolist()}
    return prepared
