#!/usr/bin/env python
"""What one unlearning step costs: the engine's step against GDiff done the usual way.

    python benchmarks/step_cost.py                  # the default run (~6 min on a quiet 2-core machine)
    python benchmarks/step_cost.py --smoke          # a fast check that everything runs
    python benchmarks/step_cost.py --json out.json  # also write every number to a file

Variants, on the same model, the same batches and the same optimizer (Adam):

    gdiff_usual       the standard torch step: forward on retain, forward on forget, ONE
                      backward through c·L_R − (1−c)·L_F (c = 0.5), optimizer.step(); gradients
                      dropped with zero_grad(set_to_none=True) (PyTorch's default)
    gdiff_usual_zero  the same with zero_grad(set_to_none=False) (gradients zero-filled)
    ngdiff            UnlearnEngine: combiner ngdiff, objective ga, lr rule fixed
    gdiff_engine      UnlearnEngine: combiner gdiff (c = 0.5), objective ga, lr rule fixed
    npo               UnlearnEngine: combiner ngdiff, objective npo (reference log-probs
                      prepared once before timing, not timed), lr rule fixed
    autolr            UnlearnEngine: combiner ngdiff, objective ga, lr rule autolr (K = 10)

every engine variant with measure_after=False. The reference ("usual") is whichever of the
two usual variants has the lower median step time in this run; the report says which.

Each variant runs blocks of `--steps` steps (20 by default, so AutoLR's probes at steps 0 and
10 are averaged in); before every block the model is reset to the same pristine weights,
gradients are dropped and a fresh Adam is built, so every block does identical work. Blocks are
interleaved round-robin in rotating order (repetition r starts with variant r mod 6), so
machine noise hits all variants alike; each step is timed too. Reported per variant, with its
ratio to the reference: ms/step = for every step index the median over repetitions, averaged
over the block (robust to a passing hiccup, and AutoLR's probe steps keep their weight); the
median over repetitions of block time / steps; and the median of the per-repetition ratios.
The tiny model gets `--reps-tiny` repetitions (its blocks take well under a second).

A shared machine: with 2 OpenMP threads on 2 cores, a step slows down 10–100× while another
process holds a core. Every repetition therefore waits (up to `--quiet-wait` seconds in all)
for other processes to use < `--quiet-cores` cores (/proc/stat minus this process's own CPU
time), is abandoned and run again if they take CPU while it runs (checked once a second), and
is metered as a whole; medians use the clean repetitions when there are at least 3. On a quiet
machine the default run takes about 6 minutes; on a busy one it waits.

Peak memory: every variant runs `--mem-steps` steps in a fresh subprocess. The child resets its
peak-RSS watermark (/proc/self/clear_refs ← 5) after loading the model and batches and reads
VmHWM after the steps: step peak = that watermark − the RSS just before the variant was built,
minus the same for a baseline child that runs no step. (The child's ru_maxrss is not used: on
Linux it carries the forking parent's RSS across fork+exec, so it reads the benchmark process's
own size for every variant.) Analytic bytes (parameters, gradient buffers, Adam state, bytes
saved for backward by one training forward) are reported beside it.

The profile (on by default) times the parts of the step separately, to explain the ratios.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pareto.core.combiners import build_combiner
from pareto.core.engine import UnlearnEngine, gram_entries
from pareto.core.lr import LR_RULES
from pareto.core.objectives import OBJECTIVES
from pareto.core.optim import step_direction
from pareto.data.qa import IGNORE, Batches, encode_qa
from pareto.lm import LM_TASK, answer_ce

VARIANTS = ("gdiff_usual", "gdiff_usual_zero", "ngdiff", "gdiff_engine", "npo", "autolr")
USUAL = ("gdiff_usual", "gdiff_usual_zero")
MODELS = ("tiny", "small")
MIB = 2**20
#: the profile's row for the engine's AutoLR probe (u = step_direction once per parameter; the
#: + point is 2θ − (θ − η·u))
PROBE_PART = "AutoLR probe (engine): θ save/restore, 1× step_direction, 2 fwd"


# ----------------------------------------------------------------------------------------------
# workloads: a model, its pristine weights, and fixed lists of retain and forget batches


@dataclass
class Workload:
    name: str
    model: torch.nn.Module
    retain: list[dict]
    forget: list[dict]
    forget_all: list[dict]  # every forget example once (NPO's reference log-probabilities)
    desc: dict
    pristine: dict = field(default_factory=dict)
    npo: object = None  # the NPO objective, prepared once on the pristine weights

    def __post_init__(self) -> None:
        self.pristine = copy.deepcopy(self.model.state_dict())

    def reset(self) -> None:
        self.model.load_state_dict(self.pristine)
        for p in self.model.parameters():
            p.grad = None
        self.model.train()

    def prepare_npo(self) -> None:
        self.reset()
        self.npo = OBJECTIVES.build("npo")
        self.npo.task = LM_TASK
        self.npo.prepare(self.model, self.forget_all)


def _read_jsonl(path: Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def tiny_workload(args, n_batches: int) -> Workload:
    """The embedded target itself (trained tiny GPT-2, real synthetic QA batches)."""
    from pareto.models.embedded import EmbeddedConfig, build_embedded_target, load_target

    path = Path(build_embedded_target(EmbeddedConfig(), log=lambda s: print(s, file=sys.stderr)))
    model, tok, manifest = load_target(path)
    enc = lambda rows: [encode_qa(tok, r["question"], r["answer"]) for r in rows]  # noqa: E731
    forget = Batches(enc(_read_jsonl(path / "forget.jsonl")), args.batch_size, tok.pad_token_id, 0)
    retain = Batches(enc(_read_jsonl(path / "retain.jsonl")), args.batch_size, tok.pad_token_id, 1)
    rb = [retain.next() for _ in range(n_batches)]
    fb = [forget.next() for _ in range(n_batches)]
    cfg = manifest["config"]
    desc = {"kind": "embedded target (trained, real QA batches)", "n_layer": cfg["n_layer"],
            "n_embd": cfg["n_embd"], "n_head": cfg["n_head"], "vocab": manifest["vocab_size"],
            "batch": args.batch_size,
            "seq_len": f"{min(b['input_ids'].shape[1] for b in rb + fb)}–"
                       f"{max(b['input_ids'].shape[1] for b in rb + fb)} (padded per batch)"}
    return Workload("tiny", model, rb, fb, forget.all(), desc)


def small_workload(args, n_batches: int) -> Workload:
    """A GPT-2 from config with random weights, random tokens, answer-only labels (2nd half)."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(args.seed)
    config = GPT2Config(vocab_size=args.vocab, n_positions=args.seq_len, n_embd=args.n_embd,
                        n_layer=args.n_layer, n_head=args.n_head, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
                        pad_token_id=0)
    model = GPT2LMHeadModel(config)
    gen = torch.Generator().manual_seed(args.seed + 1)
    bs, T = args.batch_size, args.seq_len

    def batch(first_index: int) -> dict:
        ids = torch.randint(1, args.vocab, (bs, T), generator=gen)
        labels = ids.clone()
        labels[:, : T // 2] = IGNORE  # the first half is the "prompt"
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels,
                "index": torch.arange(first_index, first_index + bs)}

    rb = [batch(0) for _ in range(n_batches)]
    fb = [batch(i * bs) for i in range(n_batches)]
    desc = {"kind": "GPT-2 from config, random weights and tokens", "n_layer": args.n_layer,
            "n_embd": args.n_embd, "n_head": args.n_head, "vocab": args.vocab,
            "batch": bs, "seq_len": f"{T} (answer = last {T - T // 2} tokens)"}
    return Workload("small", model, rb, fb, fb, desc)


