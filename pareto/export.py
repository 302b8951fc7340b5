"""A trial's kept weights (`eval.keep_checkpoints: true`) back as a model: `pareto export` writes one
as a transformers folder, `pareto mix` evaluates the interpolations between it and the target.

    θ_α = (1 − α)·θ_target + α·θ_unlearned          (every floating parameter; α in [0, 1])

For a LoRA trial θ_unlearned = θ_target + ΔW with ΔW = s·B·A per adapted layer, so the same
formula is θ_α = θ_target + α·ΔW: the adapters' delta is scaled (B ← α·B), the frozen target is
untouched. A mixed model is evaluated with the sweep's own evaluation (its metrics, eval
settings, the target's template, BOS and splits, the Retrain reference), on the trial's device,
dtype and thread count, as `trainables/unlearn.py` evaluates a trial.

`open_kept` checks the input before torch is needed; every problem is a `KeptError` whose
message names the fix (the CLI exits 2 with it).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from pathlib import Path

from pareto import checkpoint


class KeptError(ValueError):
    """Input export or mix cannot use; the message names the problem and the fix."""


@dataclass
class Kept:
    """One trial's kept step, with what rebuilding and evaluating it needs."""

    results: str  # the sweep folder (a path or URI)
    trial: dict  # its trials.parquet row (pyarrow: None for nulls)
    spec: dict
    step: int
    evals: list[dict]  # the trial's evals.parquet rows
    target_dir: Path

    @property
    def trial_id(self) -> str:
        return str(self.trial["trial_id"])

    @property
    def lora(self) -> bool:
        return bool(self.spec["unlearn"].get("lora"))

    def recorded(self) -> dict | None:
        """The trial's evals.parquet row at this step (None if not there)."""
        return next((e for e in self.evals if int(e["eval_step"]) == self.step), None)


def results_store(results: str):
    """(Store of the folder above, the sweep folder's name in it): what the results writer takes."""
    from pareto.results.store import Store

    if "://" in results:
        parent, name = results.rstrip("/").rsplit("/", 1)
        return Store(parent), name
    path = Path(results).resolve()
    return Store(str(path.parent)), path.name


def find_target(target_hash: str | None) -> Path | None:
    """The target with this content hash in the cache on this machine (PARETO_CACHE), else None."""
    from pareto.models.cache import default_cache_dir

    root = default_cache_dir()
    if not target_hash or not root.is_dir():
        return None
    for d in sorted(root.iterdir()):
        m = d / "manifest.json"
        if d.name.startswith(".") or not m.is_file():
            continue
        try:
            if json.loads(m.read_text()).get("hash") == target_hash:
                return d
        except (OSError, ValueError):
            continue
    return None


