#!/usr/bin/env python
"""One unlearning step of a real-size architecture on a GPU: time, peak memory, MFU, what fits.

    python benchmarks/gpu_step.py --arch llama-1b                 # GDiff (usual) vs the engine's methods
    python benchmarks/gpu_step.py --arch llama2-7b --lora         # LoRA adapters on a frozen 7B
    python benchmarks/gpu_step.py --fit                           # the largest model that fits, full and LoRA
    python benchmarks/gpu_step.py --smoke                         # a tiny config, on CPU when there is no GPU
    python benchmarks/gpu_step.py --arch llama-1b --json out.json # every number to a file

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
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import build_optimizer
from pareto.data.qa import IGNORE
from pareto.lm import answer_ce

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


def batches(vocab: int, batch: int, seq: int, device: str, n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        ids = torch.randint(3, vocab, (batch, seq), generator=g)
        labels = ids.clone()
        labels[:, : seq // 2] = IGNORE
        out.append({"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
                    "labels": labels.to(device), "index": torch.arange(i * batch, (i + 1) * batch).to(device)})
    return out


def make_step(method: str, model, lr: float, forget_all: list[dict], autocast):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = build_optimizer("adam", params, lr=lr)
    if method == "gdiff_usual":
        def step(rb, fb):
            with (torch.autocast("cuda", dtype=autocast) if autocast else torch.enable_grad()):
                loss = 0.5 * answer_ce(model, rb) - 0.5 * answer_ce(model, fb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step, 0
    combiner = {"gdiff": "gdiff", "ngdiff": "ngdiff", "ngdiff_autolr": "ngdiff", "npo": "gdiff"}[method]
    objective = OBJECTIVES.build("npo" if method == "npo" else "ga")
    if method == "npo":
        objective.prepare(model, forget_all)
    rule = LR_RULES.build("autolr", every=10) if method == "ngdiff_autolr" else LR_RULES.build("fixed")
    engine = UnlearnEngine(model, build_combiner(combiner, **({"c": 0.5} if combiner == "gdiff" else {})),
                           objective, rule, opt, lr=lr, autocast=autocast)
    return (lambda rb, fb: engine.step(rb, fb, measure_after=False)), engine.gradient_buffer_bytes()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure_method(method, model, config, args, device, autocast) -> dict:
    data = batches(config.vocab_size, args.batch, args.seq, device, 2 * (args.warmup + args.steps) + 2)
    forget_all = data[1::2]
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    step, buffer = make_step(method, model, args.lr, forget_all, autocast)
    times = []
    for i in range(args.warmup + args.steps):
        sync(device)
        t0 = time.perf_counter()
        step(data[2 * i], data[2 * i + 1])
        sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    for p in model.parameters():
        p.grad = None
    return {"ms": 1e3 * statistics.median(times), "mean_ms": 1e3 * statistics.fmean(times), "peak_bytes": peak,
            "grad_buffer_bytes": buffer}


def matmul_tflops(device: str, dtype: torch.dtype, n: int = 8192, reps: int = 10) -> float:
    if device != "cuda":
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


def run_arch(arch: str, args, device: str, methods) -> dict:
    dtype = torch.bfloat16 if (args.precision == "bf16" and device == "cuda") or args.precision == "bf16-cpu" else torch.float32
    autocast = torch.bfloat16 if args.precision == "autocast" else None
    model, config = build_model(arch, device, dtype, args.checkpointing, args.lora)
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out = {"arch": arch, "params": n_params, "trainable": n_train, "dtype": str(dtype), "lora": args.lora,
           "checkpointing": args.checkpointing, "batch": args.batch, "seq": args.seq, "methods": {}}
    flops = step_flops(model, config, args)
    for m in methods:
        try:
            out["methods"][m] = measure_method(m, model, config, args, device, autocast)
        except torch.OutOfMemoryError as exc:  # what it needed, as torch reports it
            out["methods"][m] = {"oom": str(exc).split("\n")[0]}
            torch.cuda.empty_cache()
    out["step_flops"] = flops
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="llama-1b", choices=sorted(ARCHS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "autocast", "fp32", "bf16-cpu"])
    ap.add_argument("--checkpointing", action="store_true", help="gradient checkpointing")
    ap.add_argument("--lora", action="store_true", help="LoRA adapters (r 16, every linear layer) via peft")
    ap.add_argument("--fit", action="store_true", help=f"try {', '.join(FIT_LADDER)}, full and LoRA, one NGDiff step each")
    ap.add_argument("--smoke", action="store_true", help="the tiny config, 2 steps (CPU when there is no GPU)")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        args.arch, args.batch, args.seq, args.steps, args.warmup = "tiny", 2, 32, 2, 1
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
        base = r["methods"].get("gdiff_usual", {})
        print(f"{args.arch}: {r['params'] / 1e9:.3f} B params ({r['trainable'] / 1e6:.1f} M trained), "
              f"batch {args.batch} × {args.seq} tokens, {r['dtype']}{' + LoRA' if args.lora else ''}")
        print("| method | ms/step | × gdiff_usual | peak GiB | Δ peak vs gdiff_usual GiB | grad buffer GiB | MFU |")
        print("|---|---|---|---|---|---|---|")
        for m, v in r["methods"].items():
            if "oom" in v:
                print(f"| {m} | out of memory: {v['oom']} | | | | | |")
                continue
            mfu = r["step_flops"] / (v["ms"] / 1e3) / (peak_rate * 1e12)
            gib = (lambda b: f"{b / 2**30:.2f}" if b is not None else "–")
            ratio = f"{v['ms'] / base['ms']:.3f}" if base.get("ms") else "–"
            dpeak = (v["peak_bytes"] - base["peak_bytes"]) if v["peak_bytes"] is not None and base.get("peak_bytes") else None
            print(f"| {m} | {v['ms']:.1f} | {ratio} | {gib(v['peak_bytes'])} | {gib(dpeak)} | "
                  f"{gib(v['grad_buffer_bytes'])} | {mfu:.1%} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
