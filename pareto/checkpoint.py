"""A trial's state at a step, saved so a retried trial continues where it stopped.

What continues a trial exactly: the model's parameters (safetensors), the optimizer's state
(tensors and numbers, loaded with `torch.load(weights_only=True)`), and, as JSON, the engine's
step and learning rate and the state of every stateful component — the combiner (RLW's random
generator, FAMO's logits and their Adam moments, GradVac's EMA), the lr rule, the forget
objective (NPO's reference log-probabilities) — and both batch streams (their generators and
the rest of the current epoch's order). No pickle anywhere: a checkpoint is data.

Component state is read from the instance's attributes that are not dataclass fields (the
settings come from the spec again); numbers, lists, dicts, numpy arrays and numpy random
generators are encoded, anything else is refused by name so a new component cannot silently
lose state.

A trial on several workers (pareto/core/parallel.py) saves its model and optimizer with
`torch.distributed.checkpoint`: each rank writes its own shard (FSDP) into its own directory and
rank 0 adds the metadata and state.json; Ray Train merges the ranks' directories into one
checkpoint, from which every rank of a restarted worker group reads what it holds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

FORMAT = 1


def _encode(value, where: str):
    if isinstance(value, np.random.Generator):
        return {"__numpy_generator__": value.bit_generator.state}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, torch.Tensor):
        return {"__tensor__": value.detach().cpu().tolist(), "dtype": str(value.dtype).replace("torch.", "")}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, where), _encode(v, where)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_encode(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: cannot checkpoint a {type(value).__name__}; give the component a "
                    f"state_dict()/load_state_dict() or keep its state in numbers and arrays")


def _decode(value):
    if isinstance(value, dict):
        if "__numpy_generator__" in value:
            state = value["__numpy_generator__"]
            gen = np.random.Generator(getattr(np.random, state["bit_generator"])())
            gen.bit_generator.state = state
            return gen
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        if "__tensor__" in value:
            return torch.tensor(value["__tensor__"], dtype=getattr(torch, value["dtype"]))
        if "__dict__" in value:
            return {_decode(k): _decode(v) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def component_state(component) -> dict:
    """The attributes of a component that are state, not settings (not dataclass fields)."""
    fields = {f.name for f in dataclasses.fields(component)} if dataclasses.is_dataclass(component) else set()
    name = type(component).__name__
    return {k: _encode(v, f"{name}.{k}") for k, v in vars(component).items()
            if k not in fields and not callable(v)}


def load_component_state(component, state: dict) -> None:
    for k, v in state.items():
        setattr(component, k, _decode(v))


def batches_state(batches) -> dict:
    return {"generator": batches.generator.get_state().tolist(), "order": list(batches._order)}


def load_batches_state(batches, state: dict) -> None:
    batches.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
    batches._order = list(state["order"])


def save(directory: str | Path, *, model, optimizer, engine, forget, retain, steps_done: int) -> Path:
    """Write the trial's state into `directory` (created); returns it."""
    from safetensors.torch import save_model

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    trained_only = any(not p.requires_grad for p in model.parameters())
    if engine.parallel.world > 1:
        _save_distributed(d, model, optimizer, trained_only)
        if engine.parallel.rank != 0:
            return d
    elif trained_only:  # LoRA: the frozen target is shared and unchanged; keep the adapters only
        from safetensors.torch import save_file

        save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad},
                  str(d / "model.safetensors"))
    else:
        save_model(model, str(d / "model.safetensors"))  # handles tied weights (GPT-2's lm_head = wte)
    if engine.parallel.world == 1:
        torch.save(optimizer.state_dict(), d / "optimizer.pt")
    state = {
        "format": FORMAT, "workers": engine.parallel.world, "steps_done": steps_done, "trained_only": trained_only,
        "engine": {"step_index": engine.step_index, "lr": engine.lr,
                   "first_step_changed_frac": engine.first_step_changed_frac},
        "combiner": component_state(engine.combiner), "lr_rule": component_state(engine.lr_rule),
        "objective": component_state(engine.objective),
        "forget": batches_state(forget), "retain": batches_state(retain),
    }
    (d / "state.json").write_text(json.dumps(state))
    return d


