"""One Tune trial on several workers: a Ray Train TorchTrainer launched from the trial.

With `resources.workers_per_trial: N` and `unlearn.parallel: ddp | fsdp`, the Tune trial is a
light driver (no CPU of its own) that starts N Ray Train workers — one GPU each (NCCL), or CPU
processes talking over gloo — with `cpus_per_trial / N` CPUs each. Every worker runs the same
`run_trial` as a one-process trial (trainables/unlearn.py) with the `parallel` strategy of
pareto/core/parallel.py: each takes its slice of the global batch, and every number a report
carries is already reduced over the ranks, so rank 0's reports are the trial's. Ray Train's
`TuneReportCallback` hands them to Tune, so the sweep collects them like any trial's.

Checkpoints (`storage.checkpoints: last`): every rank writes its shard with
`torch.distributed.checkpoint` and reports it; Ray Train merges the ranks' directories into one
checkpoint in the trial's storage. When a worker dies, Ray Train restarts the worker group
(`resources.max_failures` times) and every rank resumes from that checkpoint: the steps since the
last evaluation are taken again, nothing else is lost.
"""

from __future__ import annotations

import shutil


def run_on_workers(setup: dict, point: dict, name: str) -> None:
    """Run one trial on `resources.workers_per_trial` Ray Train workers (inside a Tune trial).
    `name`: the Train run's name in `setup["train_storage"]`, unique per trial of a sweep run."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    r = setup["spec"]["resources"]
    n = int(r["workers_per_trial"])
    gpu = float(r["gpus_per_trial"]) > 0
    per_worker = {"CPU": float(r["cpus_per_trial"]) / n, **({"GPU": 1.0} if gpu else {})}
    trainer = TorchTrainer(
        worker_loop,
        train_loop_config={"setup": setup, "point": point},
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=n, use_gpu=gpu, resources_per_worker=per_worker),
        run_config=RunConfig(name=name, storage_path=setup["train_storage"], callbacks=[TuneReportCallback()],
                             failure_config=FailureConfig(max_failures=int(r["max_failures"])),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
    )
    trainer.fit()


def worker_loop(config: dict) -> None:
    """One rank of the trial: `run_trial` with the spec's parallel strategy, reporting to Ray Train
    (rank 0's rows; every rank's checkpoint shard), resuming from Ray Train's latest checkpoint."""
    import ray
    import ray.train

    from pareto.core.parallel import strategy
    from trainables.unlearn import local_target, run_trial

    setup, point = config["setup"], config["point"]
    setup = {**setup, "target_dir": local_target(setup)}
    rank = ray.train.get_context().get_world_rank()
    if float(setup["spec"]["resources"]["gpus_per_trial"]) > 0:  # this worker's GPU, as Ray Train assigned it
        import torch
        from ray.train.torch import get_device

        torch.cuda.set_device(get_device())
    node = ray.get_runtime_context().get_node_id()
    parallel = strategy(setup["spec"]["unlearn"]["parallel"])

    def report(row: dict, checkpoint_dir: str | None = None) -> None:
        saved = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report({**row, "node_id": node} if rank == 0 else {}, checkpoint=saved)
        if checkpoint_dir:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)

    restored = ray.train.get_checkpoint()  # set when Ray Train restarted the workers after a failure
    if restored is None:
        run_trial(setup, point, report, parallel=parallel)
    else:
        with restored.as_directory() as directory:
            run_trial(setup, point, report, restore_dir=directory, parallel=parallel)
