"""One trial on 2 workers (gloo CPU processes, no Ray here) equals the single-process trial with
the same global batch: every telemetry column within 1e-5 relative and the final parameters within
1e-5, under DDP and FSDP2, for ngdiff+ga+fixed, gdiff+npo, ngdiff+autolr and with grad_accum: 2.
Also the NPO reference under autocast (step 0 reads 2/β·ln 2) and the distributed checkpoint."""

from __future__ import annotations

import math
import os
import socket
import tempfile
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from pareto.core.engine import STEP_COLUMNS
from pareto.spec import parse_spec

STEPS = 4
SPEC = """name: parallel
unlearn: {{steps: {steps}, batch_size: 4, optimizer: {optimizer}, measure_after_every: 1, grad_accum: {accum}{extra}}}
eval: {{retain_items: 8, max_new_tokens: 4, metrics: [loss_f_eval, loss_r_eval]}}
search:
  baseline: false
  space:
    combiner: [{combiner}]
    objective: [{objective}]
    lr_rule: [{lr_rule}]
    lr: [{lr}]
    seed: [5]
resources: {{cpus_per_trial: 2{resources}}}
"""
CASES = {  # name: (combiner, objective, lr_rule, lr, grad_accum, optimizer)
    "ngdiff+ga+fixed": ("ngdiff", "ga", "fixed", 0.05, 1, "sgd"),
    "gdiff+npo": ("{gdiff: {c: 0.5}}", "npo", "fixed", 0.05, 1, "sgd"),
    "ngdiff+autolr": ("ngdiff", "ga", "{autolr: {every: 2}}", 0.05, 1, "sgd"),
    "grad_accum 2": ("ngdiff", "npo", "fixed", 0.05, 2, "sgd"),
    "adam": ("ngdiff", "ga", "fixed", 1e-3, 1, "adam"),
    "lora": ("ngdiff", "npo", "fixed", 0.5, 1, "sgd"),  # AutoLR on LoRA: its second difference of near-equal losses is float32-noisy
}
TELEMETRY = [c for c in STEP_COLUMNS if c not in ("step", "step_time_s", "autolr_accepted")]


def spec_setup(target: Path, case: str, parallel: str | None, steps: int = STEPS, extra: str = ""):
    combiner, objective, lr_rule, lr, accum, optimizer = CASES[case]
    resources = ", workers_per_trial: 2, gpus_per_trial: 0" if parallel else ""
    extra = (f", parallel: {parallel}" if parallel else "") + extra
    if case == "lora":  # adapters only are trained (the target frozen): g_R, g_F, Gram, AutoLR live on them
        extra += ", lora: {r: 4, alpha: 8}"
    spec, points = parse_spec(SPEC.format(steps=steps, accum=accum, optimizer=optimizer, extra=extra, combiner=combiner,
                                          objective=objective, lr_rule=lr_rule, lr=lr, resources=resources))
    return {"spec": spec.to_dict(), "target_dir": str(target)}, points[0]


def run_steps(setup: dict, point: dict, parallel) -> tuple[list[dict], dict[str, torch.Tensor], float]:
    """The trial's first steps as run_trial takes them; the rows, the full parameters (gathered
    from the shards) and the first step's changed fraction."""
    from trainables.unlearn import start_trial

    trial = start_trial(setup, point, parallel=parallel)
    e = trial.engine
    rows = [e.step(trial.batch(trial.retain), trial.batch(trial.forget)) for _ in range(STEPS)]
    params = {}
    for name, p in trial.model.named_parameters():
        if not p.requires_grad:
            continue
        full = p.full_tensor() if hasattr(p, "full_tensor") else p
        params[name.replace("_fsdp_wrapped_module.", "")] = full.detach().cpu().clone()
    return rows, params, e.first_step_changed_frac


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, fn, args, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    result = fn(*args)
    if rank == 0:
        torch.save(result, out)
    dist.barrier()
    # gloo's threads can abort a process as it is torn down ("terminate called without an active
    # exception") after the work is done: leave without running the interpreter's teardown
    os._exit(0)