def load(directory: str | Path, *, model, optimizer, engine, forget, retain) -> int:
    """Restore what `save` wrote; returns the number of steps already done."""
    from safetensors.torch import load_model

    d = Path(directory)
    state = json.loads((d / "state.json").read_text())
    if state.get("format") != FORMAT:
        raise ValueError(f"{d}: checkpoint format {state.get('format')} is not {FORMAT}; start the trial over")
    device = str(next(model.parameters()).device)
    workers = int(state.get("workers", 1))
    world = getattr(getattr(engine, "parallel", None), "world", 1)
    if workers != world:
        raise ValueError(f"{d}: the checkpoint was written by {workers} worker(s), this trial runs "
                         f"{world}; start the trial over")
    if workers > 1:
        _load_distributed(d, model, optimizer, state.get("trained_only", False))
    elif state.get("trained_only"):
        from safetensors.torch import load_file

        saved = load_file(str(d / "model.safetensors"), device=device)
        params = dict(model.named_parameters())
        missing = [n for n, p in params.items() if p.requires_grad and n not in saved]
        if missing or any(n not in params for n in saved):
            raise ValueError(f"{d}: the checkpoint's trained parameters do not match the model's "
                             f"(missing {missing[:3]}); start the trial over")
        with torch.no_grad():
            for n, t in saved.items():
                params[n].copy_(t)
    else:
        load_model(model, str(d / "model.safetensors"), device=device)
    if workers == 1:
        optimizer.load_state_dict(torch.load(d / "optimizer.pt", weights_only=True))
    engine.step_index, engine.lr = state["engine"]["step_index"], state["engine"]["lr"]
    engine.first_step_changed_frac = state["engine"].get("first_step_changed_frac", float("nan"))
    for group in optimizer.param_groups:
        group["lr"] = engine.lr
    load_component_state(engine.combiner, state["combiner"])
    load_component_state(engine.lr_rule, state["lr_rule"])
    load_component_state(engine.objective, state["objective"])
    load_batches_state(forget, state["forget"])
    load_batches_state(retain, state["retain"])
    return int(state["steps_done"])


def _options(trained_only: bool):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # LoRA: the adapters only (the frozen target is loaded from the target, not the checkpoint)
    return StateDictOptions(ignore_frozen_params=trained_only, strict=not trained_only)


def _save_distributed(d: Path, model, optimizer, trained_only: bool) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, optimizer, options=_options(trained_only))
    dcp.save({"model": msd, "optimizer": osd}, checkpoint_id=str(d / "distributed"))


def _load_distributed(d: Path, model, optimizer, trained_only: bool) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    options = _options(trained_only)
    msd, osd = get_state_dict(model, optimizer, options=options)  # the layout to read into (initialises the state)
    state = {"model": msd, "optimizer": osd}
    dcp.load(state, checkpoint_id=str(d / "distributed"))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                   options=options)


# ----------------------------------------------------------------------- weights kept for analysis
#: `eval.keep_checkpoints: true`: the weights at every evaluation of every unlearning trial, in the
#: sweep's results folder as <folder>/checkpoints/<trial id>/step<K>/{model.safetensors, meta.json}.
#:
#: Why the trial writes them itself, through a `Store`, and not through Ray's checkpoint mechanism:
#: Tune keeps one checkpoint per trial (`num_to_keep=1`, what `storage.checkpoints: last` resumes
#: from), deletes the older ones and would restore a retried trial from a weights-only directory;
#: and a weights payload in the reported row would sit in the driver's memory and in Tune's
#: experiment state. Tune's own checkpoints reach storage the same way: the trial's worker writes
#: to the storage location (a shared mount or an object store on a cluster), so every node that
#: can report a Tune checkpoint can write these too. Each file is written atomically by the Store
#: (locally a temporary file renamed into place, on object stores one PUT), the weights first and
#: meta.json last: a step is kept once its meta.json exists, never half.
#:
#: What is kept: a full model's state dict (tied weights once, as `save_pretrained` does); for a
#: LoRA trial only the adapters, in peft's layout (`get_peft_model_state_dict`: adapter name
#: dropped), with the LoRA config in meta.json: the frozen target is the sweep's target, unchanged.
KEPT_DIR = "checkpoints"
KEPT_FORMAT = 1


def kept_rel(trial_id: str, step: int) -> str:
    """The folder of a kept step inside the sweep's folder."""
    from pareto.results.state import TRIAL_ID

    if not TRIAL_ID.fullmatch(str(trial_id)):
        raise ValueError(f"trial id {trial_id!r} is not of the form t000")
    return f"{KEPT_DIR}/{trial_id}/step{int(step)}"


