#!/usr/bin/env python
"""One unlearning step of a real-size architecture on a GPU: time, peak memory, MFU, what fits.

    python benchmarks/gpu_step.py --arch llama-1b                 # GDiff (usual) vs the engine's methods
    python benchmarks/gpu_step.py --arch llama2-7b --lora         # LoRA adapters on a frozen 7B
    python benchmarks/gpu_step.py --fit                           # the largest model that fits, full and LoRA
    python benchmarks/gpu_step.py --smoke                         # a tiny config, on CPU when there is no GPU
    python benchmarks/gpu_step.py --arch llama-1b --json out.json # every number to a file
    python benchmarks/gpu_step.py --arch llama-1b --workers 2 --parallel fsdp   # one trial on 2 GPUs
    python benchmarks/gpu_step.py --smoke --workers 2 --parallel ddp,fsdp       # the same on CPU (gloo)

Models are built from their architecture's config with random weights (the GPU machines have no
hub access; speed and memory do not depend on the weights), in bf16 (pure: parameters, gradients
and Adam's state in bf16; `--precision autocast` keeps fp32 master weights and runs the matmuls
in bf16). Batches are random tokens, `--batch` sequences of `--seq` tokens, the second half of
each scored (the "answer"), one retain and one forget batch per step.

Methods, each on the same model, batches and optimizer (Adam), `--steps` timed steps after
`--warmup` untimed ones, torch.cuda.synchronize around each:

    gdiff_usual   the usual implementation: forward on both batches, ONE backward through
                  c·L_R − (1−c)·L_F (c = 0.5), optimizer.step() — plain training's memory
    gdiff         the engine with GDiff (two backwards, g_R kept in a second buffer)
    ngdiff        the engine with NGDiff
    ngdiff_autolr the engine with NGDiff and AutoLR (K = 10: the two probe forwards every 10th
                  step, averaged over the timed steps; use --steps 20 or more)
    npo           the engine with GDiff (c = 0.5) and the NPO forget loss (reference
                  log-probabilities computed once before timing)

Reported per method: ms/step (median), peak memory (torch.cuda.max_memory_allocated, reset
before each method), the gradient buffer the engine adds, the ratios to gdiff_usual, and the
model FLOP utilisation: useful FLOPs per step (forward + backward on both batches:
2 × (6·N·T + 12·L·d·s·T), PaLM's count with T tokens, N non-embedding parameters, L layers,
width d, sequence s) divided by the step time and by the card's bf16 matmul rate measured here
(the best of several 8192³ matmuls). Targets (issue 9): MFU ≥ 40 % for a 1B architecture,
NGDiff ≤ 1.05 × GDiff, peak ≤ GDiff + one gradient buffer, a 7B architecture with LoRA on one
80 GB card.

Several workers (`--workers N`, issue 16): one trial's step spread over N torch.distributed
processes started with torch.multiprocessing (spawn): NCCL with one GPU per rank where there are
N GPUs, else gloo on the CPU (cores shared out: `--threads` per rank, default cores // N).
`--parallel` names the strategies, one after the other, each in its own N processes (default
with N > 1: `ddp,fsdp`; `--workers 1 --parallel fsdp` runs FSDP in a group of one, the baseline
for per-rank memory). The model is built on every rank from the same seed, wrapped by the
strategy (pareto/core/parallel.py) BEFORE its optimizer is built, and each rank takes
`strategy.shard(batch)`: `--batch` is the GLOBAL batch (a multiple of N). gdiff_usual under
several workers is the usual data-parallel step: one backward of the rank's loss / N, then FSDP's
reduce-scatter (a sum) or, for DDP, an all-reduce of each `.grad`. Reported per strategy and
method: ms/step (the slowest rank's median), the bytes each rank holds of parameters, gradient
buffers (the engine's g_R and g_F buffers; the usual step's `.grad`) and Adam's state — the local
shards (DTensor.to_local()) under FSDP — and on CUDA torch.cuda.max_memory_allocated per rank.
MFU under N workers divides by N cards.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time

import torch

from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.core.parallel import SINGLE, STRATEGIES
from pareto.data.qa import IGNORE
from pareto.lm import LM_TASK, answer_ce

#: Architectures by name: (transformers config class, its fields). Public config values.
ARCHS = {
    "tiny": ("LlamaConfig", dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)),
    "llama-1b": ("LlamaConfig", dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                                     num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)),
    "phi-1_5": ("PhiConfig", dict(vocab_size=51200, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                                  num_attention_heads=32, max_position_embeddings=2048, partial_rotary_factor=0.5)),
    "gpt2-xl": ("GPT2Config", dict(vocab_size=50257, n_embd=1600, n_layer=48, n_head=25, n_positions=1024)),
    "llama2-7b": ("LlamaConfig", dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096)),
    "mistral-7b": ("MistralConfig", dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                         max_position_embeddings=4096)),
    "llama2-13b": ("LlamaConfig", dict(vocab_size=32000, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                                       num_attention_heads=40, num_key_value_heads=40, max_position_embeddings=4096)),
    # ~30 M parameters (25.2 M in its 8 blocks): big enough on a CPU that sharding, not the
    # embeddings' rounding or Python, decides the per-rank bytes (benchmarks/parallel_memory.py)
    "gpt2-30m": ("GPT2Config", dict(vocab_size=8192, n_embd=512, n_layer=8, n_head=8, n_positions=1024,
                                     bos_token_id=0, eos_token_id=0)),
}
METHODS = ("gdiff_usual", "gdiff", "ngdiff", "ngdiff_autolr", "npo")
FIT_LADDER = ("llama-1b", "llama2-7b", "llama2-13b")


def build_model(arch: str, device: str, dtype: torch.dtype, checkpointing: bool, lora: bool):
    import transformers

    cls_name, fields = ARCHS[arch]
    config = getattr(transformers, cls_name)(**fields)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = transformers.AutoModelForCausalLM.from_config(config)
    finally:
        torch.set_default_dtype(previous)
    if checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                                  lora_dropout=0.0))
    return model, config


def shape_of(config) -> tuple[int, int]:
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    width = getattr(config, "hidden_size", None) or config.n_embd
    return layers, width


def batches(vocab: int, batch: int, seq: int, device: str, n: int, seed: int = 0, par=SINGLE) -> list[dict]:
    """n global batches (the same on every rank: one seed), each cut to this rank's slice."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        ids = torch.randint(3, vocab, (batch, seq), generator=g)
        labels = ids.clone()
        labels[:, : seq // 2] = IGNORE
        b = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels,
             "index": torch.arange(i * batch, (i + 1) * batch)}
        out.append({k: v.to(device) for k, v in par.shard(b).items()})
    return out


