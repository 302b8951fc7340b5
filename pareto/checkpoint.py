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