def build_workload(name: str, args, n_batches: int) -> Workload:
    wl = {"tiny": tiny_workload, "small": small_workload}[name](args, n_batches)
    params = list(unique_params(wl.model))
    wl.desc["params"] = sum(p.numel() for p in params)
    wl.prepare_npo()
    wl.reset()
    return wl


def unique_params(model):
    seen = set()
    for p in model.parameters():  # model.parameters() already skips tied duplicates
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            yield p


# ----------------------------------------------------------------------------------------------
# other processes' CPU use: this machine may be shared, and 2 OpenMP threads on 2 cores slow
# down by 10–100× when another process takes a core, so every repetition is metered


def _busy_cpu_s() -> float:
    """CPU-seconds all CPUs have been busy (user+nice+system+irq+softirq+steal), /proc/stat."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class OtherLoad:
    """Cores used by other processes between start() and stop() (0 where /proc is missing)."""

    def start(self) -> "OtherLoad":
        try:
            self.t, self.busy, self.own = time.perf_counter(), _busy_cpu_s(), _own_cpu_s()
        except (OSError, ValueError, IndexError):
            self.t = None
        return self

    def stop(self) -> float:
        if self.t is None:
            return 0.0
        wall = time.perf_counter() - self.t
        other = (_busy_cpu_s() - self.busy) - (_own_cpu_s() - self.own)
        return max(other, 0.0) / max(wall, 1e-9)


def wait_for_quiet(args, budget: list[float]) -> bool:
    """Wait (from a budget of seconds shared by the whole run) until other processes use
    < --quiet-cores over 1 s. False when the budget ran out first."""
    while True:
        meter = OtherLoad().start()
        time.sleep(1.0)
        other = meter.stop()
        if other < args.quiet_cores:
            return True
        if budget[0] <= 0:
            return False
        print(f"  waiting for a quiet machine: other processes use {other:.2f} cores "
              f"({budget[0]:.0f} s of waiting left)", file=sys.stderr, flush=True)
        time.sleep(4.0)
        budget[0] -= 5.0


class Contaminated(RuntimeError):
    """Other processes took CPU time while a guarded block ran."""


class Guard:
    """Checked after every step; at most once a second it meters the last window and raises
    Contaminated when other processes used more than --quiet-cores."""

    def __init__(self, quiet_cores: float | None) -> None:
        self.quiet_cores = quiet_cores
        self.meter = OtherLoad().start() if quiet_cores is not None else None

    def check(self) -> None:
        if self.meter is None or self.meter.t is None or time.perf_counter() - self.meter.t < 1.0:
            return
        other = self.meter.stop()
        if other > self.quiet_cores:
            raise Contaminated(f"other processes used {other:.2f} cores")
        self.meter.start()


# ----------------------------------------------------------------------------------------------
# the variants


def make_variant(variant: str, wl: Workload, args):
    """Reset the workload; return (step(retain_batch, forget_batch), optimizer, engine or None)."""
    wl.reset()
    model = wl.model
    params = list(unique_params(model))
    opt = torch.optim.Adam(params, lr=args.lr)
    if variant in USUAL:
        c, set_to_none = args.c, variant == "gdiff_usual"

        def step(rb, fb):
            opt.zero_grad(set_to_none=set_to_none)
            loss = c * answer_ce(model, rb) - (1.0 - c) * answer_ce(model, fb)
            loss.backward()
            opt.step()

        return step, opt, None
    combiner = build_combiner("gdiff", c=args.c) if variant == "gdiff_engine" else build_combiner("ngdiff")
    objective = wl.npo if variant == "npo" else OBJECTIVES.build("ga")
    objective.task = LM_TASK
    rule = LR_RULES.build("autolr", every=args.every) if variant == "autolr" else LR_RULES.build("fixed")
    engine = UnlearnEngine(model, combiner, objective, rule, opt, lr=args.lr, retain_loss=LM_TASK.loss)
    return (lambda rb, fb: engine.step(rb, fb, measure_after=False)), opt, engine


def run_block(variant: str, wl: Workload, args, steps: int,
              guard: Guard | None = None) -> tuple[float, list[float], float]:
    """(block seconds, seconds of each step, the lr at the end) for one fresh block."""
    step, opt, engine = make_variant(variant, wl, args)
    gc.collect()
    each = []
    t0 = time.perf_counter()
    for i in range(steps):
        t = time.perf_counter()
        step(wl.retain[i], wl.forget[i])
        each.append(time.perf_counter() - t)
        if guard is not None:
            guard.check()
    dt = time.perf_counter() - t0
    lr = engine.lr if engine is not None else args.lr
    del step, opt, engine
    return dt, each, lr


def time_variants(wl: Workload, args, variants, budget: list[float], reps: int) -> dict:
    """Round-robin, rotating order; per_step_s: {variant: [block time / steps, one per rep]}.

    Before each repetition, wait for a quiet machine; while the waiting budget lasts, a
    repetition during which other processes take CPU is abandoned at the next step and run
    again. Every finished repetition is metered as a whole; medians use the clean ones (all of
    them, flagged, when fewer than 3 are clean)."""
    for v in variants:  # warm-up: allocator, caches, lazy imports; not recorded
        run_block(v, wl, args, args.warmup_steps)
    per_step = {v: [] for v in variants}
    each = {v: [] for v in variants}
    final_lr = {}
    orders, others, abandoned = [], [], 0
    r = 0
    while (sum(o < args.quiet_cores for o in others) < reps
           and len(others) < reps + args.max_extra_reps):
        guarded = wait_for_quiet(args, budget) and args.quiet_wait > 0
        order = list(variants[r % len(variants):]) + list(variants[: r % len(variants)])
        meter = OtherLoad().start()
        guard = Guard(args.quiet_cores if guarded else None)
        rep = {}
        try:
            for v in order:
                rep[v] = run_block(v, wl, args, args.steps, guard)
        except Contaminated as exc:
            abandoned += 1
            print(f"[{wl.name}] repetition abandoned ({exc}); waiting and running it again",
                  file=sys.stderr, flush=True)
            if abandoned > 4 * (reps + args.max_extra_reps):
                raise SystemExit("the machine stays busy; rerun when it is quiet") from None
            continue
        others.append(meter.stop())
        orders.append(order)
        for v in order:
            dt, steps_s, final_lr[v] = rep[v]
            per_step[v].append(dt / args.steps)
            each[v].append(steps_s)
        flag = "" if others[-1] < args.quiet_cores else "  CONTAMINATED"
        line = "  ".join(f"{v} {per_step[v][-1] * 1e3:8.2f}" for v in variants)
        print(f"[{wl.name}] rep {r + 1} ms/step: {line}  (others {others[-1]:.2f} cores){flag}",
              file=sys.stderr, flush=True)
        r += 1
    clean = [i for i, o in enumerate(others) if o < args.quiet_cores]
    used = clean if len(clean) >= min(3, reps) else list(range(len(others)))
    if len(used) != len(clean):
        print(f"warning: [{wl.name}] only {len(clean)} clean repetitions; using all {len(others)}",
              file=sys.stderr)
    return {"per_step_s": {v: [per_step[v][i] for i in used] for v in variants},
            "each_step_s": {v: [each[v][i] for i in used] for v in variants},
            "all_per_step_s": per_step, "other_cores": others, "used_reps": used,
            "abandoned_reps": abandoned, "final_lr": final_lr, "orders": orders}


def autolr_decomposition(timing: dict, args) -> dict:
    """AutoLR's extra time split into its probe steps (step % K == 0) and the other steps,
    each against ngdiff's step of the same index in the same repetition (medians over reps)."""
    K, n = args.every, args.steps
    probes = [i for i in range(n) if i % K == 0]
    others = [i for i in range(n) if i % K]
    per_probe, other_rel = [], []
    for al, ng in zip(timing["each_step_s"]["autolr"], timing["each_step_s"]["ngdiff"]):
        base = statistics.median(ng)
        per_probe.append(sum(al[i] - ng[i] for i in probes) / len(probes))
        if others:
            other_rel.append(sum(al[i] - ng[i] for i in others) / len(others) / base)
    step = statistics.median(timing["per_step_s"]["ngdiff"])
    excess = statistics.median(per_probe)
    return {"probe_step_excess_s": excess, "probe_share": excess / (K * step),
            "other_steps_rel": statistics.median(other_rel) if other_rel else 0.0,
            "lr_start": args.lr, "lr_end": timing["final_lr"]["autolr"]}