def open_kept(results: str, trial_id: str, step: int | None) -> Kept:
    """Check and read a trial's kept step (step None: its last kept one). Raises KeptError naming
    the fix: an unknown trial, the baseline, a sweep without eval.keep_checkpoints, a step not
    kept (the kept ones listed), a target not in this machine's cache."""
    import pyarrow as pa

    store, folder = results_store(results)
    try:
        trials = store.read_table(f"{folder}/trials.parquet").to_pylist()
    except (FileNotFoundError, OSError, pa.ArrowInvalid):
        raise KeptError(f"{results} holds no trials.parquet. Pass --results with the folder `pareto sweep` "
                        "printed.") from None
    ids = [t["trial_id"] for t in trials]
    row = next((t for t in trials if t["trial_id"] == trial_id), None)
    if row is None:
        shown = ", ".join(ids[:12]) + (" …" if len(ids) > 12 else "")
        raise KeptError(f"no trial {trial_id!r} in {results}; its trials are: {shown or 'none'}. "
                        "`pareto frontier --results DIR` lists them with their labels.")
    kept_ids = [t["trial_id"] for t in trials if t["combiner"] not in ("no-unlearn", "mix")]
    if row["combiner"] == "no-unlearn":
        raise KeptError(f"{trial_id} is the No-unlearn baseline: its model is the target itself (nothing was "
                        f"kept for it). Pick an unlearning trial: {', '.join(kept_ids[:8]) or 'none'}.")
    if row["combiner"] == "mix":
        raise KeptError(f"{trial_id} is itself a mix ({row.get('label')}); pick the unlearning trial it was "
                        f"mixed from: {', '.join(kept_ids[:8]) or 'none'}.")
    if not isinstance(row.get("spec"), str):
        raise KeptError(f"{trial_id} has no recorded spec (the `spec` column of trials.parquet); these results "
                        "predate it. Rerun the sweep with eval.keep_checkpoints: true.")
    spec = json.loads(row["spec"])
    evals = []
    if store.exists(f"{folder}/evals.parquet"):
        evals = [e for e in store.read_table(f"{folder}/evals.parquet").to_pylist() if e["trial_id"] == trial_id]
    evaluated = sorted(int(e["eval_step"]) for e in evals)
    if not spec["eval"].get("keep_checkpoints"):
        raise KeptError(f"{results} was swept without eval.keep_checkpoints, so no weights of {trial_id} were kept. "
                        "Rerun the sweep with `--set eval.keep_checkpoints=true` (and eval.every for steps on the "
                        "way), then pass the new results.")
    kept = checkpoint.kept_steps(store, folder, trial_id)
    if not kept:
        raise KeptError(f"{trial_id} ({row.get('label')}, status {row.get('status')}) has no kept weights in "
                        f"{results}/{checkpoint.KEPT_DIR}/ (it evaluated at steps {evaluated or 'none'}). "
                        f"Pick another trial: {', '.join(kept_ids[:8])}.")
    if step is None:
        step = kept[-1]
    if step not in kept:
        raise KeptError(f"{trial_id} has no kept weights at step {step}; its kept steps are "
                        f"{', '.join(map(str, kept))}. Pass one of them with --step.")
    target = find_target(row.get("target_hash"))
    if target is None:
        raise KeptError(f"the target {trial_id} unlearned (hash {str(row.get('target_hash'))[:16]}) is not in the "
                        f"cache on this machine. Build it with `pareto target SPEC` (the sweep's spec, recorded in "
                        f"{results}/sweep.json), or point PARETO_CACHE at the cache the sweep used.")
    return Kept(results, row, spec, int(step), evals, target)


# ------------------------------------------------------------------------------ models
def _setup(kept: Kept, log) -> dict:
    """What `trainables.unlearn.open_target` takes: the spec, the target, the sweep's extra
    evaluation splits and the Retrain reference (pareto.prepare, finding the target cached)."""
    from pareto.prepare import prepare_target
    from pareto.spec import SpecError, parse_spec

    try:
        spec, _ = parse_spec(json.dumps(kept.spec), source=f"{kept.trial_id}'s recorded spec")
    except SpecError as exc:
        raise KeptError(f"{kept.trial_id}'s recorded spec no longer validates ({exc}); it was written by "
                        f"pareto {kept.trial.get('pareto_version')}.") from None
    prepared = prepare_target(spec, log=log)
    if prepared.manifest.get("hash") != kept.trial.get("target_hash"):
        raise KeptError(f"the recorded spec prepares another target (hash {str(prepared.manifest.get('hash'))[:16]}) "
                        f"than {kept.trial_id} unlearned; point PARETO_CACHE at the cache the sweep used.")
    return {"spec": kept.spec, "target_dir": str(prepared.target_dir), "eval_splits": prepared.eval_splits,
            "reference": prepared.reference}


def _device(kept: Kept) -> str:
    import torch

    device = str(kept.trial.get("device") or "cpu")
    return device if not device.startswith("cuda") or torch.cuda.is_available() else "cpu"