def device_type(device: str) -> str:
    return device.split(":")[0]


def make_step(method: str, model, lr: float, forget_all: list[dict], autocast, par=SINGLE, device: str = "cuda"):
    """(step(rb, fb), the engine's extra gradient buffer in bytes, the optimizer, the engine or None)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = build_optimizer("adam", params, lr=lr)
    if method == "gdiff_usual":
        def step(rb, fb):
            with (torch.autocast(device_type(device), dtype=autocast) if autocast else torch.enable_grad()):
                loss = 0.5 * answer_ce(model, rb) - 0.5 * answer_ce(model, fb)
            (loss / par.world if par.world > 1 else loss).backward()  # the mean over ranks, as DDP's
            if par.name == "ddp":  # FSDP has reduce-scattered (summed) during backward
                for p in params:
                    par.dist.all_reduce(p.grad)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step, 0, opt, None
    combiner = {"gdiff": "gdiff", "ngdiff": "ngdiff", "ngdiff_autolr": "ngdiff", "npo": "gdiff"}[method]
    objective = OBJECTIVES.build("npo" if method == "npo" else "ga")
    objective.task = LM_TASK
    rule = LR_RULES.build("autolr", every=10) if method == "ngdiff_autolr" else LR_RULES.build("fixed")
    engine = UnlearnEngine(model, build_combiner(combiner, **({"c": 0.5} if combiner == "gdiff" else {})),
                           objective, rule, opt, lr=lr, retain_loss=LM_TASK.loss, autocast=autocast, parallel=par)
    if method == "npo":  # this rank's slices (every rank runs the same forwards), under the step's autocast
        with engine.amp():
            objective.prepare(model, forget_all)
    return (lambda rb, fb: engine.step(rb, fb, measure_after=False)), engine.gradient_buffer_bytes(), opt, engine


def sync(device: str) -> None:
    if device_type(device) == "cuda":
        torch.cuda.synchronize()


def _nbytes(t: torch.Tensor, par=SINGLE) -> int:
    t = par.local(t)
    return t.numel() * t.element_size()


def rank_bytes(model, opt, engine, par=SINGLE) -> dict:
    """What this rank holds, in bytes: parameters (all; trained), gradient buffers (the engine's
    g_R and g_F buffers and its scratch one, or the usual step's `.grad`: one per trained parameter,
    in its dtype) and the optimizer's state — the local shards under FSDP."""
    params = list(model.parameters())
    trained = [p for p in params if p.requires_grad]
    if engine is not None:
        grads = sum(b.numel() * b.element_size() for b in (engine._flat_r, engine._flat_g, engine._flat_s)
                    if b is not None)
    else:
        grads = sum(_nbytes(p, par) for p in trained)
    state = sum(_nbytes(t, par) for st in opt.state.values() for t in st.values()
                if isinstance(t, torch.Tensor) and t.dim())  # Adam's exp_avg, exp_avg_sq (not the step count)
    out = {"param_bytes": sum(_nbytes(p, par) for p in params), "trained_param_bytes": sum(_nbytes(p, par) for p in trained),
           "grad_bytes": grads, "optim_bytes": state}
    out["total_bytes"] = out["param_bytes"] + grads + state
    return out


