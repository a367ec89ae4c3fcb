"""The forward and backward as ``torch.library`` custom ops, so ``torch.compile(fullgraph=True)`` traces through.

``flash_attention::forward`` and ``flash_attention::backward`` are opaque to the compiler: each has a fake
implementation that only produces output shapes/dtypes/strides, and the forward's autograd formula calls the
backward op. Dispatch between the Triton kernels and the CPU path happens inside the ops, at run time. In eager
mode the same implementation runs through a plain ``autograd.Function`` (cheaper on the host).

Dropout's seed travels as a small int64 tensor (drawn from torch's generator) rather than Python ints, so drawing
it does not break a compiled graph; it is read only inside the op.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import cpu as _cpu
from .features import Features
from .ops.backward import attention_backward
from .ops.configs import interpreting
from .ops.forward import attention_forward

_BACKENDS = ("auto", "triton", "torch")


class _Backend:
    name = os.environ.get("FLASH_ATTENTION_BACKEND", "auto")


def use_kernels(t: Tensor) -> bool:
    """Triton kernels for CUDA tensors, the PyTorch path for CPU tensors, unless a backend is forced."""
    if _Backend.name == "torch":
        return False
    if t.device.type == "cuda":
        return True
    if _Backend.name == "triton":
        if not interpreting():
            raise RuntimeError("the triton backend on CPU tensors needs TRITON_INTERPRET=1 set before import")
        return True
    return False


def _features(alibi_slopes, attn_bias, attn_mask, rng, cu_seqlens_q, cu_seqlens_k, softmax_scale, causal,
              window_left, window_right, softcap, dropout_p, window_block, tiling, max_seqlen_q,
              max_seqlen_k, deterministic) -> Features:
    seed, offset = (int(x) for x in rng.tolist()) if dropout_p > 0 else (0, 0)
    return Features(softmax_scale, causal, (window_left, window_right), softcap, alibi_slopes, attn_bias, attn_mask,
                    dropout_p, seed, offset, window_block, tiling, cu_seqlens_q=cu_seqlens_q,
                    cu_seqlens_k=cu_seqlens_k, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
                    deterministic=deterministic)


def _lse_dtype(q: Tensor) -> torch.dtype:
    # The CPU path keeps float64 lse for float64 inputs (exact backward); everything else is float32.
    return torch.float64 if q.dtype == torch.float64 and not use_kernels(q) else torch.float32


def run_forward(q: Tensor, k: Tensor, v: Tensor, f: Features) -> Tuple[Tensor, Tensor]:
    """``(out, lse)`` from the kernels or the CPU path (by ``use_kernels``), with no autograd: the building
    block of the autograd functions here and of ring attention."""
    fwd = attention_forward if use_kernels(q) else _cpu.attention_forward_cpu
    out, lse = fwd(q, k, v, f)
    return out, lse.to(_lse_dtype(q))


def run_backward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, f: Features,
                 bias_grad: bool = False) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """``(dq, dk, dv, dbias)`` for ``run_forward``'s call; ``out``/``lse`` may be those of a larger attention
    that this call is one block of (ring attention), since the backward only needs the final row statistics."""
    if dout.stride(-1) != 1:  # e.g. the all-zero-stride gradient of out.sum()
        dout = dout.contiguous()
    bwd = attention_backward if use_kernels(q) else _cpu.attention_backward_cpu
    return bwd(dout, q, k, v, out, lse, f, bias_grad=bias_grad)


def _forward_impl(q, k, v, *args) -> Tuple[Tensor, Tensor]:
    return run_forward(q, k, v, _features(*args))


@torch.library.custom_op("flash_attention::forward", mutates_args=())
def forward_op(
    q: Tensor, k: Tensor, v: Tensor,
    alibi_slopes: Optional[Tensor], attn_bias: Optional[Tensor], attn_mask: Optional[Tensor], rng: Tensor,
    cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor],
    softmax_scale: float, causal: bool, window_left: int, window_right: int, softcap: float, dropout_p: float,
    window_block: int, tiling: str, max_seqlen_q: int, max_seqlen_k: int, deterministic: bool,
) -> Tuple[Tensor, Tensor]:
    """``(out, lse)``; lse is ``(batch, nheads, seqlen_q)`` (``(nheads, total_q)`` for varlen), natural log."""
    return _forward_impl(q, k, v, alibi_slopes, attn_bias, attn_mask, rng, cu_seqlens_q, cu_seqlens_k, softmax_scale,
                         causal, window_left, window_right, softcap, dropout_p, window_block, tiling, max_seqlen_q,
                         max_seqlen_k, deterministic)


def _lse_shape(q: Tensor, cu_seqlens_q: Optional[Tensor]) -> Tuple[int, ...]:
    if cu_seqlens_q is not None:
        return (q.shape[1], q.shape[0])
    return (q.shape[0], q.shape[2], q.shape[1])


@forward_op.register_fake
def _(q, k, v, alibi_slopes, attn_bias, attn_mask, rng, cu_seqlens_q, *args):
    return torch.empty_like(q), q.new_empty(_lse_shape(q, cu_seqlens_q), dtype=_lse_dtype(q))


def _backward_impl(dout, q, k, v, out, lse, *args):
    *args, bias_grad = args
    dq, dk, dv, dbias = run_backward(dout, q, k, v, out, lse, _features(*args), bias_grad)
    if dbias is None:
        dbias = q.new_empty((0,), dtype=torch.float32)
    return dq, dk, dv, dbias


@torch.library.custom_op("flash_attention::backward", mutates_args=())
def backward_op(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
    alibi_slopes: Optional[Tensor], attn_bias: Optional[Tensor], attn_mask: Optional[Tensor], rng: Tensor,
    cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor],
    softmax_scale: float, causal: bool, window_left: int, window_right: int, softcap: float, dropout_p: float,
    window_block: int, tiling: str, max_seqlen_q: int, max_seqlen_k: int, deterministic: bool, bias_grad: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(dq, dk, dv, dbias)``; dbias is float32 ``(batch, nheads, seqlen_q, seqlen_k)``, or empty."""
    return _backward_impl(dout, q, k, v, out, lse, alibi_slopes, attn_bias, attn_mask, rng, cu_seqlens_q,
                          cu_seqlens_k, softmax_scale, causal, window_left, window_right, softcap, dropout_p,
                          window_block, tiling, max_seqlen_q, max_seqlen_k, deterministic, bias_grad)