class Evaluator:
    """The trial's model at its kept step (or mixed with the target), evaluated as the sweep does."""

    def __init__(self, kept: Kept, log=print) -> None:
        import torch

        from trainables.unlearn import open_target, prepare_model

        self.kept = kept
        self.setup = _setup(kept, log)
        unlearn = kept.spec["unlearn"]
        res = kept.spec["resources"]  # the trial's thread count, as start_trial sets it
        share = float(res["cpus_per_trial"]) / max(1, int(res.get("workers_per_trial") or 1))
        self.threads = int(unlearn.get("threads") or max(1, int(share)))
        self.target = open_target(self.setup)
        store, folder = results_store(kept.results)
        self.tensors, self.meta = checkpoint.read_kept(store, folder, kept.trial_id, kept.step)
        device = _device(kept)
        self.model = prepare_model(self.target, unlearn, device, unlearning=self.kept.lora)
        with torch.no_grad():
            if self.kept.lora:
                names = {n for n, _ in self.model.named_parameters()}
                missing = [k for k in self.tensors if k.replace(".weight", ".default.weight") not in names]
                if missing:
                    raise KeptError(f"the kept adapters do not fit the spec's LoRA model (e.g. {missing[:2]})")
            else:
                state = self.model.state_dict()
                self.base = {k: state[k].detach().clone() for k in self.tensors}
                self.unlearned = {k: v.to(device=state[k].device, dtype=state[k].dtype)
                                  for k, v in self.tensors.items()}

    def set_alpha(self, alpha: float) -> None:
        """Make the model θ_α (α = 1: the trial's own weights at its kept step)."""
        import torch

        a = float(alpha)
        with torch.no_grad():
            if self.kept.lora:
                from peft import set_peft_model_state_dict

                scaled = {k: (v * a if "lora_B" in k else v) for k, v in self.tensors.items()}
                set_peft_model_state_dict(self.model, scaled)
            else:
                params = self.model.state_dict()
                for k, u in self.unlearned.items():
                    t = params[k]
                    if t.is_floating_point():
                        t.copy_((1.0 - a) * self.base[k] + a * u)
                    elif a > 0:
                        t.copy_(u)

    def evaluate(self, model=None) -> tuple[dict, list[dict], str]:
        """(metric → value, item rows, metric_settings) of `model` (default: this one as it is now)."""
        import torch

        from pareto.metrics import EvalContext, evaluate
        from dataclasses import asdict

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            t = self.target
            ctx = EvalContext(model if model is not None else self.model, t.tokenizer, t.eval_splits, t.settings,
                              reference=self.setup.get("reference", {}))
            values = evaluate(ctx, self.kept.spec["eval"]["metrics"])
        finally:
            torch.set_num_threads(before)
        items = [{"metric": name, **asdict(item)} for name, v in values.items() for item in v.items]
        settings = json.dumps({name: v.settings for name, v in values.items()}, sort_keys=True)
        return {name: v.value for name, v in values.items()}, items, settings


# ------------------------------------------------------------------------------ export
EXPORT_NOTE = "pareto_export.json"


