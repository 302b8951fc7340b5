"""A sweep's results as pandas tables: loading, the dataset, metric directions, method names.

Reads the Parquet files ``pareto sweep`` writes (``trials``, ``evals``, ``steps``) with pyarrow
only. Metric directions come from ``trials.parquet``'s schema metadata
(``pareto.metric_directions``: "min", "max" or "zero" — closest to zero is best), so nothing
here imports the ``pareto`` package.

>>> import pandas as pd
>>> t = pd.DataFrame({"combiner": ["gdiff", "ngdiff", "no-unlearn"],
...                   "combiner_params": ['{"c": 0.2}', "{}", "{}"], "objective": ["ga", "npo", None]})
>>> method_names(t).tolist()
['gdiff(c=0.2)', 'ngdiff/npo', 'no-unlearn']
>>> display_names(method_names(t)).tolist()
['GDiff-0.2', 'NGDiff+NPO', 'No-unlearn']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = [
    "DATASETS", "DEFAULT_PLANES", "Results", "dataset_of", "departure_notes", "departures", "display_names",
    "find_sweeps", "load_results", "method_names", "resolve_objectives",
]

#: Dataset families: the data.source values of a spec that belong to each.
#: The embedded default is TOFU-shaped (fictitious authors, TOFU's schema and metrics).
DATASETS: dict[str, tuple[str, ...]] = {
    "tofu": ("tofu", "embedded"),
    "muse": ("muse_news",),
    "custom": ("custom",),
    "vision": ("cifar10", "cifar100", "image_folder"),  # image classifiers (docs/vision.md)
}

#: The paper's planes per dataset family (each a tuple of metric names: 2 or 3 objectives).
#: The loss plane (Definition 1 literally) comes first for every family. Results record their data
#: source's own planes (``pareto.planes`` in trials.parquet's metadata; `Results.default_planes`
#: reads them first); this table serves results written before they did, and `--dataset`.
LOSS_PLANE = ("loss_f_eval", "loss_r_eval")
DEFAULT_PLANES: dict[str, tuple[tuple[str, ...], ...]] = {
    "tofu": (LOSS_PLANE, ("rouge_f", "utility_r")),
    "muse": (LOSS_PLANE, ("verbmem_f", "knowmem_f", "knowmem_r")),
    "custom": (LOSS_PLANE, ("rouge_f", "utility_r")),
    "vision": (LOSS_PLANE, ("forget_acc", "retain_acc"), ("test_forget_acc", "test_retain_acc")),
}

_PRETTY = {
    "gd": "GD", "ga": "GA", "gdiff": "GDiff", "lossnorm": "LossNorm", "rlw": "RLW",
    "pcgrad": "PCGrad", "imtlg": "IMTL-G", "ngdiff": "NGDiff", "mgda": "MGDA", "cagrad": "CAGrad",
    "nash": "Nash-MTL", "gradvac": "GradVac", "aligned": "Aligned-MTL", "famo": "FAMO",
    "no-unlearn": "No-unlearn", "npo": "NPO", "simnpo": "SimNPO", "mix": "Mix",
}


@dataclass
class Results:
    """One sweep's tables. ``directions``: metric → "min" | "max" | "zero"."""

    folder: str
    trials: pd.DataFrame
    evals: pd.DataFrame = field(default_factory=pd.DataFrame)
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    directions: dict[str, str] = field(default_factory=dict)
    probe: pd.DataFrame = field(default_factory=pd.DataFrame)  # probe.parquet (`pareto probe`): Fig. 4
    planes: tuple[tuple[str, ...], ...] = ()  # the data source's planes, as recorded with the results

    @property
    def dataset(self) -> str | None:
        return dataset_of(self.trials)

    def default_planes(self, dataset: str | None = None) -> tuple[tuple[str, ...], ...]:
        """The planes shown when none is asked for: those recorded with the results (the data
        source's), else the dataset family's (`dataset`, or the results' own), else TOFU's."""
        if self.planes and dataset in (None, self.dataset):
            return self.planes
        return DEFAULT_PLANES.get(dataset or self.dataset or "tofu", DEFAULT_PLANES["tofu"])

    @property
    def reference_metrics(self) -> dict[str, float]:
        """The Retrain model's values of the sweep's metrics ({} when the sweep had no
        target.retain_model): the ``reference_metrics`` JSON its trial rows record."""
        col = self.trials.get("reference_metrics")
        if col is None or not col.notna().any():
            return {}
        values = json.loads(col.dropna().iloc[0])
        return {k: float(v) for k, v in values.items() if v is not None}

    @cached_property  # read once: every table of the report asks
    def departures(self) -> dict[str, list[str]]:
        """metric → how its values depart from the reference tool's (a subset mode, cut texts, …),
        as the trials' ``metric_settings`` record them; see :func:`departures`."""
        return departures(self.trials)

    @property
    def name(self) -> str:
        if "sweep" in self.trials and self.trials["sweep"].notna().any():
            return str(self.trials["sweep"].dropna().iloc[0])
        return Path(self.folder).name