def measure_method(method, model, config, args, device, autocast, par=SINGLE) -> dict:
    data = batches(config.vocab_size, args.batch, args.seq, device, 2 * (args.warmup + args.steps) + 2, par=par)
    forget_all = data[1::2]
    cuda = device_type(device) == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    step, buffer, opt, engine = make_step(method, model, args.lr, forget_all, autocast, par, device)
    times = []
    for i in range(args.warmup + args.steps):
        sync(device)
        t0 = time.perf_counter()
        step(data[2 * i], data[2 * i + 1])
        sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if cuda else None
    out = {"ms": 1e3 * statistics.median(times), "mean_ms": 1e3 * statistics.fmean(times), "peak_bytes": peak,
           "grad_buffer_bytes": buffer, **rank_bytes(model, opt, engine, par)}
    for p in model.parameters():
        p.grad = None
    del step, opt, engine
    return out


def matmul_tflops(device: str, dtype: torch.dtype, n: int = 8192, reps: int = 10) -> float:
    if device_type(device) != "cuda":
        n, reps = 512, 3
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e12


def step_flops(model, config, args) -> float:
    n = sum(p.numel() for name, p in model.named_parameters() if "embed" not in name and "wte" not in name)
    layers, width = shape_of(config)
    tokens = args.batch * args.seq
    return 2 * (6 * n * tokens + 12 * layers * width * args.seq * tokens)


def model_dtype(args, device: str) -> torch.dtype:
    cuda = device_type(device) == "cuda"
    return torch.bfloat16 if (args.precision == "bf16" and cuda) or args.precision == "bf16-cpu" else torch.float32


def run_arch(arch: str, args, device: str, methods, par=SINGLE) -> dict:
    dtype = model_dtype(args, device)
    autocast = torch.bfloat16 if args.precision == "autocast" else None
    model, config = build_model(arch, device, dtype, args.checkpointing, args.lora)
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out = {"arch": arch, "params": n_params, "trainable": n_train, "dtype": str(dtype), "lora": args.lora,
           "precision": args.precision, "checkpointing": args.checkpointing, "batch": args.batch, "seq": args.seq,
           "workers": par.world, "parallel": None if par is SINGLE else par.name, "methods": {}}
    flops = step_flops(model, config, args)  # before wrapping: the full model's count
    model = par.wrap(model)  # before any optimizer: FSDP turns the parameters into DTensors
    for m in methods:
        try:
            out["methods"][m] = measure_method(m, model, config, args, device, autocast, par)
        except torch.OutOfMemoryError as exc:  # what it needed, as torch reports it
            out["methods"][m] = {"oom": str(exc).split("\n")[0]}
            for p in model.parameters():
                p.grad = None
            torch.cuda.empty_cache()
    out["step_flops"] = flops
    return out