@backward_op.register_fake
def _(dout, q, k, v, out, lse, *args):
    bias_grad = args[-1]
    shape = (q.shape[0], q.shape[2], q.shape[1], k.shape[1]) if bias_grad else (0,)
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), q.new_empty(shape, dtype=torch.float32)


_N_TENSOR_ARGS = 9  # q, k, v, alibi_slopes, attn_bias, attn_mask, rng, cu_seqlens_q, cu_seqlens_k


def _setup_context(ctx, inputs, output) -> None:
    tensors, options = inputs[:_N_TENSOR_ARGS], inputs[_N_TENSOR_ARGS:]
    out, lse = output
    q, k, v, alibi_slopes, attn_bias, attn_mask, rng, cu_q, cu_k = tensors
    ctx.save_for_backward(q, k, v, out, lse, alibi_slopes, attn_bias, attn_mask, rng, cu_q, cu_k)
    ctx.options = options
    ctx.n_inputs = len(inputs)
    ctx.bias_shape = None if attn_bias is None else attn_bias.shape


def _backward(ctx, dout, _dlse):
    q, k, v, out, lse, alibi_slopes, attn_bias, attn_mask, rng, cu_q, cu_k = ctx.saved_tensors
    bias_grad = attn_bias is not None and ctx.needs_input_grad[4]
    dq, dk, dv, dbias = backward_op(dout, q, k, v, out, lse, alibi_slopes, attn_bias, attn_mask, rng, cu_q,
                                    cu_k, *ctx.options, bias_grad)
    dbias_out = _reduce_to_shape(dbias, ctx.bias_shape).to(attn_bias.dtype) if bias_grad else None
    return (dq, dk, dv, None, dbias_out) + (None,) * (ctx.n_inputs - 5)


def _reduce_to_shape(grad: Tensor, shape: torch.Size) -> Tensor:
    """Sum a full ``(batch, nheads, seqlen_q, seqlen_k)`` gradient over the dimensions ``shape`` broadcast."""
    lead = grad.dim() - len(shape)
    grad = grad.sum(dim=tuple(range(lead))) if lead else grad
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(dim=dims, keepdim=True) if dims else grad


forward_op.register_autograd(_backward, setup_context=_setup_context)


class _EagerAttention(torch.autograd.Function):
    """The same forward and backward without the custom-op layer, for eager mode.

    torch.library's eager dispatch cost ~0.6 ms of host time per op call on the H100 machine's CPU, more than the
    kernels of a small attention (benchmarks/NOTES.md); the compiler still sees the custom ops. The validated
    ``Features`` ride along (first argument), so neither direction rebuilds them from the op's flat arguments, and
    only the inputs that can take a gradient go through autograd (its cost grows with the argument count).
    """

    @staticmethod
    def forward(ctx, f: Features, q: Tensor, k: Tensor, v: Tensor, attn_bias: Optional[Tensor]):
        out, lse = run_forward(q, k, v, f)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.features = f
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, dout, _dlse):
        q, k, v, out, lse = ctx.saved_tensors
        f = ctx.features
        bias_grad = f.attn_bias is not None and ctx.needs_input_grad[4]
        dq, dk, dv, dbias = run_backward(dout, q, k, v, out, lse, f, bias_grad)
        dbias_out = _reduce_to_shape(dbias, f.attn_bias.shape).to(f.attn_bias.dtype) if bias_grad else None
        return None, dq, dk, dv, dbias_out


_NO_RNG = torch.zeros(2, dtype=torch.int64)  # never written: read only when dropout_p > 0


def new_rng_state(dropout_p: float) -> Tensor:
    """Seed and Philox offset from torch's default generator (reproducible under ``torch.manual_seed``)."""
    if dropout_p > 0:
        return torch.randint(0, 2**62, (2,), dtype=torch.int64)
    if torch.compiler.is_compiling():
        return torch.zeros(2, dtype=torch.int64)
    return _NO_RNG


def attention_op(q: Tensor, k: Tensor, v: Tensor, f: Features, rng: Tensor) -> Tuple[Tensor, Tensor]:
    """Attention with validated options: the custom op when compiling, a plain autograd.Function in eager mode."""
    if torch.compiler.is_compiling():
        return forward_op(q, k, v, f.alibi_slopes, f.attn_bias, f.attn_mask, rng, f.cu_seqlens_q, f.cu_seqlens_k,
                          f.softmax_scale, f.causal, f.window_size[0], f.window_size[1], f.softcap, f.dropout_p,
                          f.window_block, f.tiling, int(f.max_seqlen_q), int(f.max_seqlen_k), bool(f.deterministic))
    if f.dropout_p > 0:
        seed, offset = (int(x) for x in rng.tolist())
        f = dataclasses.replace(f, seed=seed, offset=offset)
    return _EagerAttention.apply(f, q, k, v, f.attn_bias)