def _lora_config(model) -> dict | None:
    inner = getattr(model, "module", model)  # DDP wraps; FSDP shards in place
    config = getattr(inner, "peft_config", None)
    if not config:
        return None
    return json.loads(json.dumps(next(iter(config.values())).to_dict(),
                                 default=lambda v: sorted(v) if isinstance(v, (set, frozenset)) else str(v)))


def kept_tensors(model, parallel=None) -> tuple[dict, dict | None]:
    """(name → CPU tensor, LoRA config or None) of the model as it is now. With several workers
    every rank must call it (the full state dict is gathered); rank 0's result is the one to keep."""
    from safetensors.torch import _remove_duplicate_names

    lora = _lora_config(model)
    world = getattr(parallel, "world", 1)
    if world > 1:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True,
                                                                  ignore_frozen_params=lora is not None))
        if lora is not None:  # peft's layout: the adapter name dropped, as get_peft_model_state_dict does
            sd = {k.replace(".default.", "."): v for k, v in sd.items() if "lora_" in k}
        else:  # tied weights once, under the name safetensors keeps in one process (the first, sorted);
            # the gathered tensors no longer share storage, so the ties are read from the module
            groups: dict[int, list[str]] = {}
            for n, p in getattr(model, "module", model).named_parameters(remove_duplicate=False):
                groups.setdefault(id(p), []).append(n.replace("_fsdp_wrapped_module.", ""))
            for names in groups.values():
                for n in sorted(names)[1:]:
                    sd.pop(n, None)
        return {k: v.detach().to("cpu").clone().contiguous() for k, v in sd.items()}, lora
    if lora is not None:
        from peft import get_peft_model_state_dict

        sd = get_peft_model_state_dict(model)
    else:
        sd = dict(model.state_dict())
    for names in _remove_duplicate_names(sd).values():  # tied weights (GPT-2's lm_head = wte) once
        for n in names:
            sd.pop(n, None)
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}, lora


def keep_weights(store, folder: str, trial_id: str, step: int, model, *, parallel=None,
                 target_hash: str | None = None) -> str | None:
    """Write the model's weights at `step` to <folder>/checkpoints/<trial_id>/step<step>/ through
    `store` (model.safetensors, then meta.json); returns that folder (None on ranks other than 0)."""
    from safetensors.torch import save

    tensors, lora = kept_tensors(model, parallel)
    if getattr(parallel, "rank", 0) != 0:
        return None
    rel = f"{folder}/{kept_rel(trial_id, step)}" if folder else kept_rel(trial_id, step)
    data = save(tensors, metadata={"format": "pt"})
    store.write_bytes(f"{rel}/model.safetensors", data)
    meta = {"format": KEPT_FORMAT, "trial_id": trial_id, "step": int(step), "lora": lora,
            "target_hash": target_hash, "bytes": len(data), "n_tensors": len(tensors),
            "dtype": str(next(iter(tensors.values())).dtype).replace("torch.", "") if tensors else None}
    store.write_text(f"{rel}/meta.json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return rel


def kept_steps(store, folder: str, trial_id: str) -> list[int]:
    """The steps of a trial whose weights were kept (complete: meta.json written)."""
    base = f"{folder}/{KEPT_DIR}/{trial_id}" if folder else f"{KEPT_DIR}/{trial_id}"
    out = []
    for name in store.listdir(base):
        if name.startswith("step") and name[4:].isdigit() and store.exists(f"{base}/{name}/meta.json"):
            out.append(int(name[4:]))
    return sorted(out)


def read_kept(store, folder: str, trial_id: str, step: int) -> tuple[dict, dict]:
    """(name → tensor, meta) of a kept step."""
    from safetensors.torch import load

    rel = f"{folder}/{kept_rel(trial_id, step)}" if folder else kept_rel(trial_id, step)
    meta = json.loads(store.read_text(f"{rel}/meta.json"))
    if meta.get("format") != KEPT_FORMAT:
        raise ValueError(f"{store.display(rel)}: kept weights of format {meta.get('format')}, not {KEPT_FORMAT}")
    with store.fs.open_input_stream(store.path(f"{rel}/model.safetensors")) as f:
        return load(f.read()), meta


def load_full_weights(model, tensors: dict) -> None:
    """Load a full model's kept tensors; the names left out are tied to ones given (checked)."""
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if unexpected:
        raise ValueError(f"the kept weights hold tensors the model has not: {unexpected[:3]}")
    state = model.state_dict()
    given = {state[k].data_ptr() for k in tensors}
    untied = [k for k in missing if state[k].data_ptr() not in given]
    if untied:
        raise ValueError(f"the kept weights lack {untied[:3]}")
