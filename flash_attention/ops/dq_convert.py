"""The last step of a backward that adds dQ into a float32 buffer (the Gluon kernel's TMA reductions, the atomic
mode): dQ in the output's dtype and layout, in one pass.

The buffer is ``(batch, nheads, seqlen_q, head_dim)`` (one head's rows contiguous, as the TMA box needs) and dQ is
laid out like q, usually ``(batch, seqlen_q, nheads, head_dim)``, so the copy transposes heads and rows. PyTorch's
``dq.copy_(acc.transpose(1, 2))`` takes its generic strided path for that: on the H200 it moved the 16K-token,
hidden-2048 buffer (128 MB read, 64 MB written) in 96 us, about 2 TB/s of the 4.25 TB/s a copy reaches
(Nsight Compute, ``results/diagnostics/h200-2026-12-03o-ncu-*-summary.txt``). Here one program converts
``BLOCK_S`` rows of one head: both sides are runs of ``head_dim`` contiguous elements, so every load and store is a
full row. It can also apply the softmax scale, which the Gluon backward then leaves out of its dQ shares (one
multiply per element here instead of one per element of every key block's share).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .configs import cdiv


@triton.jit
def _dq_convert_kernel(Acc, DQ, seqlen, scale, stride_ab, stride_ah, stride_as, stride_qb, stride_qh, stride_qs,
                       HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_S: tl.constexpr, SCALED: tl.constexpr):
    s0 = tl.program_id(0) * BLOCK_S
    h = tl.program_id(1).to(tl.int64)
    b = tl.program_id(2).to(tl.int64)
    rows = s0 + tl.arange(0, BLOCK_S)
    cols = tl.arange(0, BLOCK_D)
    ok = (rows < seqlen)[:, None] & (cols < HEAD_DIM)[None, :]
    rows64 = rows.to(tl.int64)[:, None]
    acc = tl.load(Acc + b * stride_ab + h * stride_ah + rows64 * stride_as + cols[None, :], mask=ok)
    if SCALED:
        acc = acc * scale
    tl.store(DQ + b * stride_qb + h * stride_qh + rows64 * stride_qs + cols[None, :],
             acc.to(DQ.dtype.element_ty), mask=ok)


def convertible(acc: torch.Tensor, dq: torch.Tensor) -> bool:
    """Whether the kernel takes the pair: ``(batch, nheads, seqlen, head_dim)`` views (acc float32) whose last
    dimension is contiguous on both sides."""
    return (acc.dim() == dq.dim() == 4 and acc.shape == dq.shape and acc.dtype == torch.float32
            and acc.stride(-1) == 1 and dq.stride(-1) == 1 and acc.device == dq.device)


def dq_convert_args(acc: torch.Tensor, dq: torch.Tensor, scale: float = 1.0):
    """``(grid, args, kwargs)`` of the conversion of ``acc`` (times ``scale``) into ``dq``, both ``(batch, nheads,
    seqlen, head_dim)`` views (``convertible``), for ``ops/launch.py``'s ``launch``."""
    batch, nheads, seqlen, head_dim = acc.shape
    block_s = 64 if head_dim <= 128 else 32
    grid = (cdiv(seqlen, block_s), nheads, batch)
    args = (acc, dq, seqlen, float(scale), *acc.stride()[:3], *dq.stride()[:3])
    kwargs = dict(HEAD_DIM=head_dim, BLOCK_D=triton.next_power_of_2(head_dim), BLOCK_S=block_s, SCALED=scale != 1.0,
                  num_warps=4)
    return grid, args, kwargs


def dq_convert(acc: torch.Tensor, dq: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``dq[...] = acc * scale`` in dq's dtype, for ``(batch, nheads, seqlen, head_dim)`` views; returns dq. Falls
    back to PyTorch where the kernel does not apply (``convertible``)."""
    if not convertible(acc, dq) or acc.numel() == 0:
        return dq.copy_(acc if scale == 1.0 else acc * scale)
    grid, args, kwargs = dq_convert_args(acc, dq, scale)
    _dq_convert_kernel[grid](*args, **kwargs)
    return dq
