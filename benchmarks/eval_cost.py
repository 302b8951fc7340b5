#!/usr/bin/env python
"""What greedy evaluation costs: batched generation against one prompt at a time.

    python benchmarks/eval_cost.py                  # embedded target + a bigger random GPT-2
    python benchmarks/eval_cost.py --smoke          # a fast check that everything runs
    python benchmarks/eval_cost.py --json out.json  # also write every number to a file
    python benchmarks/eval_cost.py --threads 1,2 --batch-size 32,64   # the table in docs/benchmarks.md

Both modes call `pareto.metrics.generation.greedy_answers` on the same questions (every QA pair
of the embedded target: 200 with the default config) with the same `--max-new-tokens`; "batched"
uses `--batch-size` (left padding, KV cache, prompts sorted by length), "one at a time" uses
batch_size=1. Models:

    embedded     the trained embedded target (GPT-2, 2 layers, n_embd 128; answers end in EOS)
    gpt2-4x256   a randomly initialised GPT-2 (4 layers, n_embd 256, 4 heads) with the embedded
                 tokenizer: more work per token, and it rarely emits EOS, so every prompt runs
                 to max_new_tokens (skip with --no-big)

Each mode runs `--repeats` times, interleaved (batched, single, batched, ...), after one
untimed warm-up call; reported: the median wall time, items per second, the ratio of the
one-at-a-time median to the batched median, and whether the outputs are identical.
`--threads` and `--batch-size` take comma-separated lists: every combination is measured in the
same run (the one-at-a-time baseline again under each thread count, so every ratio compares two
runs taken side by side). Intra-op threads default to 1: on a small shared machine extra threads
spin against other processes and make a tiny model's per-op time explode (one addmm of
32×128·128×384: ~50 µs on one thread, ~10 ms on two with another process busy) — measure with
more threads only on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from pareto.metrics.generation import greedy_answers
from pareto.models.embedded import build_embedded_target, load_target


def big_random_gpt2(tokenizer, n_positions: int, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=256, n_layer=4,
                        n_head=4, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config).eval()


def measure(model, tokenizer, questions, *, max_new_tokens: int, batch_size: int, repeats: int) -> dict:
    def run(bs):
        start = time.perf_counter()
        out = greedy_answers(model, tokenizer, questions, max_new_tokens=max_new_tokens, batch_size=bs)
        return time.perf_counter() - start, out

    run(batch_size)  # warm-up (allocator, first-call overheads)
    times = {"batched": [], "single": []}
    outputs = {}
    for _ in range(repeats):
        for mode, bs in (("batched", batch_size), ("single", 1)):
            t, out = run(bs)
            times[mode].append(t)
            outputs[mode] = out
    med = {m: statistics.median(ts) for m, ts in times.items()}
    return {
        "n_params": sum(p.numel() for p in model.parameters()),
        "items": len(questions),
        "times": times,
        "median_s": med,
        "items_per_s": {m: len(questions) / t for m, t in med.items()},
        "speedup": med["single"] / med["batched"],
        "identical": outputs["batched"] == outputs["single"],
        "mean_words": sum(len(o.split()) for o in outputs["batched"]) / len(questions),
    }


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=200, help="questions (at most the target's QA count)")
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--batch-size", type=_ints, default=[32], help="e.g. 32 or 32,64")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=_ints, default=[1], help="e.g. 1 or 1,2")
    ap.add_argument("--no-big", action="store_true", help="skip the random 4×256 GPT-2")
    ap.add_argument("--smoke", action="store_true", help="20 items, 1 repeat")
    ap.add_argument("--json", type=Path, help="also write every number here")
    args = ap.parse_args()
    if args.smoke:
        args.items, args.repeats = 20, 1

    path = build_embedded_target(log=lambda s: None)
    model, tokenizer, manifest = load_target(path)
    rows = [json.loads(line) for name in ("forget.jsonl", "retain.jsonl")
            for line in (path / name).read_text().splitlines()]
    questions = [r["question"] for r in rows][:args.items]

    models = {"embedded": model}
    if not args.no_big:
        models["gpt2-4x256 (random)"] = big_random_gpt2(tokenizer, n_positions=model.config.n_positions)
    load = os.getloadavg()[0]
    results = {}
    for name, m in models.items():
        for threads in args.threads:
            torch.set_num_threads(threads)
            for bs in args.batch_size:
                results[f"{name} | {threads} | {bs}"] = measure(
                    m, tokenizer, questions, max_new_tokens=args.max_new_tokens, batch_size=bs,
                    repeats=args.repeats)

    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} before / "
          f"{os.getloadavg()[0]:.2f} after; torch {torch.__version__}")
    print(f"{len(questions)} questions, max_new_tokens {args.max_new_tokens}, "
          f"median of {args.repeats} interleaved runs\n")
    print("| model | threads | batch | params | batched (s) | one at a time (s) | batched items/s | "
          "one-at-a-time items/s | speed-up | identical outputs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, r in results.items():
        print(f"| {key} | {r['n_params'] / 1e6:.2f} M | {r['median_s']['batched']:.2f} | "
              f"{r['median_s']['single']:.2f} | {r['items_per_s']['batched']:.0f} | "
              f"{r['items_per_s']['single']:.1f} | {r['speedup']:.1f}× | "
              f"{'yes' if r['identical'] else 'NO'} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