# --- several workers ------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, name: str, args: argparse.Namespace, use_cuda: bool,
               out: str) -> None:
    """One rank: a process group (NCCL on cuda:<rank>, else gloo), the strategy, the methods; rank 0
    writes every rank's numbers to `out`."""
    import torch.distributed as dist

    from pareto.core.parallel import strategy

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    if use_cuda:
        torch.cuda.set_device(rank)
        device = f"cuda:{rank}"
        dist.init_process_group("nccl", rank=rank, world_size=world, device_id=torch.device(device))
    else:
        device = "cpu"
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    par = strategy(name)
    info = {}
    if rank == 0:
        info["card"] = torch.cuda.get_device_name(device) if use_cuda else "CPU (no GPU)"
        info["matmul_tflops"] = matmul_tflops(device, torch.bfloat16 if use_cuda else torch.float32)
        info["threads_per_rank"] = torch.get_num_threads()
    result = run_arch(args.arch, args, device, args.methods.split(","), par)
    ranks = par.gather_objects(result["methods"])  # each rank's numbers, by method
    if rank == 0:
        result["per_rank"] = ranks
        for m, v in result["methods"].items():  # the step ends with the slowest rank
            if "oom" not in v:
                v["ms"] = max(r[m]["ms"] for r in ranks if "ms" in r[m])
                if use_cuda:
                    v["peak_bytes"] = max(r[m]["peak_bytes"] for r in ranks if "ms" in r[m])
        with open(out, "w") as fh:
            json.dump({**info, "run": result}, fh)
    par.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    # gloo's threads can abort a process as the interpreter tears down, after the work is done
    # (tests/test_parallel_trial.py): leave without that teardown
    os._exit(0)


def run_workers(name: str, args) -> dict:
    """One strategy on `args.workers` spawned processes; {card, matmul_tflops, run} from rank 0."""
    import torch.multiprocessing as mp

    world = args.workers
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} does not split over {world} workers: use a multiple of {world}")
    use_cuda = torch.cuda.is_available() and not args.cpu and torch.cuda.device_count() >= world
    if torch.cuda.is_available() and not args.cpu and not use_cuda:
        print(f"{world} workers need {world} GPUs, {torch.cuda.device_count()} here: gloo on the CPU instead")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.json")
        mp.start_processes(_rank_main, args=(world, _free_port(), name, args, use_cuda, out), nprocs=world,
                           join=True, start_method="spawn")
        with open(out) as fh:
            return json.load(fh)


def print_table(r: dict, peak_rate: float) -> None:
    base = r["methods"].get("gdiff_usual", {})
    gib = (lambda b: f"{b / 2**30:.2f}" if b is not None else "–")
    print("| method | ms/step | × gdiff_usual | peak GiB | Δ peak vs gdiff_usual GiB | grad buffer GiB | MFU |")
    print("|---|---|---|---|---|---|---|")
    for m, v in r["methods"].items():
        if "oom" in v:
            print(f"| {m} | out of memory: {v['oom']} | | | | | |")
            continue
        mfu = r["step_flops"] / (v["ms"] / 1e3) / (peak_rate * 1e12 * r.get("workers", 1))
        ratio = f"{v['ms'] / base['ms']:.3f}" if base.get("ms") else "–"
        dpeak = (v["peak_bytes"] - base["peak_bytes"]) if v["peak_bytes"] is not None and base.get("peak_bytes") else None
        print(f"| {m} | {v['ms']:.1f} | {ratio} | {gib(v['peak_bytes'])} | {gib(dpeak)} | "
              f"{gib(v['grad_buffer_bytes'])} | {mfu:.1%} |")


