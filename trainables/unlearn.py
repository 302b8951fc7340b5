"""The unlearning trial, top to bottom: model → data → components → step loop → evaluation.

The target's manifest says which task it is: a causal LM on question/answer pairs or texts
(TOFU-shaped, MUSE-News; `pareto.lm.LM_TASK`) or an image classifier (paper App. C;
`pareto.vision.task.CLASSIFIER_TASK`). `open_target` gives the trial the same few things either
way — the model, the task whose losses the engine and the forget objective differentiate, the
forget/retain batch streams and the evaluation splits — and everything after it is shared.

`run_trial` is a plain function that calls `report(row)` at every evaluation (every
`eval.every` steps, and at the end): each report carries the step telemetry since the last one
(`step_rows`), the metrics and per-item records of the evaluation, and `final: True` on the
last. It knows nothing of Ray, so tests call it directly; `trainable` is the Ray Tune function
trainable around it (`tune.report`), whose reports a scheduler such as ASHA may act on.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from pareto import checkpoint
from pareto.core.combiners import build_combiner
from pareto.core.engine import Divergence, UnlearnEngine, split_batch
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.core.parallel import SINGLE, worker_device
from pareto.data.encode import encode_rows
from pareto.data.qa import Batches, to_device
from pareto.lm import LM_TASK
from pareto.memory import apply_lora, enable_checkpointing, estimate_bytes, make_deterministic, out_of_memory_message
from pareto.metrics import METRICS, EvalContext, EvalSettings, eval_settings, evaluate
from pareto.models.embedded import load_target
from pareto.spec import total_steps


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass
class Trial:
    """One trial, set up: what `run_trial` steps and `pareto probe` replays (both through `start_trial`)."""

    target: "Target"
    model: Any
    forget: Any = None  # the batch streams and the engine (None for the No-unlearn baseline)
    retain: Any = None
    engine: Any = None
    batch: Callable | None = None  # stream → this rank's next batch on the device (micro-batches if asked)


def trial_device(unlearn: dict, parallel=SINGLE) -> str:
    """The trial's device: unlearn.device, `auto` meaning cuda when there is one; a worker's own GPU."""
    device = unlearn["device"] if unlearn["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    return worker_device(device) if parallel.world > 1 else device


def start_trial(setup: dict, point: dict, *, parallel=SINGLE, device: str | None = None) -> Trial:
    """Everything before the first step, in one place so a trial and its replay cannot drift: threads
    (the trial's CPU share per worker unless set), seeds, determinism, device, target, model (with
    its memory options and parallel wrapping) and the components with their batch streams."""
    spec = setup["spec"]
    unlearn, resources = spec["unlearn"], spec["resources"]
    seed = int(point["seed"])
    share = float(resources["cpus_per_trial"]) / max(1, int(resources.get("workers_per_trial") or 1))
    torch.set_num_threads(int(unlearn["threads"] or max(1, int(share))))
    torch.manual_seed(seed), random.seed(seed), np.random.seed(seed)
    if unlearn.get("deterministic"):
        make_deterministic()
    device = device or trial_device(unlearn, parallel)
    target = open_target(setup)
    unlearning = not point.get("baseline")
    model = prepare_model(target, unlearn, device, unlearning=unlearning, parallel=parallel)
    trial = Trial(target, model)
    if unlearning:
        trial.forget, trial.retain, trial.engine = build_components(target, model, unlearn, point, device, parallel)
        trial.batch = batch_fn(unlearn, device, parallel)
    return trial


def run_trial(setup: dict, point: dict, report: Callable[..., None], restore_dir: str | None = None,
              parallel=SINGLE) -> dict:
    """Run one trial of a sweep. `setup`: the sweep-wide settings; `point`: this trial's grid point.

    With `storage.checkpoints: last`, each evaluation's report also carries a checkpoint directory
    (`report(row, checkpoint_dir)`); `restore_dir` continues a retried trial from one. With several
    workers (`parallel`), every rank runs this function and reports (the same rows: every number is
    reduced over ranks); each rank's checkpoint directory holds its shard.

    With `eval.keep_checkpoints: true`, an unlearning trial also writes its weights at every
    evaluation into the results, `<setup["results_dir"]>/checkpoints/<trial id>/step<K>/`
    (`pareto.checkpoint.keep_weights`, which says why there and not through Tune's checkpoints)."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    unlearn, ev = setup["spec"]["unlearn"], setup["spec"]["eval"]

    # 1–4. Threads, seeds, device; the target (shared, read-only, cached by content hash), its task,
    #      its data; the batch streams and the engine with its components, by registered name.
    device = trial_device(unlearn, parallel)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    trial = start_trial(setup, point, parallel=parallel, device=device)
    target, model, engine = trial.target, trial.model, trial.engine

    final = {"status": "ok", "steps_done": 0, "device": device, "dtype": unlearn["dtype"],
             "workers": parallel.world, "parallel": unlearn.get("parallel")}
    step_rows: list[dict] = []
    keep = kept_weights_writer(setup, point, model, parallel) if engine is not None else None

    def evaluate_now(at_step: int) -> dict:
        """Metrics of the model as it is now, the per-item records, and the step rows since the last report."""
        ctx = EvalContext(model, target.tokenizer, target.eval_splits, target.settings,
                          reference=setup.get("reference", {}))
        values = evaluate(ctx, ev["metrics"])
        out = {"evaluated": True, "eval_step": at_step, "step_rows": step_rows[:], "wall_s": time.perf_counter() - t0,
               **{name: v.value for name, v in values.items()},
               **{f"{name}_abs": abs(v.value) for name, v in values.items() if METRICS.get(name).direction == "zero"},
               "metric_settings": json.dumps({name: v.settings for name, v in values.items()}, sort_keys=True),
               "items": [{"metric": name, **asdict(item)} for name, v in values.items() for item in v.items]}
        step_rows.clear()
        return out

    if engine is not None:
        forget, retain, optimizer, batch = trial.forget, trial.retain, engine.optimizer, trial.batch
        final["grad_buffer_bytes"] = engine.gradient_buffer_bytes()

        start = 0
        if restore_dir is not None:  # a retried trial continues from its last checkpoint, exactly
            start = checkpoint.load(restore_dir, model=model, optimizer=optimizer, engine=engine,
                                    forget=forget, retain=retain)
            final["steps_done"] = final["resumed_from_step"] = start

        def save_state(steps_done: int) -> str | None:
            if setup["spec"]["storage"]["checkpoints"] != "last":
                return None
            return str(checkpoint.save(tempfile.mkdtemp(prefix="pareto-ckpt-"), model=model, optimizer=optimizer,
                                       engine=engine, forget=forget, retain=retain, steps_done=steps_done))

        # 5. The step loop: one telemetry row per step; an evaluation every `eval.every` steps.
        every, eval_every = unlearn["measure_after_every"], ev["every"]
        n_steps = total_steps(unlearn, len(forget.examples))  # `steps`, or `epochs` over the forget set
        try:
            for step in range(start, n_steps):
                row = engine.step(batch(retain), batch(forget), measure_after=bool(every) and step % every == 0)
                step_rows.append(row)
                final["steps_done"] = step + 1
                if eval_every and (step + 1) % eval_every == 0 and step + 1 < n_steps:
                    row, saved = evaluate_now(step + 1), save_state(step + 1)
                    if keep:
                        keep(step + 1)
                    if saved:
                        report(row, saved)
                    else:
                        report(row)
        except Divergence as exc:
            final.update(status="diverged", diverged_step=exc.step, error=str(exc))
        except torch.OutOfMemoryError as exc:  # says what the trial needed; the sweep goes on
            estimate = estimate_bytes(model, unlearn["optimizer"], engine._flat_r.dtype)
            final.update(status="failed", error=out_of_memory_message(exc, estimate, device))
        final["final_lr"] = engine.lr
        final["first_step_changed_frac"] = engine.first_step_changed_frac  # kept by a checkpoint

    # 6. The last evaluation (a diverged trial has none: analysis lists it as excluded), and the record.
    last = {"step_rows": step_rows[:], "evaluated": False}
    if final["status"] == "ok":
        try:
            last = evaluate_now(final["steps_done"])
        except Exception as exc:  # a metric that cannot be computed fails the trial, not its step telemetry
            final.update(status="failed", error=f"evaluation at step {final['steps_done']}: {type(exc).__name__}: {exc}")
        if keep and last.get("evaluated"):
            keep(final["steps_done"])
        if ev.get("robustness") and last.get("evaluated"):  # attacks on copies of the final model, once
            try:
                add_robustness(last, setup, target, model, parallel)
            except Exception as exc:
                final.update(status="failed", error=f"eval.robustness: {type(exc).__name__}: {exc}")
    step_rows.clear()
    last.update(final, final=True, wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - cpu0)
    last["gpu_s"] = last["wall_s"] * float(setup["spec"]["resources"]["gpus_per_trial"]) if device.startswith("cuda") else 0.0
    if device.startswith("cuda"):
        last["gpu_peak_bytes"] = torch.cuda.max_memory_allocated()
    report(last)
    return last


def add_robustness(row: dict, setup: dict, target: "Target", model, parallel=SINGLE) -> None:
    """eval.robustness's columns (pareto.metrics.robustness) into the final report `row`: its values,
    their settings in `metric_settings` and their per-item records; `model` is not modified."""
    from pareto.metrics.robustness import robustness_metrics

    if parallel.world > 1:
        raise ValueError("eval.robustness runs in one process; a trial of several workers cannot use it yet")
    spec = setup["spec"]
    values = robustness_metrics(model, target.tokenizer, target.eval_splits, target.settings, spec["eval"]["metrics"],
                                spec["eval"]["robustness"], spec["unlearn"]["batch_size"], setup.get("reference", {}))
    settings = json.loads(row["metric_settings"])
    row.update({name: v.value for name, v in values.items()},
               metric_settings=json.dumps({**settings, **{n: v.settings for n, v in values.items()}}, sort_keys=True))
    row["items"] = row["items"] + [{"metric": n, **asdict(item)} for n, v in values.items() for item in v.items]


def kept_weights_writer(setup: dict, point: dict, model, parallel=SINGLE) -> Callable[[int], None] | None:
    """`keep(step)` writing the model's weights into the results (eval.keep_checkpoints), else None."""
    if not setup["spec"]["eval"].get("keep_checkpoints"):
        return None
    from pareto.results.store import Store

    if not setup.get("results_dir"):
        raise ValueError("eval.keep_checkpoints: the trial was not told where the results are (setup['results_dir'])")
    store, tid = Store(setup["results_dir"]), f"t{int(point['index']):03d}"
    manifest = Path(setup["target_dir"]) / "manifest.json"
    target_hash = json.loads(manifest.read_text()).get("hash") if manifest.is_file() else None

    def keep(step: int) -> None:
        checkpoint.keep_weights(store, "", tid, step, model, parallel=parallel, target_hash=target_hash)

    return keep


def results_dir_from_tune() -> str:
    """The sweep's results folder, from inside a Tune trial: Tune's storage_path is `<folder>/.ray`
    (pareto.sweep._fit puts Tune's state beside the results), on Tune's own filesystem, which every
    node that reports checkpoints can write."""
    import posixpath

    import pyarrow.fs as pafs
    from ray import tune

    storage = tune.get_context().get_storage()
    fs, path = storage.storage_filesystem, storage.storage_fs_path.rstrip("/")
    if posixpath.basename(path) != ".ray":
        raise ValueError(f"eval.keep_checkpoints: Tune's storage {path} is not <results folder>/.ray")
    folder = posixpath.dirname(path)
    if isinstance(fs, pafs.LocalFileSystem):
        return folder
    scheme = {"gcs": "gs"}.get(fs.type_name, fs.type_name)
    return f"{scheme}://{folder}"


def prepare_model(target: "Target", unlearn: dict, device: str, unlearning: bool = True, parallel=SINGLE):
    """The target's model on the trial's device and dtype, with the memory options for real models
    (pareto/memory.py): gradient checkpointing and LoRA adapters (not for the No-unlearn baseline),
    then wrapped for the trial's workers (FSDP shards it; DDP makes every rank start equal)."""
    model = target.model
    model.to(device=device, dtype=getattr(torch, unlearn["dtype"]))
    if unlearning:
        if unlearn.get("gradient_checkpointing"):
            enable_checkpointing(model)
        if unlearn.get("lora"):  # adapters only are trained: the gradients, Gram and AutoLR live on them
            model = apply_lora(model, **unlearn["lora"])
    return parallel.wrap(model)


def build_components(target: "Target", model, unlearn: dict, point: dict, device: str, parallel=SINGLE):
    """A trial's forget and retain streams (each seeded: QA pairs, windows of texts, or images)
    and its engine with the point's combiner, forget objective, lr rule and optimizer. Every rank
    draws the same global batches; `batch_fn` gives each its slice."""
    seed = int(point["seed"])
    forget, retain = target.streams(unlearn["batch_size"], unlearn["retain_batch_size"] or unlearn["batch_size"], seed)
    combiner = build_combiner(point["combiner"]["name"], seed=seed, **point["combiner"]["params"])
    objective = OBJECTIVES.build(point["objective"]["name"], **point["objective"]["params"])
    # L_F through the task's losses (answer tokens, or image labels); an LM's also gets the tokenizer
    # and example length, so objectives that score another answer (idknll, idkdpo) encode it as the data
    objective.task = (replace(target.task, tokenizer=target.tokenizer, max_length=target.settings.max_length or 128)
                      if target.tokenizer is not None else target.task)
    lr_rule = LR_RULES.build(point["lr_rule"]["name"], **point["lr_rule"]["params"])
    optimizer = build_optimizer(unlearn["optimizer"], [p for p in model.parameters() if p.requires_grad],
                                lr=point["lr"], **unlearn["optimizer_args"])
    engine = UnlearnEngine(model, combiner, objective, lr_rule, optimizer, lr=point["lr"], retain_loss=target.task.loss,
                           autocast=getattr(torch, unlearn["autocast"]) if unlearn.get("autocast") else None,
                           grad_dtype=torch.float32 if unlearn.get("grad_dtype") == "float32" else None,
                           parallel=parallel)
    prepare_objective(engine, forget, batch_fn(unlearn, device, parallel))
    return forget, retain, engine


def prepare_objective(engine, forget, batch: Callable) -> None:
    """The forget objective's one-off preparation (NPO: the reference log-probabilities) on the
    batches the trial will draw — each rank's slice, its micro-batches — in eval mode and under the
    trial's autocast: the same computation as the step's own forward, so at step 0, with nothing
    changed, NPO reads exactly 2/β·ln 2 (a different batch shape alone moves bf16 log-probs by
    ~1e-4 nat). The stream is drawn until every forget example has been seen, then rewound; each
    example keeps the value of its first batch, and the ranks' tables are merged, so every rank
    holds all of them (as one process would)."""
    from pareto.checkpoint import batches_state, load_batches_state
    from pareto.core.engine import as_micro_batches

    from pareto.core.objectives import ForgetObjective

    par, objective = engine.parallel, engine.objective
    if type(objective).prepare is ForgetObjective.prepare:  # nothing to prepare (GA)
        return
    saved, seen, draws = batches_state(forget), set(), []
    while len(seen) < len(forget.examples):  # the global batches: every rank draws the same ones
        drawn = forget.next()
        seen.update(drawn["index"].tolist())
        draws.append(batch.piece(drawn))
    load_batches_state(forget, saved)
    first: dict[str, dict] = {}  # state attribute → example → (draw, value)
    with engine.amp():
        for k, drawn in enumerate(draws):
            for b in as_micro_batches(drawn):
                for key in component_state_dicts(objective):
                    setattr(objective, key, {})
                objective.prepare(engine.model, [b])
                for key, table in component_state_dicts(objective).items():
                    for i, v in table.items():
                        first.setdefault(key, {}).setdefault(i, (k, v))
    for key in first:
        merged: dict = {}
        for part in par.gather_objects(first[key]):
            for i, (k, v) in part.items():
                if i not in merged or k < merged[i][0]:
                    merged[i] = (k, v)
        setattr(objective, key, {i: v for i, (k, v) in merged.items()})


def component_state_dicts(component) -> dict:
    """The dict-valued state of a component (NPO's `_ref`; not a setting: no __init__ argument), what
    `prepare_objective` merges over ranks."""
    import dataclasses

    settings = {f.name for f in dataclasses.fields(component) if f.init} if dataclasses.is_dataclass(component) else set()
    return {k: v for k, v in vars(component).items() if k not in settings and isinstance(v, dict)}


def batch_fn(unlearn: dict, device: str, parallel=SINGLE) -> Callable:
    """stream → this rank's slice of its next (global) batch on the device, split into `grad_accum`
    micro-batches when asked."""
    accum = int(unlearn.get("grad_accum") or 1)

    def piece(drawn: dict):
        b = to_device(parallel.shard(drawn), device)
        return split_batch(b, accum) if accum > 1 else b

    def batch(stream):
        return piece(stream.next())

    batch.piece = piece  # a drawn global batch → this rank's part (prepare_objective)

    return batch


@dataclass
class Target:
    """What a trial needs of its target, whatever the task."""

    model: Any
    task: Any  # loss / logprob / nll_mean of a batch (pareto.core.objectives._base.Task)
    tokenizer: Any  # None for an image classifier
    eval_splits: dict  # split name → rows (QA pairs, texts) or an ImageSet
    settings: EvalSettings
    streams: Callable[[int, int, int], tuple]  # (forget batch, retain batch, seed) → (forget, retain) streams


def open_target(setup: dict) -> Target:
    """The target of `setup["target_dir"]`, by its manifest's kind (vision, or a language model)."""
    kind = json.loads((Path(setup["target_dir"]) / "manifest.json").read_text()).get("kind")
    return (vision_target if kind == "vision" else lm_target)(setup)


def lm_target(setup: dict) -> Target:
    """A causal LM: QA pairs or texts from forget.jsonl / retain.jsonl, scored on answer tokens."""
    ev = setup["spec"]["eval"]
    model, tokenizer, manifest = load_target(setup["target_dir"])
    forget_rows = read_jsonl(Path(setup["target_dir"]) / "forget.jsonl")
    retain_rows = read_jsonl(Path(setup["target_dir"]) / "retain.jsonl")
    extra = dict(setup.get("eval_splits", {}))
    # eval.retain_items of the retain rows, evenly spread; of the source's own retain split where it has
    # one (TOFU: the rows with perturbed answers, its retain_perturbed)
    scored = extra.pop("retain", retain_rows)
    eval_retain = scored[:: max(1, len(scored) // ev["retain_items"])][: ev["retain_items"]]
    # the prompt template, BOS and example length the target was trained with (its manifest)
    settings = eval_settings(manifest, max_new_tokens=ev["max_new_tokens"], batch_size=ev["batch_size"],
                             privleak_tokens=ev.get("privleak_tokens"))

    def streams(batch_size: int, retain_batch_size: int, seed: int):
        encode = lambda rows: encode_rows(tokenizer, rows, max_length=settings.max_length or 128,  # noqa: E731
                                          template=settings.template, add_bos=settings.add_bos)
        return (Batches(encode(forget_rows), batch_size, tokenizer.pad_token_id, seed),
                Batches(encode(retain_rows), retain_batch_size, tokenizer.pad_token_id, seed + 1))

    splits = {"forget": forget_rows, "retain": eval_retain, **extra}
    return Target(model, LM_TASK, tokenizer, splits, settings, streams)


def vision_target(setup: dict) -> Target:
    """An image classifier (paper App. C): forget = N images of one class, retain = the other classes'
    train images (`eval.retain_items` of them evenly spread are scored), and both test subsets."""
    from pareto.vision.data import ImageBatches
    from pareto.vision.task import ClassifierTask
    from pareto.vision.train import load_vision_target, spread

    ev = setup["spec"]["eval"]
    model, splits, _ = load_vision_target(setup["target_dir"])

    def streams(batch_size: int, retain_batch_size: int, seed: int):
        return ImageBatches(splits["forget"], batch_size, seed), ImageBatches(splits["retain"], retain_batch_size, seed + 1)

    retain = splits["retain"]
    eval_splits = {**splits, "retain": retain.subset(spread(len(retain), ev["retain_items"]))}
    task = ClassifierTask(batchnorm=setup["spec"]["unlearn"].get("batchnorm", "batch"))  # BatchNorm while unlearning
    return Target(model, task, None, eval_splits, EvalSettings(batch_size=ev["batch_size"]), streams)


def trainable(config: dict, setup: dict) -> None:
    """Ray Tune function trainable: `tune.with_parameters(trainable, setup=...)`. A trial of
    several workers (resources.workers_per_trial) is run by Ray Train (trainables/distributed.py).

    On a node that does not have the target (a cluster without a shared cache), it is unpacked
    once from the archive the driver put in Ray's object store. Every report names the node."""
    import ray
    from ray import tune

    if setup["spec"]["resources"].get("workers_per_trial"):  # one trial, several workers: Ray Train
        from trainables.distributed import run_on_workers

        if setup["spec"]["eval"].get("keep_checkpoints") and not setup.get("results_dir"):
            setup = {**setup, "results_dir": results_dir_from_tune()}
        return run_on_workers(setup, config["point"], f"{setup.get('run_name', 'run')}-p{config['point']['index']:04d}")
    setup = {**setup, "target_dir": local_target(setup)}
    if setup["spec"]["eval"].get("keep_checkpoints") and not setup.get("results_dir"):
        setup["results_dir"] = results_dir_from_tune()
    node = ray.get_runtime_context().get_node_id()

    def report(row: dict, checkpoint_dir: str | None = None) -> None:
        saved = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**row, "node_id": node}, checkpoint=saved)  # Tune copies the checkpoint to its storage
        if checkpoint_dir:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)

    restored = tune.get_checkpoint()  # set when Tune retries this trial after a failure
    if restored is None:
        run_trial(setup, config["point"], report)
    else:
        with restored.as_directory() as directory:
            run_trial(setup, config["point"], report, restore_dir=directory)


def local_target(setup: dict) -> str:
    """The target's directory on this node: the driver's path if it is here, else an unpacked copy."""
    from pareto.models.cache import default_cache_dir
    from pareto.results.archive import unpack_directory

    path = Path(setup["target_dir"])
    if (path / "manifest.json").is_file() or setup.get("target_archive") is None:
        return str(path)
    import ray

    local = default_cache_dir() / path.name
    if not (local / "manifest.json").is_file():
        unpack_directory(ray.get(setup["target_archive"]), local)
    return str(local)
