"""What a multi-worker trial needs from a machine or a Ray cluster, checked before it waits forever.

A trial with `resources.workers_per_trial: N` and `unlearn.parallel: ddp | fsdp` runs N
torch.distributed workers (Ray Train). Each worker gets cpus_per_trial/N CPUs (fractions are
fine) and, on GPUs, one whole GPU (gpus_per_trial = N; NCCL cannot put two ranks of one trial on
one GPU), or no GPU at all (gpus_per_trial 0: CPU workers talking over gloo). The spec itself is
checked in pareto.spec (`_check_parallel`); this module checks it against what is there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pareto.spec import SweepSpec

__all__ = ["parallel_resource_problems"]


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