# ----------------------------------------------------------------------------------------------
# analytic bytes


def saved_activation_bytes(wl: Workload) -> int:
    """Bytes autograd saves for backward in one training forward of answer_ce (params excluded)."""
    wl.reset()
    param_storages = {p.untyped_storage().data_ptr() for p in wl.model.parameters()}
    seen: set[int] = set()
    total = 0

    def pack(t):
        nonlocal total
        s = t.untyped_storage()
        if s.data_ptr() not in param_storages and s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            total += s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = answer_ce(wl.model, wl.retain[0])
    del loss
    wl.reset()
    return total


def analytic_bytes(variant: str, wl: Workload, args) -> dict:
    step, opt, engine = make_variant(variant, wl, args)
    step(wl.retain[0], wl.forget[0])
    params = list(unique_params(wl.model))
    param_b = sum(p.numel() * p.element_size() for p in params)
    if engine is None:
        grad_b = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    else:
        grad_b = 2 * engine.gradient_buffer_bytes()
    opt_b = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                if torch.is_tensor(t))
    wl.reset()
    return {"param_bytes": param_b, "grad_bytes": grad_b, "opt_state_bytes": opt_b,
            "one_grad_buffer_bytes": param_b}


# ----------------------------------------------------------------------------------------------
# peak memory: one fresh subprocess per variant