def print_rank_table(r: dict) -> None:
    """Per rank: what it holds (MiB) — parameters, gradient buffers, Adam — and its CUDA peak."""
    mib = (lambda b: f"{b / 2**20:.1f}" if b is not None else "–")
    print("| strategy | workers | method | rank | params MiB | grad buffers MiB | Adam MiB | total MiB | CUDA peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, methods in enumerate(r.get("per_rank") or [r["methods"]]):
        for m, v in methods.items():
            if "oom" in v:
                continue
            print(f"| {r['parallel'] or 'single'} | {r['workers']} | {m} | {k} | {mib(v['param_bytes'])} | "
                  f"{mib(v['grad_bytes'])} | {mib(v['optim_bytes'])} | {mib(v['total_bytes'])} | {mib(v['peak_bytes'])} |")


def describe(r: dict) -> str:
    par = f", {r['workers']} workers, {r['parallel']}" if r.get("parallel") else ""
    return (f"{r['arch']}: {r['params'] / 1e9:.3f} B params ({r['trainable'] / 1e6:.1f} M trained), "
            f"batch {r['batch']} × {r['seq']} tokens (global), {r['dtype']}"
            f"{' + bf16 autocast' if r.get('precision') == 'autocast' else ''}{' + LoRA' if r['lora'] else ''}{par}")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="llama-1b", choices=sorted(ARCHS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--batch", type=int, default=8, help="the global batch (split over --workers)")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "autocast", "fp32", "bf16-cpu"])
    ap.add_argument("--checkpointing", action="store_true", help="gradient checkpointing")
    ap.add_argument("--lora", action="store_true", help="LoRA adapters (r 16, every linear layer) via peft")
    ap.add_argument("--fit", action="store_true", help=f"try {', '.join(FIT_LADDER)}, full and LoRA, one NGDiff step each")
    ap.add_argument("--smoke", action="store_true", help="the tiny config, 2 steps (CPU when there is no GPU)")
    ap.add_argument("--workers", type=int, default=1, help="processes for one trial (one GPU each, or gloo on CPU)")
    ap.add_argument("--parallel", help=f"strategies, comma-separated, of {', '.join(STRATEGIES)} "
                                       "(default with --workers > 1: ddp,fsdp)")
    ap.add_argument("--threads", type=int, help="torch threads per rank on CPU (default: cores // workers)")
    ap.add_argument("--cpu", action="store_true", help="the CPU even where there is a GPU")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.smoke:
        args.arch, args.batch, args.seq, args.steps, args.warmup = "tiny", 2 * max(1, args.workers), 32, 2, 1
    if args.workers > 1 and not args.parallel:
        args.parallel = "ddp,fsdp"
    if args.parallel:
        bad = [n for n in args.parallel.split(",") if n not in STRATEGIES]
        if bad or args.fit:
            ap.error(f"--parallel takes {', '.join(STRATEGIES)} (comma-separated), not with --fit" if not bad
                     else f"--parallel: unknown strategy {', '.join(bad)}; choose from {', '.join(STRATEGIES)}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.parallel:
        results = {"runs": []}
        for name in args.parallel.split(","):
            got = run_workers(name, args)
            results.update(card=got["card"], matmul_tflops=got["matmul_tflops"])
            r = got["run"]
            r["threads_per_rank"] = got.get("threads_per_rank")
            results["runs"].append(r)
            print(f"{got['card']}: measured matmul rate {got['matmul_tflops']:.3g} TFLOP/s per rank; "
                  f"torch {torch.__version__}")
            print(describe(r))
            print_table(r, got["matmul_tflops"])
            print()
            print_rank_table(r)
            print()
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=1)
        return results
    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    card = torch.cuda.get_device_name() if device == "cuda" else "CPU (no GPU)"
    peak_rate = matmul_tflops(device, torch.bfloat16 if device == "cuda" else torch.float32)
    print(f"{card}: measured matmul rate {peak_rate:.3g} TFLOP/s; torch {torch.__version__}")
    results = {"card": card, "matmul_tflops": peak_rate, "runs": []}
    if args.fit:
        args.steps, args.warmup = 1, 1
        for lora in (False, True):
            args.lora = lora
            for arch in FIT_LADDER if not args.smoke else ("tiny",):
                r = run_arch(arch, args, device, ["ngdiff"])
                results["runs"].append(r)
                if args.json:  # after each rung: a run stopped by a time limit keeps what it found
                    with open(args.json, "w") as fh:
                        json.dump(results, fh, indent=1)
                fits = "oom" not in r["methods"]["ngdiff"]
                print(f"{arch:>11} {'LoRA' if lora else 'full'}: {r['params'] / 1e9:.2f} B params, "
                      f"{'fits' if fits else 'does not fit: ' + r['methods']['ngdiff']['oom']}"
                      + (f", peak {r['methods']['ngdiff']['peak_bytes'] / 2**30:.1f} GiB" if fits and device == "cuda" else ""))
                if not fits:
                    break
                if device == "cuda":
                    torch.cuda.empty_cache()
    else:
        r = run_arch(args.arch, args, device, args.methods.split(","))
        results["runs"].append(r)
        print(describe(r))
        print_table(r, peak_rate)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
