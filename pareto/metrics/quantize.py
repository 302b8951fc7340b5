"""Weight-only round-to-nearest quantisation, symmetric, per output channel (quantise, then dequantise).

For a weight W with output channels c (a Linear's rows; a transformers Conv1D's columns, since
Conv1D computes x @ W + b with W of shape [in, out]):

    s_c   = max_j |W_cj| / q_max            q_max = 2^(bits−1) − 1 (int8: 127, int4: 7)
    W'_cj = s_c · clamp(round(W_cj / s_c), −q_max, q_max)      (a channel of zeros stays zero)

`round` is round-half-to-even. The arithmetic is torch's `fake_quantize_per_channel_affine`
(zero point 0, the symmetric range [−q_max, q_max]), in float32, on CPU or GPU; the result is cast
back to the weight's dtype. Biases, embeddings and norms are left alone; a weight shared by two
modules (GPT-2's lm_head is its token embedding) is quantised once, as the Linear it is.
"""

from __future__ import annotations

import torch
from torch import nn

BITS = {"int8": 8, "int4": 4}


def qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def fake_quantize(weight: torch.Tensor, bits: int, axis: int = 0) -> torch.Tensor:
    """`weight` quantised to `bits` and dequantised, per channel along `axis` (symmetric, RTN)."""
    q = qmax(bits)
    w = weight.detach().float()
    absmax = w.abs().amax(dim=[d for d in range(w.dim()) if d != axis])
    scale = torch.where(absmax > 0, absmax / q, torch.ones_like(absmax))  # a zero channel: any scale keeps it 0
    zero = torch.zeros_like(absmax, dtype=torch.int32)
    out = torch.fake_quantize_per_channel_affine(w, scale, zero, axis, -q, q)
    return out.to(weight.dtype)


def _quantised_weights(model: nn.Module):
    """(module, output-channel axis) of every Linear / transformers Conv1D of `model`."""
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a dependency
        Conv1D = ()
    for module in model.modules():
        if isinstance(module, nn.Linear):
            yield module, 0
        elif Conv1D and isinstance(module, Conv1D):
            yield module, 1


@torch.no_grad()
def quantize_model(model: nn.Module, scheme: str) -> int:
    """Quantise-dequantise every Linear / Conv1D weight of `model` in place (`scheme`: int8 | int4);
    returns how many weight tensors were quantised."""
    if scheme not in BITS:
        raise ValueError(f"quantize must be one of {', '.join(BITS)}, got {scheme!r}")
    seen, n = set(), 0
    for module, axis in _quantised_weights(model):
        w = module.weight
        if id(w) in seen:
            continue
        seen.add(id(w))
        w.copy_(fake_quantize(w, BITS[scheme], axis))
        n += 1
    return n
