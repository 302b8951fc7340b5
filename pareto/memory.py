"""Real-size models in limited memory: precision, gradient checkpointing, LoRA, what a trial needs.

The spec's `unlearn` section chooses (see docs/sweeps.md):

    precision     fp32 (default) | bf16 (pure: parameters, gradients and optimizer state in bf16)
                  | bf16-autocast (fp32 master weights, matmuls in bf16 under torch.autocast)
    grad_dtype    param (default: the gradient buffers in the parameters' dtype) | fp32 (g_R and
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

__all__ = ["PRECISIONS", "GRAD_DTYPES", "precision_dtypes", "apply_lora", "enable_checkpointing",
           "estimate_bytes", "out_of_memory_message"]

#: precision name → (parameter dtype, autocast dtype or None)
PRECISIONS = {"fp32": (torch.float32, None), "bf16": (torch.bfloat16, None),
              "bf16-autocast": (torch.float32, torch.bfloat16)}
GRAD_DTYPES = ("param", "fp32")


def precision_dtypes(precision: str) -> tuple[torch.dtype, torch.dtype | None]:
    try:
        return PRECISIONS[precision]
    except KeyError:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}") from None


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
    config = LoraConfig(r=int(r), lora_alpha=float(alpha), lora_dropout=float(dropout),
                        target_modules=target_modules, bias="none")
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
            "unlearn.grad_accum, unlearn.gradient_checkpointing: true, unlearn.precision: bf16 or unlearn.lora")
