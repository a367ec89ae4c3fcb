"""Public functional API, following Dao-AILab's FlashAttention 2 so its users can switch by one import.

CUDA tensors run the Triton kernels of ``flash_attention.ops``; CPU tensors run the chunked PyTorch path of
``flash_attention.cpu``. ``use_backend("triton")`` forces the kernels on CPU tensors too, which works under
Triton's interpreter (``TRITON_INTERPRET=1``) and is how the CPU test suite checks the kernels themselves.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional, Tuple, Union

import torch

from . import cpu as _cpu
from .ops.backward import attention_backward
from .ops.configs import interpreting
from .ops.forward import attention_forward
from .reference import visibility_mask
from .validation import check_options, check_qkv, check_tensor

__all__ = [
    "flash_attn_func",
    "flash_attn_kvpacked_func",
    "flash_attn_qkvpacked_func",
    "use_backend",
]

_BACKENDS = ("auto", "triton", "torch")
_backend = os.environ.get("FLASH_ATTENTION_BACKEND", "auto")


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Select the implementation inside a ``with`` block: "auto" (kernels on CUDA, PyTorch on CPU),
    "triton" (kernels everywhere; CPU tensors need ``TRITON_INTERPRET=1``) or "torch" (the chunked path)."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    previous, _backend = _backend, name
    try:
        yield
    finally:
        _backend = previous


def _use_kernels(t: torch.Tensor) -> bool:
    if _backend == "torch":
        return False
    if t.device.type == "cuda":
        return True
    if _backend == "triton":
        if not interpreting():
            raise RuntimeError("the triton backend on CPU tensors needs TRITON_INTERPRET=1 set before import")
        return True
    return False


class _FlashAttnFunc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, softmax_scale, causal, window_size):
        kernels = _use_kernels(q)
        fwd = attention_forward if kernels else _cpu.attention_forward_cpu
        out, lse = fwd(q, k, v, softmax_scale, causal, window_size)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.options = (softmax_scale, causal, window_size, kernels)
        lse_out = lse.to(torch.float32)  # the public lse is float32; the CPU path may keep float64 internally
        ctx.mark_non_differentiable(lse_out)
        return out, lse_out

    @staticmethod
    def backward(ctx, dout, _dlse):
        q, k, v, out, lse = ctx.saved_tensors
        softmax_scale, causal, window_size, kernels = ctx.options
        if dout.stride(-1) != 1:  # e.g. the all-zero-stride gradient of out.sum()
            dout = dout.contiguous()
        bwd = attention_backward if kernels else _cpu.attention_backward_cpu
        dq, dk, dv = bwd(dout, q, k, v, out, lse, softmax_scale, causal, window_size)
        return dq, dk, dv, None, None, None


def _attention_probs(q, k, lse, softmax_scale, causal, window_size) -> torch.Tensor:
    """Probabilities ``(batch, nheads, seqlen_q, seqlen_k)`` rebuilt from lse; O(seqlen^2), for tests only."""
    nheads, nheads_k = q.shape[2], k.shape[2]
    kk = k.repeat_interleave(nheads // nheads_k, dim=2) if nheads != nheads_k else k
    s = torch.einsum("bqhd,bkhd->bhqk", q.float(), kk.float()) * softmax_scale
    visible = visibility_mask(q.shape[1], k.shape[1], causal, window_size, q.device)
    lse_use = torch.where(torch.isneginf(lse), torch.full_like(lse, float("inf")), lse)
    p = torch.exp(s - lse_use.unsqueeze(-1))
    return p.masked_fill(~visible, 0.0).to(q.dtype)


def _not_yet(dropout_p: float, softcap: float, alibi_slopes: Optional[torch.Tensor]) -> None:
    if dropout_p > 0.0:
        raise NotImplementedError("dropout_p > 0 is not implemented yet")
    if softcap != 0.0:
        raise NotImplementedError("softcap is not implemented yet")
    if alibi_slopes is not None:
        raise NotImplementedError("alibi_slopes is not implemented yet")


def flash_attn_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Exact attention ``softmax(q k^T * scale) v`` without materialising the score matrix.

    Args:
        q: ``(batch, seqlen_q, nheads, headdim)``, float16/bfloat16 (float32 also accepted; float64 on CPU).
        k, v: ``(batch, seqlen_k, nheads_k, headdim)``; ``nheads`` must be a multiple of ``nheads_k``
            (GQA/MQA: query head ``h`` uses kv head ``h // (nheads // nheads_k)``).
        dropout_p: dropout probability on the attention weights.
        softmax_scale: defaults to ``1 / sqrt(headdim)``.
        causal: query ``i`` sees key ``j`` iff ``j <= i + seqlen_k - seqlen_q`` (bottom-right aligned).
        window_size: ``(left, right)`` sliding window around that diagonal; -1 leaves a side unbounded.
        softcap, alibi_slopes: score soft-capping and ALiBi bias.
        deterministic: accepted for compatibility; the backward is always deterministic (no atomics).
        return_attn_probs: also return ``softmax_lse`` (float32 ``(batch, nheads, seqlen_q)``, natural log)
            and the attention probabilities (O(seqlen^2) memory: for tests only).

    Rows that see no key give output 0 and lse ``-inf``. Any strides are accepted as long as the last
    dimension is contiguous; no copy of q/k/v is made.
    """
    check_qkv(q, k, v)
    scale, window = check_options(softmax_scale, window_size, dropout_p, q.shape[-1])
    _not_yet(dropout_p, softcap, alibi_slopes)
    out, lse = _FlashAttnFunc.apply(q, k, v, scale, bool(causal), window)
    if not return_attn_probs:
        return out
    with torch.no_grad():
        probs = _attention_probs(q, k, lse, scale, bool(causal), window)
    return out, lse, probs


def flash_attn_qkvpacked_func(
    qkv: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
):
    """``flash_attn_func`` on a packed ``qkv`` of shape ``(batch, seqlen, 3, nheads, headdim)``.

    q, k and v are strided views into ``qkv`` (no copies); the gradient arrives packed the same way.
    """
    check_tensor("qkv", qkv, 5, "(batch, seqlen, 3, nheads, headdim)")
    if qkv.shape[2] != 3:
        raise ValueError(f"qkv must have shape (batch, seqlen, 3, nheads, headdim), got {tuple(qkv.shape)}")
    q, k, v = qkv.unbind(dim=2)
    return flash_attn_func(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes,
                           deterministic, return_attn_probs)


def flash_attn_kvpacked_func(
    q: torch.Tensor,
    kv: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
):
    """``flash_attn_func`` with a packed ``kv`` of shape ``(batch, seqlen_k, 2, nheads_k, headdim)``."""
    check_tensor("kv", kv, 5, "(batch, seqlen_k, 2, nheads_k, headdim)")
    if kv.shape[2] != 2:
        raise ValueError(f"kv must have shape (batch, seqlen_k, 2, nheads_k, headdim), got {tuple(kv.shape)}")
    k, v = kv.unbind(dim=2)
    return flash_attn_func(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes,
                           deterministic, return_attn_probs)
