"""Hopper (sm_90) dK/dV kernel in Gluon, the backward's counterpart of ops/forward_sm90.py. EXPERIMENTAL: off by
default (``configs.BWD_GLUON``). It compiles for sm_90 (tests/ut/test_backward_sm90.py: no spills at head_dim 64;
at head_dim 128 ptxas spills a few registers: 10 local loads non-causal, 30 causal) but has not run on a GPU yet, so
nothing calls it unless the switch is set (tests/st/test_gpu_backward_sm90.py is ready for that).

One program owns 128 key rows of one KV head and sums dK/dV over the query heads of its GQA group:

- one producer warp group loads the program's K and V once, then streams (Q, dO) tiles of 64 query rows into a
  ring of shared-memory stages through TMA;
- two consumer warp groups own 64 key rows each. Per query tile: ``S^T = K Q^T`` and ``dP^T = V dO^T`` from shared
  memory, ``P^T = exp2(S^T * scale - lse2)``, ``dS^T = P^T (dP^T - delta)``, then ``dV += P^T dO`` and
  ``dK += dS^T Q`` with P^T and dS^T from registers: four products, as in the tl dK/dV kernel;
- at the end each consumer's K and V halves take its dK and dV tiles for the TMA store (rows past seqlen_k are
  clipped by the copy engine).

dQ, delta and lse2 come from the tl dQ kernel, which runs first (``attention_backward``'s split mode). Rows past
seqlen_q read lse2 = +inf (so P = 0) and dO = 0; rows that saw no key have lse2 = +inf as well.
"""

from __future__ import annotations

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma, warpgroup_mma,
                                                              warpgroup_mma_wait)

from ..features import Features
from . import configs
from .configs import cdiv
from .descriptors import tma_compatible
from .forward_sm90 import LOG2E, bhsd_descriptors, covers, is_sm90, mma_layout, ring_stages

# Key rows per consumer warp group (one wgmma M=64 each), consumers, key rows per program, query rows per stage.
ROWS = gl.constexpr(64)
CONSUMERS = gl.constexpr(2)
BLOCK_N = gl.constexpr(128)
BLOCK_M = gl.constexpr(64)