def _proc_status_kib(*keys: str) -> dict[str, int]:
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            if k in keys:
                fields[k] = int(v.split()[0])
    return fields


def child_main(args) -> None:
    """One variant in a fresh process. Prints its load-time peak RSS, the RSS just before the
    variant is built, and the peak RSS from then until after its steps (VmHWM, reset via
    /proc/self/clear_refs)."""
    import ctypes

    torch.set_num_threads(args.threads)
    wl = build_workload(args.models[0], args, max(args.mem_steps, 1))
    gc.collect()
    try:  # give freed heap back to the OS so that the steps' allocations show up in RSS
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    load = _proc_status_kib("VmRSS", "VmHWM")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak-RSS watermark (VmHWM) to the current RSS
        hwm_reset = True
    except OSError:
        hwm_reset = False
    if args.child != "baseline":
        step, opt, engine = make_variant(args.child, wl, args)
        for i in range(args.mem_steps):
            step(wl.retain[i], wl.forget[i])
    after = _proc_status_kib("VmRSS", "VmHWM")
    print(json.dumps({"variant": args.child, "load_hwm_kib": load["VmHWM"],
                      "rss_before_kib": load["VmRSS"], "hwm_kib": after["VmHWM"],
                      "rss_after_kib": after["VmRSS"], "hwm_reset": hwm_reset}))


def child_argv(args, model: str, variant: str) -> list[str]:
    argv = [sys.executable, os.path.abspath(__file__), "--child", variant, "--models", model,
            "--threads", str(args.threads), "--mem-steps", str(args.mem_steps)]
    for name in ("n_layer", "n_embd", "n_head", "vocab", "seq_len", "batch_size", "lr", "c",
                 "every", "seed"):
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return argv


def run_child(argv: list[str]) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {argv[3]} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_memory(args, model: str, variants) -> dict:
    """Per variant (and a baseline that runs no step), median over --mem-reps subprocesses of
    the step peak (peak RSS while the variant is built and runs its steps − RSS just before)
    and of the whole-process peak (max of the load-time and the step watermarks)."""
    names = ["baseline", *variants]
    step_peak: dict[str, list[int]] = {n: [] for n in names}
    proc_peak: dict[str, list[int]] = {n: [] for n in names}
    hwm_reset = True
    for r in range(args.mem_reps):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            info = run_child(child_argv(args, model, n))
            step_peak[n].append((info["hwm_kib"] - info["rss_before_kib"]) * 1024)
            proc_peak[n].append(max(info["load_hwm_kib"], info["hwm_kib"]) * 1024)
            hwm_reset &= info["hwm_reset"]
        print(f"[{model}] memory rep {r + 1}/{args.mem_reps}, step peak MiB: "
              + "  ".join(f"{n} {step_peak[n][-1] / MIB:.1f}" for n in names)
              + f"  (process peak: baseline {proc_peak['baseline'][-1] / MIB:.1f})",
              file=sys.stderr, flush=True)
    if not hwm_reset:
        print("warning: /proc/self/clear_refs not writable; step peaks include loading",
              file=sys.stderr)
    med = lambda d: {n: statistics.median(v) for n, v in d.items()}  # noqa: E731
    return {"step_peak_bytes": med(step_peak), "process_peak_bytes": med(proc_peak),
            "runs": {"step_peak_bytes": step_peak, "process_peak_bytes": proc_peak},
            "hwm_reset": hwm_reset}


