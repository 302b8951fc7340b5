"""The data a sweep unlearns and evaluates, from the spec's `data:` section.

    embedded  the built-in synthetic authors (made together with the embedded target)
    tofu      TOFU from a local directory in the official layout or the hub (`path`), the
              forget split `forget` (forget01/05/10) or, for CPU-sized runs, the last `authors`
              authors of `full` with the last `forget_fraction` of them forgotten
    custom    your own forget/retain files (JSON, JSONL or Parquet) with question/answer fields

Evaluation splits beyond forget/retain (TOFU's real_authors and world_facts with their
perturbed answers) come along where the source has them; TOFU's retain metrics use the retain
rows that TOFU ships perturbed answers for (retain_perturbed), as TOFU's own evaluation does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pareto.data.custom import load_custom
from pareto.data.tofu import TOFU_REPO, load_tofu, tofu_attach_perturbed, tofu_author_subset, tofu_split


@dataclass
class DataBundle:
    name: str
    forget: list[dict]
    retain: list[dict]
    eval_splits: dict[str, list[dict]] = field(default_factory=dict)


def load_data(data: dict) -> DataBundle:
    """`data` is the spec's data section as a dict (see pareto.spec.DataSpec)."""
    source = data["source"]
    if source == "tofu":
        path = data.get("path") or TOFU_REPO
        perturbed = [load_tofu(c, path) for c in ("forget10_perturbed", "retain_perturbed")]
        if data.get("authors"):
            forget, retain = tofu_author_subset(load_tofu("full", path), data["authors"], data["forget_fraction"])
            name = f"tofu:last{data['authors']}authors:forget{data['forget_fraction']:g}"
        else:
            forget_cfg, retain_cfg = tofu_split(data["forget"])
            forget, retain = load_tofu(forget_cfg, path), load_tofu(retain_cfg, path)
            name = f"tofu:{data['forget']}"
        forget, retain = tofu_attach_perturbed(forget, *perturbed), tofu_attach_perturbed(retain, *perturbed)
        eval_splits = {split: load_tofu(f"{split}_perturbed", path) for split in ("real_authors", "world_facts")}
        # retain metrics on the retain rows TOFU ships perturbed answers for (its retain_perturbed)
        eval_splits["retain"] = [r for r in retain if "perturbed_answer" in r]
        return DataBundle(name, forget, retain, eval_splits)
    if source == "custom":
        forget = load_custom(data["forget_file"], kind="qa")
        retain = load_custom(data["retain_file"], kind="qa")
        return DataBundle(f"custom:{data['forget_file']}", forget, retain)
    raise ValueError(f"data source {source!r} is built with its target; load_data takes 'tofu' or 'custom'")