def on_two_workers(fn, *args):
    """fn(*args) on 2 gloo processes; rank 0's result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.pt")
        mp.start_processes(_worker, args=(2, _free_port(), fn, args, out), nprocs=2, join=True, start_method="spawn")
        return torch.load(out, weights_only=False)


def _distributed_steps(setup, point, name):
    from pareto.core.parallel import strategy

    return run_steps(setup, point, strategy(name))


def close(a: float, b: float, rel: float = 1e-5, scale: float = 0.0) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= rel * max(abs(a), abs(b), scale, 1e-6)


def scale_of(row: dict, column: str) -> float:
    """The scale a column's rounding error grows with: a dot product's is ‖a‖·‖b‖, not |a·b| (g_R·g_F
    nearly cancels when the gradients are orthogonal), so g_R·g_F is compared relative to
    √(‖g_R‖²‖g_F‖²) and g·d relative to the sum of its terms' sizes."""
    rr, rf, ff, wr, wf = (abs(float(row[k])) for k in ("gram_rr", "gram_rf", "gram_ff", "w_r", "w_f"))
    return {"gram_rf": math.sqrt(rr * ff), "dot_r_upd": wr * rr + wf * rf,
            "dot_f_upd": wr * rf + wf * ff}.get(column, 0.0)


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
@pytest.mark.parametrize("case", list(CASES))
def test_two_workers_equal_one_process(embedded_target, case, parallel):
    from pareto.core.parallel import SINGLE

    setup, point = spec_setup(embedded_target, case, None)
    one_rows, one_params, one_changed = run_steps(setup, point, SINGLE)
    setup2, point2 = spec_setup(embedded_target, case, parallel)
    rows, params, changed = on_two_workers(_distributed_steps, setup2, point2, parallel)
    for step, (a, b) in enumerate(zip(one_rows, rows)):
        bad = {c: (a[c], b[c]) for c in TELEMETRY if not close(float(a[c]), float(b[c]), scale=scale_of(a, c))}
        assert not bad, f"step {step}: {bad}"
        assert a["autolr_accepted"] == b["autolr_accepted"]
    assert set(params) == set(one_params)
    if case != "adam":
        for name, p in one_params.items():
            torch.testing.assert_close(params[name], p, rtol=1e-5, atol=1e-6, msg=name)
    else:  # Adam moves an entry by ≈ lr whatever its gradient's size, so a gradient that is rounding
        # noise (GPT-2's attention key bias: its true gradient is 0, it adds the same q·b_k to every
        # score of a query) moves by ±lr in both runs, in noise-decided directions. Every other entry
        # agrees within 1e-5; those differ by at most 2·lr per step.
        off = total = 0
        for name, p in one_params.items():
            d = (params[name] - p).abs()
            bad = d > 1e-5 * p.abs().clamp_min(0.1)
            if name.endswith("attn.c_attn.bias"):
                bad[p.numel() // 3:2 * p.numel() // 3] = False  # the key third
            off += int(bad.sum())
            total += p.numel()
            assert float(d.max()) <= 2 * 1e-3 * STEPS, name
        assert off <= 1e-4 * total, f"{off} of {total} entries differ by more than 1e-5"
    assert changed == pytest.approx(one_changed, abs=1e-4) and changed > 0.99  # d ≈ 0 entries: rounding


def test_npo_reference_under_autocast_reads_2_over_beta_ln2_at_step_0(embedded_target):
    """NPO's reference log-probs are computed under the trial's autocast (bf16), as the step's are:
    with nothing changed yet, L_NPO = (2/β)·ln 2 exactly (β = 0.1: 13.8629…)."""
    from pareto.core.parallel import SINGLE
    from trainables.unlearn import prepare_objective, start_trial

    setup, point = spec_setup(embedded_target, "gdiff+npo", None, extra=", autocast: bfloat16")
    trial = start_trial(setup, point, parallel=SINGLE)
    e, objective = trial.engine, trial.engine.objective
    first = trial.batch(trial.forget)
    trial.forget.generator.manual_seed(int(point["seed"]))  # rewind: step 0 draws the same batch
    trial.forget._order = []
    with torch.no_grad(), e.amp():
        now = objective.task.logprob(trial.model, first).float()
    ref = torch.tensor([objective._ref[i] for i in first["index"].tolist()])
    assert float((now - ref).abs().max()) == 0.0  # the reference is this very computation
    # what a reference taken on other batches (every example once, in order) would read: bf16
    # log-probabilities depend on the batch's shape, by ~3e-4 nat on this model (docs/core.md)
    objective._ref = {}
    with e.amp():
        objective.prepare(trial.model, trial.forget.all())
    other = torch.tensor([objective._ref[i] for i in first["index"].tolist()])
    assert 1e-5 < float((now - other).abs().max()) < 1e-2
    prepare_objective(e, trial.forget, trial.batch)  # back to the trial's own
    row = e.step(trial.batch(trial.retain), trial.batch(trial.forget))
    assert -row["loss_f"] == pytest.approx(20 * math.log(2), rel=1e-6)


def _save_then_resume(setup, point, name, tmp: str):
    """2 steps, a checkpoint (each rank its own folder, merged as Ray Train merges them), a fresh
    trial restored from it, 2 more steps: the rows of all 4 steps and the final parameters."""
    import shutil

    import torch.distributed as dist

    from pareto import checkpoint
    from pareto.core.parallel import strategy
    from trainables.unlearn import start_trial

    par = strategy(name)
    first = start_trial(setup, point, parallel=par)
    e = first.engine
    rows = [e.step(first.batch(first.retain), first.batch(first.forget)) for _ in range(2)]
    mine = Path(tmp) / f"rank{par.rank}"
    checkpoint.save(mine, model=first.model, optimizer=e.optimizer, engine=e, forget=first.forget,
                    retain=first.retain, steps_done=2)
    dist.barrier()
    merged = Path(tmp) / f"merged{par.rank}"
    for r in range(par.world):
        shutil.copytree(Path(tmp) / f"rank{r}", merged, dirs_exist_ok=True)
    second = start_trial(setup, point, parallel=par)
    e2 = second.engine
    assert checkpoint.load(merged, model=second.model, optimizer=e2.optimizer, engine=e2, forget=second.forget,
                           retain=second.retain) == 2
    rows += [e2.step(second.batch(second.retain), second.batch(second.forget)) for _ in range(2)]
    params = {n.replace("_fsdp_wrapped_module.", ""): (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
              for n, p in second.model.named_parameters() if p.requires_grad}
    return rows, params, e2.first_step_changed_frac


@pytest.mark.parametrize("case", ["adam", "lora"])
def test_a_distributed_checkpoint_continues_the_trial_exactly(embedded_target, tmp_path, case):
    """torch.distributed.checkpoint under FSDP (Adam's sharded moments; LoRA: the adapters only):
    saved after 2 steps and restored into a fresh trial, the next 2 steps are those of 4 straight."""
    setup, point = spec_setup(embedded_target, case, "fsdp")
    straight, params, _ = on_two_workers(_distributed_steps, setup, point, "fsdp")
    resumed, params2, changed = on_two_workers(_save_then_resume, setup, point, "fsdp", str(tmp_path))
    for a, b in zip(straight, resumed):
        bad = {c: (a[c], b[c]) for c in TELEMETRY if not close(float(a[c]), float(b[c]), rel=1e-6)}
        assert not bad, bad
    for name, p in params.items():
        torch.testing.assert_close(params2[name], p, rtol=1e-6, atol=1e-7, msg=name)
    assert changed > 0.99  # the first step's record survives the checkpoint