# ----------------------------------------------------------------------------------------------
# profile: the parts of the step, timed separately


def _median_time(fn, reps: int, inner: int = 1) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t0) / inner)
    return statistics.median(out)


def _interleaved_medians(fns: dict, reps: int) -> dict[str, float]:
    """Median time of each fn, the fns run round-robin (rotating) so that noise hits all alike."""
    names, times = list(fns), {k: [] for k in fns}
    for r in range(reps):
        for k in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def profile_parts(wl: Workload, args) -> dict:
    """Times of the parts of the steps. The expensive parts are timed interleaved; the O(n)
    buffer operations in tight loops. Returns {part: seconds} and notes."""
    reps, cheap = args.profile_reps, 4 * args.profile_reps
    rb, fb = wl.retain[0], wl.forget[0]
    model, c = wl.model, args.c
    step, opt, engine = make_variant("ngdiff", wl, args)
    for i in range(2):  # Adam state exists, buffers warm
        step(wl.retain[i], wl.forget[i])
    e = engine
    params = e.params
    # flat gradient buffers with views as the engine keeps them (the benchmark's own: the O(n)
    # parts and the fwd + bwd into views are timed on these)
    n = sum(p.numel() for p in params)
    r, g = (torch.zeros(n, dtype=params[0].dtype, device=params[0].device) for _ in range(2))

    def views(flat):
        out, offset = [], 0
        for p in params:
            out.append(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return out

    views_r, views_g = views(r), views(g)

    def grads_into(vs):
        for p, v in zip(params, vs):
            p.grad = v

    # the usual steps keep their own gradient tensors and their own Adam
    uopt = torch.optim.Adam(params, lr=args.lr)
    own = {}

    def usual(set_to_none: bool, do_step: bool = True):
        for p in params:
            p.grad = own.get(p)
        uopt.zero_grad(set_to_none=set_to_none)
        (c * answer_ce(model, rb) - (1.0 - c) * answer_ce(model, fb)).backward()
        if do_step:
            uopt.step()
        own.update({p: p.grad for p in params})

    def engine_fwd_bwd_twice():
        for flat, vs, batch in ((r, views_r, rb), (g, views_g, fb)):
            flat.zero_()
            grads_into(vs)
            answer_ce(model, batch).backward()

    def fwd_nograd():
        with torch.no_grad():
            answer_ce(model, rb).item()

    usual(False)
    probe = e.line_probe(rb, 1.0)
    big = _interleaved_medians({
        "engine step (ngdiff, fixed)": lambda: step(rb, fb),
        "usual step, zero_grad(set_to_none=True)": lambda: usual(True),
        "usual step, zero_grad(set_to_none=False)": lambda: usual(False),
        "engine: 2 × (zero buffer, view swap, fwd + bwd)": engine_fwd_bwd_twice,
        "usual: 2 fwd + 1 bwd of the sum (set_to_none=True)": lambda: usual(True, False),
        "forward, no_grad (one AutoLR probe forward)": fwd_nograd,
        PROBE_PART: lambda: probe(args.lr),
    }, reps)
    for p in params:
        p.grad = own[p]
    big["optimizer.step() (Adam, separate grads)"] = _median_time(uopt.step, reps)
    grads_into(views_g)
    big["optimizer.step() (Adam, grads = flat-buffer views)"] = _median_time(opt.step, reps)
    res = dict(big)
    res["zero one flat buffer"] = _median_time(r.zero_, cheap, 5)
    res["grad-view swap (p.grad = view, every parameter)"] = _median_time(lambda: grads_into(views_g), cheap, 5)
    engine_fwd_bwd_twice()  # real gradients in both buffers for the O(n) arithmetic below
    res["Gram: gram_entries (3 dots, .double().tolist())"] = _median_time(
        lambda: gram_entries(r, g), cheap, 5)
    both = torch.stack([r, g])  # what one (2, n) buffer would allow; profile only
    res["Gram as one (2,n)@(n,2) matmul (alternative)"] = _median_time(
        lambda: (both @ both.T).double().tolist(), cheap, 5)
    res["d formation: g.mul_(-w_F).add_(r, alpha=w_R)"] = _median_time(
        lambda: g.mul_(-0.5).add_(r, alpha=0.5), cheap, 5)

    def step_dirs():
        for p in params:
            step_direction(opt, p)

    res["step_direction over all params, once"] = _median_time(step_dirs, reps)
    notes = {"probe_losses": probe(args.lr)}
    gc.collect()
    wl.reset()
    return {"parts_s": res, "notes": notes}


# ----------------------------------------------------------------------------------------------
# reporting


def robust_step_s(runs: list[list[float]]) -> float:
    """Block time per step, robust to a passing hiccup: for every step index the median over
    repetitions, then the mean over the block (AutoLR's probe steps keep their weight)."""
    return statistics.fmean(statistics.median(col) for col in zip(*runs))


def summarise(timing: dict, variants) -> dict:
    """step_s (the primary number): robust_step_s; block_median_s: the median over repetitions
    of block time / steps; paired: the median over repetitions of the ratio of block times.
    The reference is the faster (by step_s) of the two usual variants."""
    ps, each = timing["per_step_s"], timing["each_step_s"]
    step = {v: robust_step_s(each[v]) for v in variants}
    med = {v: statistics.median(ps[v]) for v in variants}
    ref = min(USUAL, key=lambda v: step[v])
    out = {"reference": ref, "variants": {}}
    for v in variants:
        out["variants"][v] = {
            "step_s": step[v], "block_median_s": med[v], "min_s": min(ps[v]), "max_s": max(ps[v]),
            "ratio_vs_ref": step[v] / step[ref], "block_ratio_vs_ref": med[v] / med[ref],
            "paired_ratio_vs_ref": statistics.median(a / b for a, b in zip(ps[v], ps[ref])),
            "ratio_vs_ngdiff": step[v] / step["ngdiff"],
            "block_ratio_vs_ngdiff": med[v] / med["ngdiff"],
            "paired_ratio_vs_ngdiff": statistics.median(a / b for a, b in zip(ps[v], ps["ngdiff"])),
        }
    return out


def mem_delta(mem: dict) -> dict:
    """Step peak of each variant minus that of the baseline child (which runs no step)."""
    sp = mem["step_peak_bytes"]
    return {v: sp[v] - sp["baseline"] for v in sp if v != "baseline"}


def evaluate_targets(name: str, summ: dict, mem: dict | None, analytic: dict, args) -> list[dict]:
    t, ref = [], summ["reference"]
    sv = summ["variants"]
    ng = sv["ngdiff"]
    t.append({"model": name, "target": "ngdiff step time ≤ 1.05× gdiff_usual",
              "value": f"{ng['ratio_vs_ref']:.3f}× vs {ref} (block medians {ng['block_ratio_vs_ref']:.3f}×, "
                       f"paired {ng['paired_ratio_vs_ref']:.3f}×)",
              "pass": ng["ratio_vs_ref"] <= 1.05})
    if mem is not None:
        d, pp = mem_delta(mem), mem["process_peak_bytes"]
        buf = analytic["ngdiff"]["one_grad_buffer_bytes"]
        t.append({"model": name, "target": "ngdiff peak memory ≤ gdiff_usual's + one gradient buffer",
                  "value": f"{(d['ngdiff'] - d[ref]) / MIB:+.1f} MiB vs {ref}; allowance "
                           f"+{buf / MIB:.1f} MiB",
                  "pass": d["ngdiff"] <= d[ref] + buf})
        t.append({"model": name, "target": "npo peak memory ≤ 1.05× gdiff_usual's",
                  "value": f"{d['npo'] / max(d[ref], 1):.3f}× of the step peak "
                           f"({d['npo'] / MIB:.1f} vs {d[ref] / MIB:.1f} MiB); whole process "
                           f"{pp['npo'] / pp[ref]:.3f}×",
                  "pass": d["npo"] <= 1.05 * d[ref]})
    al = sv["autolr"]
    t.append({"model": name, "target": f"autolr (K={args.every}) wall time ≤ 1.07× fixed",
              "value": f"{al['ratio_vs_ngdiff']:.3f}× vs ngdiff (block medians "
                       f"{al['block_ratio_vs_ngdiff']:.3f}×, paired {al['paired_ratio_vs_ngdiff']:.3f}×)",
              "pass": al["ratio_vs_ngdiff"] <= 1.07})
    return t


def fmt_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report(results: dict, args) -> str:
    out = []
    for name, res in results["models"].items():
        d = res["desc"]
        out.append(f"### {name}: {d['kind']} — {d['params']:,} parameters, n_layer={d['n_layer']}, "
                   f"n_embd={d['n_embd']}, n_head={d['n_head']}, vocab={d['vocab']}, "
                   f"batch {d['batch']} retain + {d['batch']} forget, seq {d['seq_len']}")
        out.append("")
        an, mem, summ = res["analytic"], res.get("memory"), res["summary"]
        ref = summ["reference"]
        md = mem_delta(mem) if mem is not None else None
        rows = []
        for v in VARIANTS:
            sv = summ["variants"][v]
            row = [v + (" (ref)" if v == ref else ""), f"{sv['step_s'] * 1e3:.2f}",
                   f"{sv['ratio_vs_ref']:.3f}", f"{sv['block_median_s'] * 1e3:.2f}",
                   f"{sv['min_s'] * 1e3:.2f}–{sv['max_s'] * 1e3:.2f}",
                   f"{sv['block_ratio_vs_ref']:.3f}", f"{sv['paired_ratio_vs_ref']:.3f}"]
            if md is not None:
                row += [f"{md[v] / MIB:.1f}", f"{(md[v] - md[ref]) / MIB:+.1f}",
                        f"{mem['process_peak_bytes'][v] / MIB:.1f}"]
            row += [f"{an[v]['grad_bytes'] / MIB:.2f}", f"{an[v]['opt_state_bytes'] / MIB:.2f}"]
            rows.append(row)
        header = ["variant", "ms/step", "× ref", "block median ms/step", "block range",
                  "× ref (block medians)", "× ref (paired blocks)"]
        if md is not None:
            header += ["step peak MiB", "vs ref MiB", "process peak MiB"]
        header += ["grad buffers MiB", "Adam state MiB"]
        out.append(fmt_table(header, rows))
        out.append("")
        tm = res["timing"]
        oc = tm["other_cores"]
        out.append(f"{len(tm['used_reps'])} repetitions used of {len(oc)} run, {tm['abandoned_reps']} abandoned "
                   f"and rerun ({args.steps}-step blocks per "
                   f"variant; other processes' CPU use per repetition: "
                   f"{', '.join(f'{o:.2f}' for o in oc)} cores; contaminated above {args.quiet_cores}); "
                   f"ref = {ref}, the "
                   f"faster of the two usual variants here. Parameters {an['ngdiff']['param_bytes'] / MIB:.2f} MiB "
                   f"= one gradient buffer (engine.gradient_buffer_bytes()); one training forward saves "
                   f"{res['activation_bytes'] / MIB:.2f} MiB for backward (the usual step holds two such "
                   f"graphs at once, the engine one at a time).")
        if mem is not None:
            out.append(f"Step peak = peak RSS while the variant is built and runs {args.mem_steps} steps "
                       f"− the RSS just before, minus the same for a baseline child that runs no step "
                       f"({mem['step_peak_bytes']['baseline'] / MIB:.1f} MiB); median of {args.mem_reps} "
                       f"fresh processes. Whole-process peak of the baseline: "
                       f"{mem['process_peak_bytes']['baseline'] / MIB:.1f} MiB.")
        out.append("")
        e = res["autolr_expected"]
        line = (f"AutoLR overhead expected (K={args.every}): 2 forwards per K steps on a step of 2 forwards + "
                f"2 backwards ≈ 6 forward units → 2/(6K) = {e['unit_count'] * 100:.1f} %")
        if e.get("fwd_ms") is not None:
            line += (f"; with this run's no-grad forward ({e['fwd_ms']:.2f} ms) and whole probe "
                     f"({e['probe_ms']:.2f} ms) against the ngdiff step ({e['step_ms']:.2f} ms): "
                     f"{e['measured_fwd'] * 100:.1f} % (forwards only), {e['measured_probe'] * 100:.1f} % "
                     f"(whole probe)")
        line += (f"; measured {(summ['variants']['autolr']['ratio_vs_ngdiff'] - 1) * 100:+.1f} % "
                 f"(block medians {(summ['variants']['autolr']['block_ratio_vs_ngdiff'] - 1) * 100:+.1f} %, "
                 f"paired {(summ['variants']['autolr']['paired_ratio_vs_ngdiff'] - 1) * 100:+.1f} %).")
        out.append(line)
        sp = res["autolr_split"]
        out.append(f"Where AutoLR's time goes (per repetition against ngdiff's step of the same index): each "
                   f"probe step costs {sp['probe_step_excess_s'] * 1e3:+.1f} ms more ({sp['probe_share'] * 100:.1f} % "
                   f"of the step at K={args.every}); the other steps {sp['other_steps_rel'] * 100:+.1f} %. AutoLR moved "
                   f"η from {sp['lr_start']:g} to {sp['lr_end']:.3g}, so the two variants' weights differ after step 0.")
        out.append("")
        if res.get("profile"):
            parts = res["profile"]["parts_s"]
            step_ms = parts["engine step (ngdiff, fixed)"] * 1e3
            out.append(f"Profile (other processes used {res['profile']['other_cores']:.2f} cores meanwhile):")
            out.append("")
            out.append(fmt_table(["part (profile, median)", "ms", "% of the engine step"],
                                 [[k, f"{v * 1e3:.3f}", f"{v * 1e3 / step_ms * 100:.1f}"]
                                  for k, v in parts.items()]))
            out.append("")
    out.append(fmt_table(["model", "target", "measured", "result"],
                         [[t["model"], t["target"], t["value"], "pass" if t["pass"] else "MISS"]
                          for t in results["targets"]]))
    return "\n".join(out)


def machine_info(args) -> dict:
    model_name = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model_name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import transformers

    return {"cpu": model_name, "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_start": os.getloadavg(), "gpu": False}


# ----------------------------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a fast run: small sizes, few steps")
    ap.add_argument("--models", default="tiny,small", help="comma list of: tiny, small")
    ap.add_argument("--n-layer", type=int, default=4, help="small: GPT-2 layers")
    ap.add_argument("--n-embd", type=int, default=256, help="small: width")
    ap.add_argument("--n-head", type=int, default=4, help="small: heads")
    ap.add_argument("--vocab", type=int, default=2048, help="small: vocabulary size")
    ap.add_argument("--seq-len", type=int, default=64, help="small: tokens per example")
    ap.add_argument("--batch-size", type=int, default=8, help="retain and forget batch size")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block (≥ 2·K for autolr)")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions of every variant's block")
    ap.add_argument("--reps-tiny", type=int, default=15,
                    help="repetitions for the tiny model (its blocks take well under a second)")
    ap.add_argument("--warmup-steps", type=int, default=3, help="untimed warm-up block per variant")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--c", type=float, default=0.5, help="GDiff's c (gdiff_usual, gdiff_engine)")
    ap.add_argument("--every", type=int, default=10, help="AutoLR's K")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet-cores", type=float, default=0.25,
                    help="a repetition during which other processes used more cores is "
                         "contaminated (and repeated while --max-extra-reps allow)")
    ap.add_argument("--max-extra-reps", type=int, default=3)
    ap.add_argument("--quiet-wait", type=float, default=900.0,
                    help="seconds, in all, to wait for other processes to go quiet (0: never "
                         "wait and never abandon a repetition)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    ap.add_argument("--mem-steps", type=int, default=3, help="steps per memory subprocess")
    ap.add_argument("--mem-reps", type=int, default=2, help="subprocesses per variant (median)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--profile-reps", type=int, default=5)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in args.models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    if args.smoke and not args.child:
        args.n_layer, args.n_embd, args.n_head, args.vocab, args.seq_len = 1, 64, 2, 512, 32
        args.steps, args.reps, args.reps_tiny, args.warmup_steps, args.every = 10, 2, 2, 1, 5
        args.mem_steps, args.mem_reps, args.profile_reps = 2, 1, 2
        args.quiet_wait, args.max_extra_reps = 0.0, 0  # a smoke run checks that it runs, no more
    if not args.child and args.steps % args.every:
        print(f"note: --steps {args.steps} is not a multiple of K={args.every}: the autolr blocks "
              "do not average exactly one probe per K steps", file=sys.stderr)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        child_main(args)
        return 0
    t_start = time.perf_counter()
    results = {"machine": machine_info(args),
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "command": " ".join(["python", *sys.argv]), "models": {}, "targets": []}
    if results["machine"]["loadavg_start"][0] > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {results['machine']['loadavg_start'][0]:.2f} at start; other "
              "processes share the CPUs and will inflate and scatter the times", file=sys.stderr)
    budget = [float(args.quiet_wait)]  # seconds of waiting for a quiet machine, shared by all
    for name in args.models:
        wl = build_workload(name, args, max(args.steps, args.warmup_steps, args.mem_steps, 2))
        res: dict = {"desc": wl.desc}
        reps = args.reps_tiny if name == "tiny" else args.reps
        res["timing"] = time_variants(wl, args, VARIANTS, budget, reps)
        res["summary"] = summarise(res["timing"], VARIANTS)
        res["autolr_split"] = autolr_decomposition(res["timing"], args)
        res["analytic"] = {v: analytic_bytes(v, wl, args) for v in VARIANTS}
        res["activation_bytes"] = saved_activation_bytes(wl)
        if args.no_profile:
            res["profile"] = None
        else:
            for attempt in range(2):  # once more if other processes took CPU meanwhile
                wait_for_quiet(args, budget)
                meter = OtherLoad().start()
                res["profile"] = profile_parts(wl, args)
                res["profile"]["other_cores"] = meter.stop()
                if res["profile"]["other_cores"] < args.quiet_cores:
                    break
        step_s = res["summary"]["variants"]["ngdiff"]["step_s"]
        exp = {"unit_count": 2.0 / (6.0 * args.every)}
        if res["profile"]:
            parts = res["profile"]["parts_s"]
            fwd = parts["forward, no_grad (one AutoLR probe forward)"]
            probe = parts[PROBE_PART]
            exp.update(fwd_ms=fwd * 1e3, probe_ms=probe * 1e3, step_ms=step_s * 1e3,
                       measured_fwd=2 * fwd / (args.every * step_s),
                       measured_probe=probe / (args.every * step_s))
        res["autolr_expected"] = exp
        del wl
        gc.collect()
        res["memory"] = None if args.no_memory else measure_memory(args, name, VARIANTS)
        results["models"][name] = res
        results["targets"] += evaluate_targets(name, res["summary"], res["memory"], res["analytic"], args)
    noisy = [f"{name}/{v}" for name, res in results["models"].items()
             for v, sv in res["summary"]["variants"].items() if sv["max_s"] > 1.25 * sv["min_s"]]
    results["noisy"] = noisy
    if noisy:
        print(f"warning: block times of {', '.join(noisy)} vary by more than 25 % across the "
              "repetitions used", file=sys.stderr)
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - t_start
    print(report(results, args))
    m = results["machine"]
    print(f"\n{m['cpu']} ({m['cpus']} CPUs), torch {m['torch']}, {args.threads} threads; load "
          f"average {m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end; "
          f"{results['wall_s']:.0f} s in all. CPU only: no number here was measured on a GPU.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
