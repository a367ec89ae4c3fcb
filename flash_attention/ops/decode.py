"""Attention of a few new query tokens against a KV cache: split-KV ("flash decoding") kernels and launcher.

Decoding reads every cached key and value once per step and does little arithmetic with them, so its speed is
memory bandwidth. Two things make the kernel reach it:

* GQA packing: the query heads that share a kv head (and all new query tokens) become the rows of one tile, so
  each K/V tile is loaded once per kv head rather than once per query head. Row ``r`` of a tile is query token
  ``r // group`` of query head ``kv_head * group + r % group``.
* Split-KV: with one query token there are only ``batch x nheads_k`` tiles of rows, too few to fill the GPU, so the
  keys of each row tile are cut into ``num_splits`` ranges handled by separate programs. Each writes its partial
  output and log-sum-exp (float32); ``_combine_kernel`` merges them: ``out = sum_s exp(lse_s - lse) out_s``.

The cache is contiguous ``(batch_cache, seqlen_cache, nheads_k, headdim)`` (rows chosen by ``cache_batch_idx``) or
paged ``(num_blocks, page_block_size, nheads_k, headdim)`` addressed through ``block_table``. Sequence ``b`` holds
keys ``[leftpad_b, seqlen_k_b)``; positions count from ``leftpad_b``, and the new queries are the last
``seqlen_q`` positions (bottom-right causal alignment). All loads are masked by those bounds, so no element outside
a sequence's valid keys is read, whatever the cache holds there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

from ..features import Features
from .configs import dot_precision, interpreting
from .forward import LOG2E
from .masks import window_bounds
from .masks import band_lower, band_upper, visible
from .scores import score_log2


@triton.jit
def _decode_kernel(
    Q, K, V, Out, Lse, OutPart, LsePart, SeqlensK, LeftPad, BatchIdx, BlockTable, Slopes,
    stride_qb, stride_qm, stride_qh,
    stride_kb, stride_kn, stride_kh,
    stride_vb, stride_vn, stride_vh,
    stride_ob, stride_om, stride_oh,
    stride_btb, stride_sb, stride_sh,
    nheads, nheads_k, seqlen_q, group, page_size, num_splits, seqlen_new,
    qk_scale, softcap_scale, softcap_out, win_left, win_right,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    LOCAL: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr, PAGED: tl.constexpr,
    LEFTPAD: tl.constexpr, BATCH_IDX: tl.constexpr, SPLIT: tl.constexpr, PAGE_TILES: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    pid_m = tl.program_id(0)
    split = tl.program_id(1)
    off_bh = tl.program_id(2)
    off_b = off_bh // nheads_k
    off_hk = off_bh % nheads_k

    offs_r = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    tok = offs_r // group
    head = off_hk * group + offs_r % group
    row_ok = tok < seqlen_q
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM

    seqlen_k = tl.load(SeqlensK + off_b) + seqlen_new  # the cache's fill before this call's append, plus it
    leftpad = 0
    if LEFTPAD:
        leftpad = tl.load(LeftPad + off_b)
    seqlen_eff = seqlen_k - leftpad  # keys visible to this sequence, counted from leftpad
    diag = seqlen_eff - seqlen_q
    cache_row = off_b
    if BATCH_IDX:
        cache_row = tl.load(BatchIdx + off_b)

    q_ptrs = (Q + off_b.to(tl.int64) * stride_qb + tok[:, None].to(tl.int64) * stride_qm
              + head[:, None].to(tl.int64) * stride_qh + offs_d[None, :])
    q = tl.load(q_ptrs, mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    slope2 = tl.zeros([BLOCK_M, 1], dtype=tl.float32)
    if ALIBI:
        slope2 = tl.load(Slopes + off_b * stride_sb + head[:, None] * stride_sh, mask=row_ok[:, None],
                         other=0.0).to(tl.float32) * 1.4426950408889634

    # Key positions this row tile may see, then this split's share of them (whole tiles of BLOCK_N keys).
    t_first = (pid_m * BLOCK_M) // group
    t_last = tl.minimum((pid_m * BLOCK_M + BLOCK_M - 1) // group, seqlen_q - 1)
    lo = 0
    hi = seqlen_eff
    if LOCAL:
        lo = tl.maximum(band_lower(t_first + diag, win_left, 1), 0)
        hi = tl.minimum(band_upper(t_last + diag, win_right, 1), seqlen_eff)
    j_start = ((leftpad + lo) // BLOCK_N) * BLOCK_N  # absolute cache index, tile aligned (pages stay whole)
    j_end = leftpad + hi
    n_tiles = tl.maximum(tl.cdiv(j_end - j_start, BLOCK_N), 0)
    per_split = tl.cdiv(n_tiles, num_splits)
    my_lo = j_start + split * per_split * BLOCK_N
    my_hi = tl.minimum(j_end, my_lo + per_split * BLOCK_N)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    k_head = off_hk.to(tl.int64) * stride_kh
    v_head = off_hk.to(tl.int64) * stride_vh
    for j0 in range(my_lo, my_hi, BLOCK_N):
        offs_n = j0 + tl.arange(0, BLOCK_N)
        kpos = offs_n - leftpad
        n_ok = (kpos >= 0) & (offs_n < j_end)
        if PAGE_TILES:
            # Pages hold whole key tiles (j0 is tile aligned): one table entry per tile, a scalar load.
            block = tl.load(BlockTable + off_b.to(tl.int64) * stride_btb + j0 // page_size)
            k_rows = block.to(tl.int64) * stride_kb + (offs_n % page_size).to(tl.int64) * stride_kn
            v_rows = block.to(tl.int64) * stride_vb + (offs_n % page_size).to(tl.int64) * stride_vn
        elif PAGED:
            block = tl.load(BlockTable + off_b.to(tl.int64) * stride_btb + offs_n // page_size, mask=n_ok, other=0)
            k_rows = block.to(tl.int64) * stride_kb + (offs_n % page_size).to(tl.int64) * stride_kn
            v_rows = block.to(tl.int64) * stride_vb + (offs_n % page_size).to(tl.int64) * stride_vn
        else:
            k_rows = cache_row.to(tl.int64) * stride_kb + offs_n.to(tl.int64) * stride_kn
            v_rows = cache_row.to(tl.int64) * stride_vb + offs_n.to(tl.int64) * stride_vn
        kt = tl.load(K + k_head + k_rows[None, :] + offs_d[:, None], mask=n_ok[None, :] & d_ok[:, None], other=0.0)
        qk = tl.dot(q, kt, input_precision=DOT_PREC)
        s, _ = score_log2(qk, tok[:, None], kpos[None, :], seqlen_q, seqlen_eff, diag, qk_scale, softcap_scale,
                          softcap_out, slope2, K, 0, 0, SOFTCAP, ALIBI, False)
        ok = visible(tok[:, None], kpos[None, :], seqlen_eff, diag, win_left, win_right, True, LOCAL) & n_ok[None, :]
        s = tl.where(ok, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.math.exp2(s - m_use[:, None])
        alpha = tl.math.exp2(m_i - m_use)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(V + v_head + v_rows[:, None] + offs_d[None, :], mask=n_ok[:, None] & d_ok[None, :], other=0.0)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=DOT_PREC)
        m_i = m_new

    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)
    io_ok = row_ok[:, None] & d_ok[None, :]
    # lse rows are (batch, nheads, seqlen_q); partials add a leading split index.
    lse_row = (off_b.to(tl.int64) * nheads + head) * seqlen_q + tok
    if SPLIT:
        part = split.to(tl.int64) * (tl.num_programs(2) // nheads_k) * nheads * seqlen_q
        tl.store(LsePart + part + lse_row, lse, mask=row_ok)
        tl.store(OutPart + (part + lse_row)[:, None] * BLOCK_D + offs_d[None, :], out, mask=io_ok)
    else:
        o_ptrs = (Out + off_b.to(tl.int64) * stride_ob + tok[:, None].to(tl.int64) * stride_om
                  + head[:, None].to(tl.int64) * stride_oh + offs_d[None, :])
        tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=io_ok)
        tl.store(Lse + lse_row, lse, mask=row_ok)


@triton.jit
def _combine_kernel(Out, Lse, OutPart, LsePart, stride_ob, stride_om, stride_oh, nheads, seqlen_q, rows, num_splits,
                    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_S: tl.constexpr):
    """Merge the splits of one output row ``(b, h, t)``: weights ``exp(lse_s - max)``; all -inf gives 0 / -inf."""
    row = tl.program_id(0).to(tl.int64)
    t = row % seqlen_q
    h = (row // seqlen_q) % nheads
    b = row // (seqlen_q * nheads)
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, BLOCK_D)
    s_ok = offs_s < num_splits
    lse_s = tl.load(LsePart + offs_s.to(tl.int64) * rows + row, mask=s_ok, other=float("-inf"))
    m = tl.max(lse_s, 0)
    m_use = tl.where(m == float("-inf"), 0.0, m)
    w = tl.exp(lse_s - m_use)
    total = tl.sum(w, 0)
    o_s = tl.load(OutPart + (offs_s.to(tl.int64) * rows + row)[:, None] * BLOCK_D + offs_d[None, :],
                  mask=s_ok[:, None], other=0.0)
    safe = tl.where(total == 0.0, 1.0, total)
    out = tl.sum(o_s * w[:, None], 0) / safe
    lse = tl.where(total == 0.0, float("-inf"), m_use + tl.log(safe))
    tl.store(Out + b * stride_ob + t * stride_om + h * stride_oh + offs_d, out.to(Out.dtype.element_ty),
             mask=offs_d < HEAD_DIM)
    tl.store(Lse + row, lse)


@dataclass(frozen=True)
class DecodeConfig:
    block_n: int
    num_warps: int
    num_stages: int
    page_tiles: bool = True  # paged caches: one block-table load per key tile when pages hold whole tiles


def decode_config(head_dim: int, device: torch.device, paged: bool = False) -> DecodeConfig:
    if device.type != "cuda" or interpreting():
        return DecodeConfig(16, 1, 1)
    # Swept on H100 (benchmarks/NOTES.md, results/sweeps/h100-2026-11-2[45]-decode-*.csv): contiguous caches do
    # best with 32-key tiles; paged ones with 64 (one block-table load per tile amortised over more keys: 1.63 vs
    # 1.37 TB/s at B=1, 2.92 vs 2.37 at B=32, S=16K).
    return DecodeConfig(64, 4, 3) if paged else DecodeConfig(32, 4, 3)


def _num_sms(device: torch.device) -> int:
    if device.type != "cuda":
        return 4
    return torch.cuda.get_device_properties(device).multi_processor_count


def num_splits_heuristic(batch: int, nheads_k: int, m_tiles: int, max_seqlen_k: int, block_n: int,
                         num_sms: int) -> int:
    """Enough programs for about two waves over the multiprocessors, while each split keeps >= 4 key tiles
    (shorter splits spend more on the combine and the tile prologue than they save)."""
    programs = max(1, batch * nheads_k * m_tiles)
    if programs >= num_sms:
        return 1
    tiles = max(1, triton.cdiv(max_seqlen_k, block_n))
    return int(max(1, min(triton.cdiv(2 * num_sms, programs), tiles // 4, 128)))


def decode_forward(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    seqlens_k: torch.Tensor,
    f: Features,
    max_seqlen_k: int,
    cache_leftpad: Optional[torch.Tensor] = None,
    cache_batch_idx: Optional[torch.Tensor] = None,
    block_table: Optional[torch.Tensor] = None,
    num_splits: int = 0,
    seqlen_new: int = 0,
    out: Optional[torch.Tensor] = None,
    config: Optional[DecodeConfig] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(out, lse)`` of ``q`` ``(batch, seqlen_q, nheads, headdim)`` against the cache; validated inputs.

    Sequence ``b`` ends at ``seqlens_k[b] + seqlen_new`` (int32 ``seqlens_k``: the fill before an append of
    ``seqlen_new`` tokens, so no device op is needed to add them); ``max_seqlen_k`` bounds it (sizes the split
    heuristic only). ``f`` carries scale, causal, window, softcap and ALiBi. ``num_splits=0`` picks by heuristic.
    """
    batch, seqlen_q, nheads, head_dim = q.shape
    nheads_k = k_cache.shape[2]
    group = nheads // nheads_k
    out = torch.empty_like(q) if out is None else out
    lse = torch.empty(batch, nheads, seqlen_q, device=q.device, dtype=torch.float32)
    if q.numel() == 0:
        return out, lse
    cfg = config or decode_config(head_dim, q.device, block_table is not None)
    block_d = max(16, triton.next_power_of_2(head_dim))
    rows = seqlen_q * group
    block_m = 16 if rows <= 16 else (32 if rows <= 32 else 64)
    m_tiles = triton.cdiv(rows, block_m)
    if num_splits <= 0:
        num_splits = num_splits_heuristic(batch, nheads_k, m_tiles, max_seqlen_k, cfg.block_n, _num_sms(q.device))
    local, left, right, _ = window_bounds(seqlen_q, max(max_seqlen_k, seqlen_q), f.causal, f.window_size)
    softcap = float(f.softcap)
    slopes = f.alibi_slopes
    slope_strides = (0, 0) if slopes is None else (
        (slopes.stride(0), slopes.stride(1)) if slopes.dim() == 2 else (0, slopes.stride(0)))
    split = num_splits > 1
    if split:
        lse_part = torch.empty(num_splits, batch, nheads, seqlen_q, device=q.device, dtype=torch.float32)
        out_part = torch.empty(num_splits, batch, nheads, seqlen_q, block_d, device=q.device, dtype=torch.float32)
    else:
        lse_part, out_part = lse, lse
    paged = block_table is not None
    page_size = k_cache.shape[1] if paged else 1
    dummy = seqlens_k
    _decode_kernel[(m_tiles, num_splits, batch * nheads_k)](
        q, k_cache, v_cache, out, lse, out_part, lse_part, seqlens_k,
        cache_leftpad if cache_leftpad is not None else dummy,
        cache_batch_idx if cache_batch_idx is not None else dummy,
        block_table if paged else dummy,
        slopes if slopes is not None else dummy,
        q.stride(0), q.stride(1), q.stride(2),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        out.stride(0), out.stride(1), out.stride(2),
        block_table.stride(0) if paged else 0, *slope_strides,
        nheads, nheads_k, seqlen_q, group, page_size, num_splits, seqlen_new,
        f.softmax_scale * LOG2E, f.softmax_scale / softcap if softcap > 0 else 0.0, softcap * LOG2E, left, right,
        HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M=block_m, BLOCK_N=cfg.block_n, LOCAL=local,
        SOFTCAP=softcap > 0, ALIBI=slopes is not None, PAGED=paged, LEFTPAD=cache_leftpad is not None,
        BATCH_IDX=cache_batch_idx is not None, SPLIT=split,
        PAGE_TILES=paged and cfg.page_tiles and page_size % cfg.block_n == 0,
        DOT_PREC=dot_precision(q.dtype),
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    if split:
        total_rows = batch * nheads * seqlen_q
        _combine_kernel[(total_rows,)](
            out, lse, out_part, lse_part, out.stride(0), out.stride(1), out.stride(2), nheads, seqlen_q,
            total_rows, num_splits, HEAD_DIM=head_dim, BLOCK_D=block_d,
            BLOCK_S=max(2, triton.next_power_of_2(num_splits)), num_warps=1 if interpreting() else 4,
        )
    return out, lse