@gluon.jit
def _bwd_producer(q_desc, k_desc, v_desc, do_desc, q_smem, k_smem, v_smem, do_smem, kv_bar, ready, empty,
                  off_b, off_hk, n0, lo, seqlen_q, group, STAGES: gl.constexpr):
    mbarrier.expect(kv_bar, 2 * CONSUMERS * k_desc.block_type.nbytes)
    for c in gl.static_range(CONSUMERS):
        tma.async_copy_global_to_shared(k_desc, [off_b, off_hk, n0 + c * ROWS, 0], kv_bar, k_smem.index(c))
        tma.async_copy_global_to_shared(v_desc, [off_b, off_hk, n0 + c * ROWS, 0], kv_bar, v_smem.index(c))
    i = 0
    for g in range(0, group):
        off_h = off_hk * group + g
        for start in range(lo, seqlen_q, BLOCK_M):
            s = i % STAGES
            mbarrier.wait(empty.index(s), ((i // STAGES) & 1) ^ 1)
            mbarrier.expect(ready.index(s), q_desc.block_type.nbytes + do_desc.block_type.nbytes)
            tma.async_copy_global_to_shared(q_desc, [off_b, off_h, start, 0], ready.index(s), q_smem.index(s))
            tma.async_copy_global_to_shared(do_desc, [off_b, off_h, start, 0], ready.index(s), do_smem.index(s))
            i += 1


@gluon.jit
def _bwd_consumer(dk_desc, dv_desc, Lse2, Delta, stride_lb, stride_lh, k_smem, v_smem, q_smem, do_smem, kv_bar,
                  ready, empty, off_b, off_hk, n0, lo, full_lo, seqlen_q, group, diag, qk_scale, sm_scale,
                  CID: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr):
    dtype: gl.constexpr = dk_desc.dtype
    s_layout: gl.constexpr = mma_layout(BLOCK_M)
    o_layout: gl.constexpr = mma_layout(HEAD_DIM)
    a_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    col_s: gl.constexpr = gl.SliceLayout(0, s_layout)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)

    offs_n = n0 + CID * ROWS + gl.arange(0, ROWS, layout=row_s)
    dk = gl.zeros([ROWS, HEAD_DIM], gl.float32, layout=o_layout)
    dv = gl.zeros([ROWS, HEAD_DIM], gl.float32, layout=o_layout)
    zero_s = gl.zeros([ROWS, BLOCK_M], gl.float32, layout=s_layout)
    k_tile = k_smem.index(CID)
    v_tile = v_smem.index(CID)
    k = k_tile.reshape([ROWS, HEAD_DIM])
    v = v_tile.reshape([ROWS, HEAD_DIM])

    mbarrier.wait(kv_bar, 0)
    i = 0
    for g in range(0, group):
        off_h = off_hk * group + g
        row_base = off_b.to(gl.int64) * stride_lb + off_h.to(gl.int64) * stride_lh
        for start in range(lo, seqlen_q, BLOCK_M):
            s = i % STAGES
            offs_m = start + gl.arange(0, BLOCK_M, layout=col_s)
            m_ok = offs_m < seqlen_q
            # Rows past seqlen_q: lse2 = +inf makes P = 0 there (and dO reads as zeros).
            lse2 = gl.load(Lse2 + row_base + offs_m, mask=m_ok, other=float("inf"))
            delta = gl.load(Delta + row_base + offs_m, mask=m_ok, other=0.0)
            mbarrier.wait(ready.index(s), (i // STAGES) & 1)
            qt = q_smem.index(s).reshape([BLOCK_M, HEAD_DIM])
            dot = do_smem.index(s).reshape([BLOCK_M, HEAD_DIM])
            # S^T first and P^T from it while dP^T is still on the tensor cores; dV's product goes out as soon as
            # P^T is ready, so at most one 64x64 float32 tile beside dK and dV is live at a time.
            st = warpgroup_mma(k, qt.permute((1, 0)), zero_s, use_acc=False, is_async=True)
            dpt = warpgroup_mma(v, dot.permute((1, 0)), zero_s, use_acc=False, is_async=True)
            st = warpgroup_mma_wait(num_outstanding=1, deps=(st,))
            pt = gl.exp2(st * qk_scale - lse2[None, :])
            if CAUSAL:
                if start < full_lo:
                    # Query tiles that reach below the band's edge: key n is visible to query m iff n <= m + diag.
                    pt = gl.where(offs_n[:, None] <= offs_m[None, :] + diag, pt, 0.0)
            pa = gl.convert_layout(pt.to(dtype), a_layout)
            dpt = warpgroup_mma_wait(num_outstanding=0, deps=(dpt,))
            dv = warpgroup_mma(pa, dot, dv, is_async=True)
            dsa = gl.convert_layout((pt * (dpt - delta[None, :])).to(dtype), a_layout)
            dk = warpgroup_mma(dsa, qt, dk, is_async=True)
            dv, dk, pa, dsa = warpgroup_mma_wait(num_outstanding=0, deps=(dv, dk, pa, dsa))
            mbarrier.arrive(empty.index(s), count=1)
            i += 1

    # This warp group's K and V halves are read for the last time: they take its dK and dV tiles.
    k.store((dk * sm_scale).to(dtype))
    v.store(dv.to(dtype))
    fence_async_shared()
    tma.async_copy_shared_to_global(dk_desc, [off_b, off_hk, n0 + CID * ROWS, 0], k_tile)
    tma.async_copy_shared_to_global(dv_desc, [off_b, off_hk, n0 + CID * ROWS, 0], v_tile)
    tma.store_wait(pendings=0)


@gluon.jit
def _attn_bwd_dkdv_sm90(q_desc, k_desc, v_desc, do_desc, dk_desc, dv_desc, Lse2, Delta, stride_lb, stride_lh,
                        seqlen_q, group, diag, qk_scale, sm_scale, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr,
                        CAUSAL: gl.constexpr):
    dtype: gl.constexpr = q_desc.dtype
    off_hk = gl.program_id(1)
    off_b = gl.program_id(2)
    n0 = gl.program_id(0) * BLOCK_N
    lo = 0
    full_lo = 0
    if CAUSAL:
        # Query m sees key n iff n <= m + diag: the first query tile that sees any of keys [n0, n0 + BLOCK_N) and
        # the first that sees all of them.
        lo = (gl.maximum(n0 - diag, 0) // BLOCK_M) * BLOCK_M
        full_lo = gl.maximum(n0 + BLOCK_N - 1 - diag, 0)

    k_smem = gl.allocate_shared_memory(dtype, [CONSUMERS, 1, 1, ROWS, HEAD_DIM], k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [CONSUMERS, 1, 1, ROWS, HEAD_DIM], v_desc.layout)
    q_smem = gl.allocate_shared_memory(dtype, [STAGES, 1, 1, BLOCK_M, HEAD_DIM], q_desc.layout)
    do_smem = gl.allocate_shared_memory(dtype, [STAGES, 1, 1, BLOCK_M, HEAD_DIM], do_desc.layout)
    kv_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    mbarrier.init(kv_bar, count=1)
    for st in gl.static_range(STAGES):
        mbarrier.init(ready.index(st), count=1)
        mbarrier.init(empty.index(st), count=CONSUMERS)

    gl.warp_specialize([
        (_bwd_producer, (q_desc, k_desc, v_desc, do_desc, q_smem, k_smem, v_smem, do_smem, kv_bar, ready, empty,
                         off_b, off_hk, n0, lo, seqlen_q, group, STAGES)),
        (_bwd_consumer, (dk_desc, dv_desc, Lse2, Delta, stride_lb, stride_lh, k_smem, v_smem, q_smem, do_smem,
                         kv_bar, ready, empty, off_b, off_hk, n0, lo, full_lo, seqlen_q, group, diag, qk_scale,
                         sm_scale, 0, HEAD_DIM, STAGES, CAUSAL)),
        (_bwd_consumer, (dk_desc, dv_desc, Lse2, Delta, stride_lb, stride_lh, k_smem, v_smem, q_smem, do_smem,
                         kv_bar, ready, empty, off_b, off_hk, n0, lo, full_lo, seqlen_q, group, diag, qk_scale,
                         sm_scale, 1, HEAD_DIM, STAGES, CAUSAL)),
    ], [4, 4], [240, 240])


def supported(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dout: torch.Tensor, dk: torch.Tensor,
              dv: torch.Tensor, f: Features) -> bool:
    """Whether the Gluon dK/dV kernel takes the call: switched on (``configs.BWD_GLUON``), an sm_90 GPU, an
    attention the Gluon forward covers, tensors the copy engine can address."""
    if not configs.BWD_GLUON or configs.interpreting() or q.device.type != "cuda":
        return False
    return (covers(q.dtype, q.shape[-1], f) and is_sm90(q.device.index or 0)
            and all(tma_compatible(t) for t in (q, k, v, dout, dk, dv)))


def stages_for(head_dim: int) -> int:
    """(Q, dO) stages beside the program's K and V."""
    return ring_stages(2 * BLOCK_N.value * head_dim * 2, 2 * BLOCK_M.value * head_dim * 2)


def attention_backward_dkdv_sm90(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dout: torch.Tensor,
                                 lse2: torch.Tensor, delta: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor,
                                 f: Features, stages: int = 0) -> None:
    """Launch the Gluon dK/dV kernel (``supported`` was checked; lse2/delta were written by the dQ kernel)."""
    batch, seqlen_q, nheads, head_dim = q.shape
    seqlen_k, nheads_k = k.shape[1], k.shape[2]
    rows_m, rows_n = BLOCK_M.value, ROWS.value
    descs = bhsd_descriptors((q, k, v, dout, dk, dv), (rows_m, rows_n, rows_n, rows_m, rows_n, rows_n))
    grid = (cdiv(seqlen_k, BLOCK_N.value), nheads_k, batch)
    _attn_bwd_dkdv_sm90[grid](*descs, lse2, delta, *lse2.stride()[:2], seqlen_q, nheads // nheads_k,
                              f.diagonal(seqlen_q, seqlen_k), f.softmax_scale * LOG2E, f.softmax_scale,
                              HEAD_DIM=head_dim, STAGES=stages or stages_for(head_dim), CAUSAL=f.causal, num_warps=4)
