"""Writing a decode step's new keys and values into the KV cache, in place, in one launch.

Token ``t`` of batch entry ``b`` goes to cache slot ``pos = cache_seqlens[b] + t``: row ``cache_batch_idx[b]``
(or ``b``) of a contiguous cache, or page ``block_table[b, pos // page_size]``, offset ``pos % page_size``, of a
paged one. One program copies one token's K and V rows for every kv head, so a step's append costs one small
kernel instead of the handful of index computations and scatters PyTorch would launch.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from .configs import interpreting


@triton.jit
def _append_kernel(
    K, V, KNew, VNew, CacheSeqlens, BatchIdx, BlockTable,
    stride_kb, stride_kn, stride_kh, stride_vb, stride_vn, stride_vh,
    stride_nkb, stride_nkn, stride_nkh, stride_nvb, stride_nvn, stride_nvh,
    stride_btb, seqlen_new, nheads_k, page_size,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr,
    PAGED: tl.constexpr, BATCH_IDX: tl.constexpr,
):
    pid = tl.program_id(0)
    b = pid // seqlen_new
    t = pid % seqlen_new
    pos = tl.load(CacheSeqlens + b) + t
    if PAGED:
        row = tl.load(BlockTable + b.to(tl.int64) * stride_btb + pos // page_size).to(tl.int64)
        slot = (pos % page_size).to(tl.int64)
    else:
        row = b.to(tl.int64)
        if BATCH_IDX:
            row = tl.load(BatchIdx + b).to(tl.int64)
        slot = pos.to(tl.int64)
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_D)
    ok = (offs_h[:, None] < nheads_k) & (offs_d[None, :] < HEAD_DIM)
    h64 = offs_h[:, None].to(tl.int64)
    src = b.to(tl.int64) * stride_nkb + t.to(tl.int64) * stride_nkn + h64 * stride_nkh + offs_d[None, :]
    dst = row * stride_kb + slot * stride_kn + h64 * stride_kh + offs_d[None, :]
    tl.store(K + dst, tl.load(KNew + src, mask=ok), mask=ok)
    src = b.to(tl.int64) * stride_nvb + t.to(tl.int64) * stride_nvn + h64 * stride_nvh + offs_d[None, :]
    dst = row * stride_vb + slot * stride_vn + h64 * stride_vh + offs_d[None, :]
    tl.store(V + dst, tl.load(VNew + src, mask=ok), mask=ok)


def append_kv(k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              cache_seqlens: torch.Tensor, cache_batch_idx: Optional[torch.Tensor] = None,
              block_table: Optional[torch.Tensor] = None) -> None:
    """Write ``k``/``v`` ``(batch, seqlen_new, nheads_k, headdim)`` into the caches at ``cache_seqlens``, in place.

    Inputs are validated by the caller (indices in range; see kvcache._check_values)."""
    batch, seqlen_new, nheads_k, head_dim = k.shape
    if batch * seqlen_new == 0:
        return
    paged = block_table is not None
    dummy = cache_seqlens
    _append_kernel[(batch * seqlen_new,)](
        k_cache, v_cache, k, v, cache_seqlens,
        cache_batch_idx if cache_batch_idx is not None else dummy, block_table if paged else dummy,
        *k_cache.stride()[:3], *v_cache.stride()[:3], *k.stride()[:3], *v.stride()[:3],
        block_table.stride(0) if paged else 0, seqlen_new, nheads_k, k_cache.shape[1] if paged else 1,
        HEAD_DIM=head_dim, BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
        BLOCK_H=max(1, triton.next_power_of_2(nheads_k)), PAGED=paged, BATCH_IDX=cache_batch_idx is not None,
        num_warps=1 if interpreting() else 4,
    )