def export(kept: Kept, out: str, log=print) -> Path:
    """Write the kept model to `out` (a new local folder), built beside it and renamed into place:
    a full model as `save_pretrained` writes it (config, model.safetensors, generation config) with
    the target's tokenizer; a LoRA trial's adapters in peft's layout (adapter_config.json naming
    the target as base, adapter_model.safetensors) with the tokenizer and a README naming the base.
    pareto_export.json records where it came from and the trial's metrics at that step."""
    import shutil
    import uuid

    import torch

    from pareto.models._build import load_target

    final = Path(out)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise KeptError(f"--out {out} exists and is not empty; pass a new folder")
    store, folder = results_store(kept.results)
    tensors, meta = checkpoint.read_kept(store, folder, kept.trial_id, kept.step)
    model, tokenizer, manifest = load_target(kept.target_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if kept.lora:
            from safetensors.torch import save_file

            save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
            config = dict(meta["lora"], base_model_name_or_path=str(kept.target_dir), inference_mode=True)
            (tmp / "adapter_config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
            (tmp / "README.md").write_text(
                f"# LoRA adapters of {kept.trial_id} at step {kept.step} ({kept.trial.get('label')})\n\n"
                f"Base model: the sweep's target, {kept.target_dir} (content hash {kept.trial.get('target_hash')}).\n"
                "Load with:\n\n    from peft import PeftModel\n    from transformers import AutoModelForCausalLM\n"
                f"    base = AutoModelForCausalLM.from_pretrained({str(kept.target_dir)!r})\n"
                f"    model = PeftModel.from_pretrained(base, {str(final)!r})\n")
        else:
            model.to(getattr(torch, meta.get("dtype") or "float32"))
            checkpoint.load_full_weights(model, tensors)
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        recorded = kept.recorded() or {}
        note = {"results": kept.results, "trial_id": kept.trial_id, "step": kept.step,
                "label": kept.trial.get("label"), "lora": kept.lora, "target_dir": str(kept.target_dir),
                "target_hash": kept.trial.get("target_hash"), "prompt_template": kept.trial.get("prompt_template"),
                "add_bos": kept.trial.get("add_bos"),
                "metrics": {m: recorded.get(m) for m in kept.spec["eval"]["metrics"]}}
        (tmp / EXPORT_NOTE).write_text(json.dumps(note, indent=1, sort_keys=True, default=str) + "\n")
        if final.exists():
            final.rmdir()
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def kept_folder(results: str, trial_id: str, step: int) -> str:
    return posixpath.join(results.rstrip("/"), checkpoint.kept_rel(trial_id, step))


# ------------------------------------------------------------------------------ size (pareto validate)
def kept_size(spec, points: list[dict]) -> tuple[int, int, int | None, str]:
    """(unlearning trials, evaluations per trial, bytes per kept step or None, why not) of
    eval.keep_checkpoints: the parameters a trial keeps (LoRA: the adapters) of a randomly
    initialised model of the target's shape, in unlearn.dtype. Optuna's trials count too."""
    import math
    from dataclasses import asdict

    import torch

    from pareto.estimate_workload import NotEstimated, workload
    from pareto.spec import total_steps

    trials = sum(1 for p in points if not p.get("baseline"))
    if spec.search.algorithm == "optuna":
        trials += spec.search.num_samples
    try:
        work = workload(spec)
    except (NotEstimated, OSError, ValueError) as exc:
        work, why = None, str(exc)
    n = total_steps(asdict(spec.unlearn), len(work.forget) if work is not None else 1)
    every = spec.eval.every
    evals = max(1, math.ceil(n / every)) if every else 1
    if work is None or work.new_model is None:
        return trials, evals, None, why if work is None else work.reason
    model = work.new_model()
    if spec.unlearn.lora:
        from pareto.memory import apply_lora

        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = apply_lora(model, **spec.unlearn.lora)
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        params = list(model.parameters())  # tied weights once
    size = torch.empty((), dtype=getattr(torch, spec.unlearn.dtype)).element_size()
    return trials, evals, sum(p.numel() for p in params) * size, ""


def kept_size_note(spec, points: list[dict]) -> str:
    """`pareto validate`'s line on what eval.keep_checkpoints will write."""
    trials, evals, per, why = kept_size(spec, points)
    what = "adapter" if spec.unlearn.lora else "parameter"
    if per is None:
        return (f"eval.keep_checkpoints: {trials} trial(s) × {evals} evaluation(s) × the model's {what} bytes "
                f"(size not estimated: {why})")
    def size(b: float) -> str:
        return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.2f} MiB"

    return (f"eval.keep_checkpoints: {trials} trial(s) × {evals} evaluation(s) × {size(per)} of {what}s = "
            f"{size(trials * evals * per)} in the results' checkpoints/")