# ----------------------------------------------------------------------------------- loading
def _fs(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in str(path):
        return pafs.FileSystem.from_uri(str(path))
    return pafs.LocalFileSystem(), str(Path(path).resolve())


def _read(fs: pafs.FileSystem, base: str, name: str, required: bool) -> tuple[pd.DataFrame, dict]:
    path = f"{base}/{name}.parquet"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        if required:
            raise FileNotFoundError(f"{path} not found: pass the folder `pareto sweep` printed "
                                    "(it holds trials.parquet)")
        return pd.DataFrame(), {}
    table = pq.read_table(path, filesystem=fs)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return table.to_pandas(), meta


def load_results(folder: str | Path) -> Results:
    """trials (required), evals, steps and probe (empty when absent) of one sweep folder or URI."""
    fs, base = _fs(str(folder))
    trials, meta = _read(fs, base, "trials", required=True)
    directions = json.loads(meta.get("pareto.metric_directions", "{}"))
    planes = tuple(tuple(p) for p in json.loads(meta.get("pareto.planes", "[]")))
    evals, _ = _read(fs, base, "evals", required=False)
    steps, _ = _read(fs, base, "steps", required=False)
    probe, _ = _read(fs, base, "probe", required=False)
    if len(trials):
        trials = trials.assign(method=method_names(trials))
    return Results(str(folder), trials, evals, steps, directions, probe, planes)


def departures(trials: pd.DataFrame) -> dict[str, list[str]]:
    """metric → the notes its ``metric_settings`` entries record under "departures" (how the value
    departs from the reference tool's: MUSE's subset mode, texts cut, …), over every trial, each
    note once, in order of first appearance. {} for results written before pareto recorded them."""
    out: dict[str, dict[str, None]] = {}
    col = trials.get("metric_settings")
    for text in (col.dropna().unique() if col is not None else []):
        try:
            settings = json.loads(text)
        except ValueError:
            continue
        for name, s in settings.items():
            for note in (s.get("departures") or []) if isinstance(s, dict) else []:
                out.setdefault(name, {})[str(note)] = None
    return {k: list(v) for k, v in out.items()}


def departure_notes(names, found: dict[str, list[str]]) -> list[str]:
    """One line per metric of ``names`` (plain, or a "|privleak|" objective column) that has
    departures: "† verbmem_f: note; note"."""
    names = dict.fromkeys(str(n).strip("|") for n in names)
    return [f"† {n}: " + "; ".join(found[n]) for n in names if found.get(n)]


def dataset_of(trials: pd.DataFrame) -> str | None:
    """The dataset family (a DATASETS key) from the ``spec`` JSON column's data.source."""
    if "spec" not in trials or not trials["spec"].notna().any():
        return None
    try:
        source = json.loads(trials["spec"].dropna().iloc[0])["data"]["source"]
    except (ValueError, KeyError, TypeError):
        return None
    return next((fam for fam, sources in DATASETS.items() if source in sources), source)


def find_sweeps(root: str | Path, dataset: str | None = None) -> list[Path]:
    """Sweep folders (holding trials.parquet) under a local ``root``, newest first.

    ``root`` itself counts when it holds trials.parquet. With ``dataset`` only the sweeps of
    that family (see DATASETS). Trial parts (``parts/``) and Ray's folders are skipped.
    """
    root = Path(root)
    found = [p for p in root.glob("**/trials.parquet") if not {"parts", ".ray"} & set(p.parts)]
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    out = []
    for p in found:
        if dataset is not None:
            spec = pq.read_table(p, columns=["spec"]).to_pandas() if "spec" in pq.read_schema(p).names else None
            if spec is None or dataset_of(spec) != dataset:
                continue
        out.append(p.parent)
    return out


# ----------------------------------------------------------------------------------- methods
def _params(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        return ""
    try:
        params = json.loads(text)
    except ValueError:
        return text
    return ",".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in sorted(params.items()))


def method_names(trials: pd.DataFrame) -> pd.Series:
    """What a trial runs, without its lr, lr rule and seed: "gdiff(c=0.2)", "ngdiff/npo".

    combiner(params), plus "/objective" when the forget objective is not GA (``ga``). The points
    of one mixing curve (`pareto mix`, combiner "mix") are one method: "mix(t004@20)", whatever α.
    """
    out = []
    for rec in trials.to_dict("records"):
        comb = str(rec.get("combiner") or "?")
        ps = _params(rec.get("combiner_params"))
        if comb == "mix":
            p = json.loads(rec["combiner_params"])
            out.append(f"mix({p['of']}@{p['step']})")
            continue
        name = f"{comb}({ps})" if ps else comb
        obj = rec.get("objective")
        if isinstance(obj, str) and obj not in ("ga", "") and comb != "no-unlearn":
            name += f"/{obj}"
        out.append(name)
    return pd.Series(out, index=trials.index, dtype=object)


def display_names(methods: pd.Series | list[str]) -> pd.Series:
    """The paper's spelling: "gdiff(c=0.5)" → "GDiff-0.5", "ngdiff/npo" → "NGDiff+NPO"."""
    out = []
    for m in list(methods):
        head, _, obj = str(m).partition("/")
        comb, _, ps = head.partition("(")
        name = _PRETTY.get(comb, comb)
        ps = ps.rstrip(")")
        if comb == "gdiff" and ps.startswith("c=") and "," not in ps:
            name += "-" + ps[2:]
        elif ps:
            name += f"({ps})"
        if obj:
            name += "+" + _PRETTY.get(obj, obj)
        out.append(name)
    return pd.Series(out, index=methods.index if isinstance(methods, pd.Series) else None, dtype=object)


def setting_names(trials: pd.DataFrame) -> pd.Series:
    """Method plus how its learning rate was set: "NGDiff (AutoLR)", "GDiff-0.5 (η=1e-4)"."""
    disp = display_names(trials["method"] if "method" in trials else method_names(trials))
    out = []
    for name, rule, lr in zip(disp, trials.get("lr_rule", [None] * len(trials)),
                              trials.get("lr", [np.nan] * len(trials))):
        if rule == "autolr":
            out.append(f"{name} (AutoLR)")
        elif rule in (None, "none") or not np.isfinite(float(lr if lr is not None else np.nan)):
            out.append(name)
        else:
            out.append(f"{name} (η={float(lr):.0e})")
    return pd.Series(out, index=trials.index, dtype=object)


# -------------------------------------------------------------------------------- objectives
def resolve_objectives(trials: pd.DataFrame, names: list[str], directions: dict[str, str]
                       ) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Metric names → (trials, [(column, "min"|"max")]) for analysis.frontier_table.

    A name's direction comes from ``directions`` (the results' metadata) or an explicit suffix
    ("lr:min"). A "zero" metric (closest to zero is best, e.g. privleak) is minimised as its
    absolute value, in an added column "|name|". Unknown names raise ValueError.
    """
    trials = trials.copy()
    objectives = []
    for raw in names:
        name, _, explicit = str(raw).partition(":")
        direction = explicit or directions.get(name)
        if direction is None:
            known = ", ".join(sorted(directions)) or "(none recorded)"
            raise ValueError(f"no direction for {name!r}: it is not a metric of these results "
                             f"({known}); give one explicitly, e.g. {name}:min or {name}:max")
        if direction not in ("min", "max", "zero"):
            raise ValueError(f"direction of {name!r} must be min, max or zero, got {direction!r}")
        if name not in trials:
            raise ValueError(f"no column {name!r} in the trials table")
        if direction == "zero":
            trials[f"|{name}|"] = pd.to_numeric(trials[name], errors="coerce").abs()
            objectives.append((f"|{name}|", "min"))
        else:
            objectives.append((name, direction))
    return trials, objectives


#: A metric direction → the arrow after its name in tables, plots and the interactive report.
ARROWS = {"min": "↓", "max": "↑", "zero": "→0"}


def arrow(name: str, directions: dict[str, str]) -> str:
    base, _, explicit = name.partition(":")
    return f"{base} {ARROWS.get(explicit or directions.get(base, ''), '')}".rstrip()
