"""Real-size models in limited memory: precision, gradient checkpointing, LoRA, what a trial needs.

The spec's `unlearn` section chooses (see docs/sweeps.md):

    dtype         float32 (default) | bfloat16 (pure: parameters, gradients, optimizer state)
    autocast      bfloat16: fp32 master weights, forward passes under torch.autocast
    grad_dtype    param (default: the gradient buffers in the parameters' dtype) | float32 (g_R and
                  g_F, then d, in fp32 — with bf16 parameters, exact accumulation and Gram sums)
    grad_accum    micro-batches per batch (default 1): both the forget and the retain batch are
                  split and accumulated exactly (pareto.core.engine)
    gradient_checkpointing   recompute activations in the backward (HF models)
    lora          {r, alpha, dropout, target_modules}: LoRA adapters through peft; the target stays
                  frozen and shared, and the two gradients, the Gram matrix and AutoLR live on
                  the adapter parameters only (the engine works on what requires grad)

`estimate_bytes` is what a trial needs beyond activations (parameters, the engine's two gradient
buffers, the optimizer's state), for the message of a trial that runs out of memory.
"""

from __future__ import annotations

import torch

__all__ = ["LORA_KEYS", "apply_lora", "check_lora", "enable_checkpointing", "make_deterministic", "estimate_bytes",
           "out_of_memory_message"]

#: the settings of `unlearn.lora` (apply_lora's parameters)
LORA_KEYS = ("r", "alpha", "dropout", "target_modules")


def check_lora(lora, add) -> None:
    """`unlearn.lora` from the spec: a mapping of LORA_KEYS with an integer rank ≥ 1
    (add(key_path, message): the spec's problem list)."""
    from pareto._registry import did_you_mean

    if not isinstance(lora, dict):
        add(("unlearn", "lora"), f"lora must be a mapping such as {{r: 16, alpha: 32}}, got {lora!r}")
        return
    for k in lora:
        if k not in LORA_KEYS:
            add(("unlearn", "lora", k), f"unknown LoRA setting {k!r}.{did_you_mean(str(k), list(LORA_KEYS))} "
                                        f"Available: {', '.join(LORA_KEYS)}")
    if not (isinstance(lora.get("r", 16), int) and lora.get("r", 16) >= 1):
        add(("unlearn", "lora", "r"), f"r must be an integer ≥ 1, got {lora.get('r')!r}")


def make_deterministic() -> None:
    """Deterministic GPU kernels and no TF32: what pins a GPU run's numbers (docs/reliability.md)."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


def enable_checkpointing(model) -> None:
    """Gradient checkpointing on a transformers model (activations recomputed in the backward)."""
    if not hasattr(model, "gradient_checkpointing_enable"):
        raise ValueError(f"{type(model).__name__} does not support gradient checkpointing "
                         "(it is for transformers models); set unlearn.gradient_checkpointing: false")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if getattr(model, "config", None) is not None:
        model.config.use_cache = False


def apply_lora(model, r: int = 16, alpha: float = 32.0, dropout: float = 0.0,
               target_modules: str | list[str] = "all-linear"):
    """The model with LoRA adapters (peft); only the adapters require grad."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ImportError('unlearn.lora needs peft: pip install "pareto-unlearn[lora]"') from None
    from transformers.pytorch_utils import Conv1D

    conv1d = any(isinstance(m, Conv1D) for m in model.modules())  # GPT-2 stores its linears transposed
    config = LoraConfig(r=int(r), lora_alpha=float(alpha), lora_dropout=float(dropout),
                        target_modules=target_modules, bias="none", fan_in_fan_out=conv1d)
    return get_peft_model(model, config)


def estimate_bytes(model, optimizer_name: str, grad_dtype: torch.dtype | None = None) -> dict:
    """Bytes for parameters, the engine's gradient buffers and the optimizer's state (no activations)."""
    params = list(model.parameters())
    trained = [p for p in params if p.requires_grad]
    n_trained = sum(p.numel() for p in trained)
    p_bytes = trained[0].element_size() if trained else 4
    g_bytes = torch.empty((), dtype=grad_dtype).element_size() if grad_dtype is not None else p_bytes
    states = {"adam": 2, "adamw": 2, "sgd": 0}.get(optimizer_name, 2)
    out = {
        "parameters": sum(p.numel() * p.element_size() for p in params),
        "gradient_buffers": 2 * n_trained * g_bytes + (n_trained * p_bytes if g_bytes != p_bytes else 0),
        "optimizer_state": states * n_trained * p_bytes,
    }
    out["total"] = sum(out.values())
    return out


def out_of_memory_message(exc: BaseException, estimate: dict, device: str) -> str:
    """One line: what ran out, what the trial needs without activations, and what to change."""
    gib = 2**30
    have = ""
    if device.startswith("cuda") and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        have = f"; the GPU has {total / gib:.1f} GiB ({free / gib:.1f} GiB free now)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"out of memory: {first}. This trial needs {estimate['total'] / gib:.2f} GiB before activations "
            f"(parameters {estimate['parameters'] / gib:.2f}, gradient buffers {estimate['gradient_buffers'] / gib:.2f}, "
            f"optimizer state {estimate['optimizer_state'] / gib:.2f}){have}. Reduce unlearn.batch_size or set "
            "unlearn.grad_accum, unlearn.gradient_checkpointing: true, unlearn.dtype: bfloat16 or unlearn.lora")
