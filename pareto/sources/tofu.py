"""TOFU (Maini et al. 2024; locuslab/TOFU) from the hub or a local folder in the official layout
(pareto.data.tofu): the forget split `data.forget` (forget01/05/10) or, for CPU-sized runs, the
last `data.authors` authors of `full` with the last `data.forget_fraction` of them forgotten.

Evaluation splits beyond forget/retain: real_authors and world_facts with their perturbed answers;
the retain metrics read the retain rows TOFU ships perturbed answers for (retain_perturbed), as
TOFU's own evaluation does.
"""

from __future__ import annotations

import math
from pathlib import Path

from pareto.sources._base import PROMPT_KEYS, QA_METRICS, DataBundle, DataSource, SourceCheck, register_source

FORGET_SPLITS = ("forget01", "forget05", "forget10")
#: TOFU's published sizes: 200 authors of 20 QA pairs in `full`; forgetNN is the last NN % of them.
AUTHORS, QA_PER_AUTHOR = 200, 20
RETAIN_PERTURBED_ROWS = 400  # retain_perturbed: the retain rows TOFU's evaluation scores
FORGET_ROWS = {"forget01": 40, "forget05": 200, "forget10": 400}


def local_path_problem(path: str | None, label: str, repo: str) -> str | None:
    """A data.path that looks like a folder (not owner/name) but is none."""
    if path and ("/" not in path or path.startswith((".", "/"))) and not Path(path).is_dir():
        return f"no such directory: {path} (give a local {label} directory or a hub id like {repo})"
    return None


@register_source("tofu")
class Tofu(DataSource):
    eval_splits = ("real_authors", "world_facts")
    keys = ("path", "forget", "authors", "forget_fraction") + PROMPT_KEYS
    metric_data, metrics = ("qa",), QA_METRICS
    family, planes = "tofu", (("loss_f_eval", "loss_r_eval"), ("rouge_f", "utility_r"))
    hub_repo, label = "locuslab/TOFU", "TOFU"
    summary = "TOFU's fictitious authors (the hub's locuslab/TOFU or a local copy); `authors` for CPU-sized runs"

    def check(self, data: dict, add) -> None:
        if data["forget"] not in FORGET_SPLITS:
            add(("data", "forget"), f"TOFU forget split must be forget01, forget05 or forget10, got {data['forget']!r}")
        if data["authors"] is not None and data["authors"] < 2:
            add(("data", "authors"), f"authors must be ≥ 2, got {data['authors']}")
        why = local_path_problem(data["path"], self.label, self.hub_repo)
        if why:
            add(("data", "path"), why)

    def preflight(self, data: dict, out: SourceCheck) -> None:
        """The subset's arithmetic: `forget_fraction` of `authors` must leave both sets non-empty."""
        n, frac = data.get("authors"), data.get("forget_fraction", 0.1)
        if not (isinstance(n, int) and n >= 2 and isinstance(frac, float) and 0 < frac < 1):
            return
        n_forget = int(frac * n + 1e-9)
        if n_forget < 1:
            out.problems.append((("data", "forget_fraction"),
                                 f"the forget set is empty: forget_fraction {frac:g} of {n} authors is "
                                 f"{frac * n:g} author(s), rounded down to 0. Raise data.forget_fraction to "
                                 f"at least {1 / n:.3g} or data.authors to at least {math.ceil(1 / frac - 1e-9)}"))
        elif n_forget >= n:
            out.problems.append((("data", "forget_fraction"),
                                 f"forget_fraction {frac:g} of {n} authors forgets all {n}: the retain set is "
                                 f"empty. Lower data.forget_fraction"))

    def load(self, data: dict) -> DataBundle:
        from pareto.data.tofu import load_tofu, tofu_attach_perturbed, tofu_author_subset, tofu_split

        path = data.get("path") or self.hub_repo
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

    def counts(self, data: dict) -> tuple[int, int]:
        """(forget rows, retain rows) from TOFU's published sizes (no download)."""
        if data.get("authors"):
            n_forget = int(data["forget_fraction"] * data["authors"] + 1e-9)  # as tofu_author_subset
            return n_forget * QA_PER_AUTHOR, (data["authors"] - n_forget) * QA_PER_AUTHOR
        forget = FORGET_ROWS[data["forget"]]
        return forget, AUTHORS * QA_PER_AUTHOR - forget

    def forget_rows(self, data: dict) -> int | None:
        return self.counts(data)[0]

    def not_estimated(self, data: dict) -> str | None:
        from pareto.data.tofu import local_directory

        if local_directory(data.get("path") or self.hub_repo) is None:
            return (f"the data is on the hub ({data.get('path') or self.hub_repo}) and is not downloaded to "
                    f"estimate; pass a local copy with --set data.path=DIR")
        return None

    def eval_warnings(self, data: dict, ev) -> list[str]:
        """TOFU scores all 400 retain rows with perturbed answers; eval.retain_items takes fewer."""
        if data.get("authors") is None and ev.retain_items < RETAIN_PERTURBED_ROWS:
            return [f"eval.retain_items {ev.retain_items} scores that many of TOFU's {RETAIN_PERTURBED_ROWS} retain "
                    f"rows with perturbed answers (evenly spread); TOFU's own evaluation, and its Model Utility, "
                    f"scores all of them: set eval.retain_items: {RETAIN_PERTURBED_ROWS} for numbers comparable "
                    f"with it"]
        return []

    def smaller_hint(self, data: dict) -> str:
        if data.get("authors"):
            return ""
        return (" or on a laptop-sized subset, the last 40 authors: --set data.authors=40 (`pareto validate` "
                "with the same --set prices it)")

    def hub_parts(self, data: dict) -> list[tuple[str, str]]:
        from pareto.data.tofu import tofu_split

        configs = ["forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed"]
        if data.get("authors"):
            configs.append("full")
        else:
            try:
                configs += list(tofu_split(data.get("forget") or "forget10"))
            except ValueError:  # an unknown split: the spec check names it
                pass
        return [("", c) for c in configs]
