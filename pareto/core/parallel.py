"""How one trial's step is spread over processes: one process, DDP or FSDP2 (`unlearn.parallel`).

The engine (pareto/core/engine.py) asks a strategy for the few things that differ:

- `shard(batch)`: this rank's slice of the global batch (rank r of N takes examples
  [r·B/N, (r+1)·B/N)), so N ranks together see exactly the single-process batch;
- `all_sum(values)`: a float64 sum over ranks of a few numbers — the normaliser of a loss (e.g.
  the scored tokens of the whole global batch), the weighted loss values, and under FSDP the
  Gram matrix's three dots (one all-reduce of 3 numbers, so every combiner gets the same
  weights on every rank);
- `local(t)`: the part of a parameter, gradient or optimizer state this rank holds (a DTensor's
  local shard under FSDP; the tensor itself otherwise);
- `grad_for(p, view)`: what to put in `p.grad` so autograd (or FSDP's reduce-scatter)
  accumulates into the engine's flat buffer in place;
- `reduce(flat)`: what makes a rank's buffer the global gradient — DDP all-reduces (sums) the
  flat buffer once per task; FSDP has already reduce-scattered (summed: the divide factor is
  set to 1) into the local shard during backward; one process does nothing.

Memory per rank: DDP holds the whole model, both gradient buffers and the optimizer state, as
one process does. FSDP holds 1/N of each (plus the one unit being all-gathered for compute).

"DDP" is data parallelism with replicated parameters and gradients summed by one all-reduce of
each task's flat gradient buffer after its backward — what torch's DistributedDataParallel
computes, done on the engine's two buffers (the wrapper reduces into `.grad` in its own
buckets and averages, which the two-task step would have to undo).
"""

from __future__ import annotations

import os
from typing import Sequence

import torch

STRATEGIES = ("ddp", "fsdp")


