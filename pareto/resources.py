"""What a multi-worker trial needs from a machine or a Ray cluster, checked before it waits forever.

A trial with `resources.workers_per_trial: N` and `unlearn.parallel: ddp | fsdp` runs N
torch.distributed workers (Ray Train). Each worker gets cpus_per_trial/N CPUs (fractions are
fine) and, on GPUs, one whole GPU (gpus_per_trial = N; NCCL cannot put two ranks of one trial on
one GPU), or no GPU at all (gpus_per_trial 0: CPU workers talking over gloo). The spec itself is
checked here too (`check_parallel`, called by pareto.spec), then against what is there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from pareto._registry import did_you_mean

if TYPE_CHECKING:
    from pareto.spec import SweepSpec

__all__ = ["PARALLEL_MODES", "check_parallel", "parallel_resource_problems"]


def parallel_resource_problems(spec: SweepSpec, cpus: float, gpus: float, where: str) -> list[str]:
    """Why one multi-worker trial of `spec` cannot be placed on `cpus` CPUs and `gpus` GPUs, each
    message naming the fix; [] when it can, and always [] for a one-process trial
    (resources.workers_per_trial unset), which the existing single-trial checks cover.

    `where` names the place in the messages: "this machine", or "the Ray cluster at ADDRESS".
    It is called by `pareto.preflight.preflight` with this machine's CPUs and GPUs (when no
    cluster address is given), and by `_check_resources` with `ray.cluster_resources()` once
    connected. For a parallel trial it covers both the GPU and the CPU check, so the caller can use
    it instead of its own two for such a trial. It only compares totals: N workers of one GPU each
    may span nodes (Ray Train places them); whether an autoscaling cluster will add the GPUs
    later is the caller's call.
    """
    r = spec.resources
    n = r.workers_per_trial
    if n is None or not isinstance(n, int) or n < 1:
        return []
    out = []
    if r.gpus_per_trial > 0 and n > gpus:
        have = int(gpus)
        fit = (f"--set resources.workers_per_trial={have} --set resources.gpus_per_trial={have} (one GPU per worker; "
               f"unlearn.batch_size must then be a multiple of {have}), or " if have >= 1 else "")
        out.append(f"resources.workers_per_trial is {n} with one GPU per worker (gpus_per_trial {r.gpus_per_trial:g}) "
                   f"but {where} has {gpus:g} GPU(s). Run on a machine or cluster with {n} GPUs (--address), "
                   f"{fit}--set resources.gpus_per_trial=0 for {n} CPU workers (gloo).")
    if r.cpus_per_trial > cpus:
        share = r.cpus_per_trial / n
        fix = (f"Lower it with --set resources.cpus_per_trial={cpus:g} (each worker then gets {cpus / n:g} CPU; "
               f"fractions are fine)" if cpus > 0 else "Run it where there are CPUs (--address)")
        out.append(f"resources.cpus_per_trial is {r.cpus_per_trial:g} ({n} worker(s) × {share:g} CPU) but {where} has "
                   f"{cpus:g} CPU(s). {fix}.")
    return out


PARALLEL_MODES = ("ddp", "fsdp")


def check_parallel(spec: SweepSpec, add: Callable[[tuple, str], None], reported: Sequence[str] = ()) -> None:
    """Multi-worker trials: unlearn.parallel (ddp | fsdp) with resources.workers_per_trial workers,
    each with one GPU (NCCL) or none (gloo), and a batch that splits evenly over the workers, from the
    spec alone (`reported`: the spec's problems so far; a workers_per_trial that is not an integer is
    named there already)."""
    u, r = spec.unlearn, spec.resources
    n = r.workers_per_trial
    if u.parallel is not None and u.parallel not in PARALLEL_MODES:
        hint = did_you_mean(u.parallel, list(PARALLEL_MODES))
        add(("unlearn", "parallel"), f"unknown parallel mode {u.parallel!r}.{hint} "
                                     "Available: ddp (each worker holds the whole model), fsdp (the model "
                                     "sharded over the workers); leave it out for one process per trial")
    if n is None:
        given = any(p.startswith("resources.workers_per_trial") for p in reported)  # not an integer
        if u.parallel is not None and not given:
            add(("unlearn", "parallel"), f"unlearn.parallel: {u.parallel} needs resources.workers_per_trial, "
                                         "the torch.distributed workers of one trial, e.g. "
                                         "resources.workers_per_trial: 2 (or drop unlearn.parallel: one "
                                         "process per trial)")
        return
    if n < 1:
        add(("resources", "workers_per_trial"), f"workers_per_trial must be an integer ≥ 1, got {n}")
        return
    if n > 1 and u.parallel is None:
        add(("resources", "workers_per_trial"), f"resources.workers_per_trial: {n} needs unlearn.parallel to "
                                                "say how the workers share the model, e.g. unlearn.parallel: "
                                                "ddp (each holds the whole model) or fsdp (shards it)")
    if n > 1 and spec.eval.robustness:
        add(("eval", "robustness"), f"eval.robustness attacks copies of the model in one process; a trial of {n} "
                                    "workers (resources.workers_per_trial) cannot run it yet: drop the section, or "
                                    "run these trials in one process (leave out workers_per_trial and unlearn.parallel)")
    if r.gpus_per_trial > 0 and r.gpus_per_trial != n:
        add(("resources", "gpus_per_trial"), f"gpus_per_trial is {r.gpus_per_trial:g} with {n} worker(s) per "
                                             f"trial: set resources.gpus_per_trial: {n} (one GPU per worker; "
                                             "NCCL cannot put two ranks of a trial on one GPU) or 0 (CPU "
                                             "workers, gloo)")
    accum = u.grad_accum if isinstance(u.grad_accum, int) and u.grad_accum >= 1 else 1
    for key in ("batch_size", "retain_batch_size"):
        b = getattr(u, key)
        if b is None or b < 1 or accum > b:  # reported above (batch_size, grad_accum)
            continue
        if b % n:
            fit = -(-b // n) * n
            add(("unlearn", key), f"{key} {b} does not split evenly over resources.workers_per_trial {n} "
                                  f"(each worker takes {key}/{n} examples of every batch): set unlearn.{key} "
                                  f"to a multiple of {n}, e.g. {max(fit, n * accum)}")
        elif b // n < accum:
            add(("unlearn", key), f"each of the {n} workers gets {b // n} example(s) of {key} {b}, fewer "
                                  f"than unlearn.grad_accum {accum} micro-batches: raise unlearn.{key} to "
                                  f"at least {n * accum} or lower unlearn.grad_accum to {b // n}")