class Single:
    """One process (the default): every hook is the identity."""

    name = "single"
    world, rank = 1, 0
    sharded = False

    def shard(self, batch: dict) -> dict:
        return batch

    def all_sum(self, values: Sequence[float]) -> list[float]:
        return [float(v) for v in values]

    def local(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def grad_for(self, p: torch.nn.Parameter, view: torch.Tensor) -> torch.Tensor:
        return view

    def reduce(self, flat: torch.Tensor) -> None:
        pass

    def wrap(self, model):
        return model

    def gather_objects(self, obj) -> list:
        return [obj]

    def barrier(self) -> None:
        pass


SINGLE = Single()


class _Distributed(Single):
    """N ranks of an initialised torch.distributed process group (gloo on CPU, NCCL on GPUs)."""

    def __init__(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError(f"unlearn.parallel {self.name}: torch.distributed is not initialised; "
                               "run the trial through `pareto sweep` (Ray Train starts the workers)")
        self.dist = dist
        self.world, self.rank = dist.get_world_size(), dist.get_rank()

    def shard(self, batch: dict) -> dict:
        n = _examples(batch)
        if n % self.world:
            raise ValueError(f"a batch of {n} examples does not split over {self.world} workers; make "
                             "unlearn.batch_size (and retain_batch_size) a multiple of resources.workers_per_trial")
        a, b = self.rank * n // self.world, (self.rank + 1) * n // self.world
        return {k: (v[a:b] if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == n else v)
                for k, v in batch.items()}

    def all_sum(self, values: Sequence[float]) -> list[float]:
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._device())
        self.dist.all_reduce(t)
        return t.tolist()

    def _device(self) -> torch.device:
        if self.dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def gather_objects(self, obj) -> list:
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        self.dist.barrier()


class DDP(_Distributed):
    """Replicated parameters; each task's flat gradient summed over ranks by one all-reduce."""

    name = "ddp"

    def reduce(self, flat: torch.Tensor) -> None:
        self.dist.all_reduce(flat)

    def wrap(self, model):
        # every rank starts from rank 0's parameters (they are equal already when loaded from one
        # target; this makes it so for any model)
        with torch.no_grad():
            for t in list(model.parameters()) + list(model.buffers()):
                self.dist.broadcast(t.data, src=0)
        return model


class FSDP(_Distributed):
    """FSDP2 (`fully_shard`): parameters, gradients and optimizer state sharded on dim 0.

    Each transformer block (the model's `_no_split_modules`) is one unit, the root the rest
    (embeddings, a tied LM head, the final norm). Gradients are reduce-scattered as sums (divide
    factor 1) straight into the engine's flat buffer of local shards."""

    name = "fsdp"
    sharded = True

    def local(self, t: torch.Tensor) -> torch.Tensor:
        from torch.distributed.tensor import DTensor

        return t.to_local() if isinstance(t, DTensor) else t

    def grad_for(self, p, view):
        from torch.distributed.tensor import DTensor

        if not isinstance(p, DTensor):
            return view
        return DTensor.from_local(view, p.device_mesh, p.placements, shape=p.shape, stride=p.stride(),
                                  run_check=False)

    def wrap(self, model):
        from torch.distributed.fsdp import fully_shard

        blocks = fsdp_blocks(model)
        for m in blocks:
            fully_shard(m)
        # the root too frees its gathered parameters after each forward: the engine's measurements
        # (AutoLR's probes, the after-step losses) move the shards between forwards without a backward
        fully_shard(model, reshard_after_forward=True)
        for m in [*blocks, model]:
            m.set_gradient_divide_factor(1.0)  # sum over ranks: the engine weights by the global normaliser
            m.set_force_sum_reduction_for_comms(True)  # a plain SUM (gloo has no pre-multiplied sum)
        return model


def fsdp_blocks(model) -> list:
    """The modules FSDP wraps one by one: those whose class the transformers model names in
    `_no_split_modules` (its decoder blocks). Raises ValueError for a model without them."""
    names = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or ())
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    if not blocks:
        raise ValueError(f"unlearn.parallel fsdp: {type(model).__name__} names no transformer blocks "
                         "(`_no_split_modules`) for FSDP to shard; use unlearn.parallel: ddp")
    return blocks


def fsdp_problem(config_json) -> str | None:
    """Why FSDP cannot shard the causal LM that `config_json` describes (None if it can): its
    transformers class names no blocks (`_no_split_modules`), or transformers has no such class."""
    import json

    import transformers

    try:
        config = transformers.AutoConfig.for_model(**json.loads(open(config_json).read()))
        cls = transformers.MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except (KeyError, ValueError, OSError) as exc:
        return (f"FSDP needs to know the model's transformer blocks, and {config_json} names no causal LM "
                f"class transformers has ({type(exc).__name__}: {exc}); use unlearn.parallel: ddp")
    if not getattr(cls, "_no_split_modules", None):
        return (f"{cls.__name__} names no transformer blocks (`_no_split_modules`) for FSDP to shard one by "
                "one; use unlearn.parallel: ddp")
    return None


def _examples(batch: dict) -> int:
    return int(next(v for v in batch.values() if isinstance(v, torch.Tensor)).shape[0])


def strategy(name: str | None):
    """The strategy of `unlearn.parallel` (None: one process) in an initialised process group."""
    if not name:
        return SINGLE
    if name not in STRATEGIES:
        raise ValueError(f"unlearn.parallel must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return {"ddp": DDP, "fsdp": FSDP}[name]()


def worker_device(base: str) -> str:
    """This rank's device: its current CUDA device on GPUs (the launcher sets it: Ray Train's
    `get_device()` in trainables/distributed.py, LOCAL_RANK elsewhere), else the CPU."""
    if base.startswith("cuda"):
        if "LOCAL_RANK" in os.environ and torch.cuda.device_count() > 1 and not torch.cuda.is_initialized():
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
        return f"cuda:{torch.cuda.current_device()}"
    return base
