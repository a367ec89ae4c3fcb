"""FlashAttention-2 backward: two gradient kernels (and a preprocessing kernel for the atomic dQ modes), with
their launcher.

Nothing of size seqlen^2 is stored: the probabilities are recomputed from the forward's log-sum-exp,
``P = exp2(S * scale * log2e - lse * log2e)``, then with ``dS = P * (dP - delta)``, ``delta = rowsum(dO * O)``:

* ``_attn_bwd_dq_kernel`` (first): one program per query tile and head computes its rows' ``delta`` and lse in
  log2 units, stores them, and accumulates ``dQ += dS K``.
* ``_attn_bwd_dkdv_kernel`` (second): one program per key tile and kv head accumulates ``dV += P^T dO`` and
  ``dK += dS^T Q`` over every visible query tile of every query head that shares the kv head (GQA), so dK/dV
  need no atomics and the result is bit-identical run to run.

Splitting dQ from dK/dV recomputes ``Q K^T`` and ``dO V^T`` once more (7 products instead of 5) but keeps every
accumulator in registers and every write exclusive; benchmarks/NOTES.md weighs it against atomics.

On Hopper, for what it covers (plain/causal attention, GQA, fp16/bf16, head_dim 64/128), the warp-specialized
Gluon kernel of ``backward_sm90`` replaces the dK/dV kernel, and by default also adds dQ itself through TMA
reductions (5 products; ``dq_mode="tma"``), after the preprocessing pass for delta; ``Features.deterministic``
keeps dQ in its own kernel.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

from ..features import Features
from . import backward_sm90, configs, dq_convert, forward_sm90
from .configs import (TILING_STRATEGIES, KernelConfig, cdiv, dkdv_atomic_configs, dkdv_configs, dot_precision,
                      dq_configs, interpreting, launch_with_fallback, next_power_of_2)
from .descriptors import tile_descriptors
from .forward import LOG2E, feature_args
from .launch import Plan, PlanCache, launch
from .masks import key_range, query_range, sequence_bounds, visible
from .scores import dropout_draws, dropout_keep, score_log2, user_mask


@triton.jit
def _attn_bwd_preprocess_kernel(
    Out, dOut, Lse, Delta, Lse2, CuSeqQ,
    stride_ob, stride_om, stride_oh,
    stride_dob, stride_dom, stride_doh,
    stride_lb, stride_lh, seqlen_q,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, VARLEN: tl.constexpr,
):
    """``delta = rowsum(dO * O)`` and the lse in log2 units, with +inf for rows that saw no key (so P = 0)."""
    off_h = tl.program_id(1)
    off_b = tl.program_id(2)
    q_start, _, seqlen_q, _, _ = sequence_bounds(CuSeqQ, CuSeqQ, off_b, seqlen_q, 0, 0, VARLEN)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m[:, None] < seqlen_q) & (offs_d[None, :] < HEAD_DIM)
    rows = (q_start + offs_m)[:, None].to(tl.int64)
    o = tl.load(Out + off_b.to(tl.int64) * stride_ob + off_h.to(tl.int64) * stride_oh
                + rows * stride_om + offs_d[None, :], mask=mask, other=0.0)
    do = tl.load(dOut + off_b.to(tl.int64) * stride_dob + off_h.to(tl.int64) * stride_doh
                 + rows * stride_dom + offs_d[None, :], mask=mask, other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), axis=1)
    row = off_b.to(tl.int64) * stride_lb + off_h.to(tl.int64) * stride_lh + q_start + offs_m
    lse = tl.load(Lse + row, mask=offs_m < seqlen_q, other=float("-inf"))
    lse2 = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)
    tl.store(Delta + row, delta, mask=offs_m < seqlen_q)
    tl.store(Lse2 + row, lse2, mask=offs_m < seqlen_q)


@triton.jit
def _dkdv_tiles(dk, dv, k, v, q_base, do_base, lse2_base, delta_base, stride_qm, stride_dom,
                start_m, end_m, offs_n, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn, mask_base, stride_mm, stride_mn,
                drop_thresh, dropout_scale, seed, philox_base, philox_stride,
                dqa_base, stride_dqam, dq_desc, dq_head, dq_row0, sm_scale, full_lo, full_hi,
                q_desc, do_desc, off_b, off_h,
                HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, MASKED: tl.constexpr, LOCAL: tl.constexpr,
                WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr, BIAS: tl.constexpr,
                MASK: tl.constexpr, DROPOUT: tl.constexpr,
                EVEN_M: tl.constexpr, EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr, DQ_ATOMIC: tl.constexpr,
                TMA: tl.constexpr):
    """Accumulate one key tile's dK/dV over the query tiles ``[start_m, end_m)`` of one query head.

    ``MASKED``: 0 = no tile needs the band mask, 1 = every tile does, 2 = only tiles outside
    ``[full_lo, full_hi)`` do (one loop over the whole band instead of three, so the software pipeline is filled
    once per program rather than once per run of tiles).

    Tiles here are transposed (keys x queries), so the shared helpers get ``rows``/``cols`` as column/row vectors.
    With ``DQ_ATOMIC`` the same dS also yields this key tile's share of dQ (``dS K``), added into a float32
    accumulator: 1 = atomic adds through pointers, 2 = TMA bulk reductions through ``dq_desc`` (one instruction
    per tile, done by the copy engine).

    ``TMA``: Q and dO tiles come through the (batch, seqlen_q, heads, headdim) descriptors ``q_desc``/``do_desc``;
    rows past the end read as zeros, as the masked loads would give them.
    """
    offs_m0 = tl.arange(0, BLOCK_M)
    BLOCK_D: tl.constexpr = offs_d.shape[0]
    qt_ptrs = q_base + start_m.to(tl.int64) * stride_qm + (offs_m0[None, :] * stride_qm + offs_d[:, None])
    do_ptrs = do_base + start_m.to(tl.int64) * stride_dom + (offs_m0[:, None] * stride_dom + offs_d[None, :])
    d_ok = offs_d < HEAD_DIM
    rows_k = offs_n[:, None]
    BLOCK_KN: tl.constexpr = offs_n.shape[0]
    key0 = tl.min(offs_n, 0)  # first key of this tile (a multiple of 8), for the dropout counters
    for start in tl.range(start_m, end_m, BLOCK_M):
        offs_m = start + offs_m0
        m_ok = offs_m < seqlen_q
        if TMA:
            qt = tl.trans(tl.reshape(q_desc.load([off_b, start, off_h, 0]), [BLOCK_M, BLOCK_D]))
            do = tl.reshape(do_desc.load([off_b, start, off_h, 0]), [BLOCK_M, BLOCK_D])
        elif EVEN_M and EVEN_D:
            qt = tl.load(qt_ptrs)
            do = tl.load(do_ptrs)
        else:
            qt = tl.load(qt_ptrs, mask=m_ok[None, :] & d_ok[:, None], other=0.0)
            do = tl.load(do_ptrs, mask=m_ok[:, None] & d_ok[None, :], other=0.0)
        if EVEN_M:
            lse2 = tl.load(lse2_base + offs_m)
            delta = tl.load(delta_base + offs_m)
        else:
            # Rows past the end get lse = +inf, hence P = 0 and no contribution.
            lse2 = tl.load(lse2_base + offs_m, mask=m_ok, other=float("inf"))
            delta = tl.load(delta_base + offs_m, mask=m_ok, other=0.0)
        qkt = tl.dot(k, qt, input_precision=DOT_PREC)
        if SOFTCAP or ALIBI or BIAS:
            st, tt = score_log2(qkt, offs_m[None, :], rows_k, seqlen_q, seqlen_k, diag, qk_scale,
                                softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                SOFTCAP, ALIBI, BIAS)
            pt = tl.math.exp2(st - lse2[None, :])
        else:
            pt = tl.math.exp2(qkt * qk_scale - lse2[None, :])
        if MASKED == 2:
            if (start < full_lo) | (start >= full_hi):
                ok = visible(offs_m[None, :], rows_k, seqlen_k, diag, win_left, win_right, False, LOCAL, WIN_BLOCK)
                pt = tl.where(ok, pt, 0.0)
        elif MASKED:
            ok = visible(offs_m[None, :], rows_k, seqlen_k, diag, win_left, win_right, False, LOCAL, WIN_BLOCK)
            if MASK:
                ok = ok & user_mask(offs_m[None, :], rows_k, seqlen_q, seqlen_k, mask_base, stride_mm, stride_mn)
            pt = tl.where(ok, pt, 0.0)
        dpt = tl.dot(v, tl.trans(do), input_precision=DOT_PREC)
        if DROPOUT:
            # O = (P * Z) V with Z = keep / (1 - p): dV sees P * Z, and dP = (dO V^T) * Z.
            # The pattern is generated query-major (as in the forward) and transposed to this keys x queries tile.
            draws = dropout_draws(offs_m[:, None], key0, philox_stride, seed, philox_base, BLOCK_KN)
            keep = tl.trans(draws) >= drop_thresh
            pdt = tl.where(keep, pt * dropout_scale, 0.0)
            dpt = tl.where(keep, dpt * dropout_scale, 0.0)
        else:
            pdt = pt
        dv = tl.dot(pdt.to(do.dtype), do, dv, input_precision=DOT_PREC)
        dst = pt * (dpt - delta[None, :])
        if SOFTCAP:
            dst = dst * (1.0 - tt * tt)
        if DQ_ATOMIC != 0 and not EVEN_M:
            # Rows past the end must add exact zeros (they may belong to the next packed sequence).
            dst = tl.where(m_ok[None, :], dst, 0.0)
        dst_lp = dst.to(qt.dtype)
        dk = tl.dot(dst_lp, tl.trans(qt), dk, input_precision=DOT_PREC)
        if DQ_ATOMIC != 0:
            dq_part = tl.dot(tl.trans(dst_lp), k, input_precision=DOT_PREC) * sm_scale
            if DQ_ATOMIC == 2:
                dq_desc.atomic_add([dq_head, dq_row0 + start, 0], dq_part[None, :, :])
            else:
                tl.atomic_add(dqa_base + offs_m[:, None].to(tl.int64) * stride_dqam + offs_d[None, :], dq_part,
                              mask=m_ok[:, None] & d_ok[None, :], sem="relaxed")
        qt_ptrs += BLOCK_M * stride_qm
        do_ptrs += BLOCK_M * stride_dom
    return dk, dv


@triton.jit
def _dkdv_program(
    pid_n, off_hk, off_b,
    Q, K, V, dOut, Lse2, Delta, dK, dV, Bias, Mask, Slopes, CuSeqQ, CuSeqK, DQacc, dq_desc, q_desc, do_desc,
    stride_qb, stride_qm, stride_qh,
    stride_kb, stride_kn, stride_kh,
    stride_vb, stride_vn, stride_vh,
    stride_dob, stride_dom, stride_doh,
    stride_dkb, stride_dkn, stride_dkh,
    stride_dvb, stride_dvn, stride_dvh,
    stride_dqab, stride_dqah, stride_dqam,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_mb, stride_mh, stride_mm, stride_mn,
    stride_sb, stride_sh, stride_lb, stride_lh,
    nheads, seqlen_q, seqlen_k, group,
    sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
    drop_thresh, dropout_scale, seed, philox_offset, philox_stride,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    LOCAL: tl.constexpr, WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr,
    BIAS: tl.constexpr, MASK: tl.constexpr, DROPOUT: tl.constexpr, VARLEN: tl.constexpr,
    EVEN_M: tl.constexpr, EVEN_N: tl.constexpr, EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr,
    DQ_ATOMIC: tl.constexpr, ONE_LOOP: tl.constexpr, TMA: tl.constexpr,
):
    """dK/dV of key tile ``pid_n`` of kv head ``off_hk`` of batch entry ``off_b``."""
    n_start = pid_n * BLOCK_N
    q_start, k_start, seqlen_q, seqlen_k, diag = sequence_bounds(CuSeqQ, CuSeqK, off_b, seqlen_q, seqlen_k, diag,
                                                                 VARLEN)
    if VARLEN:
        if n_start >= seqlen_k:
            return
    offs_r = tl.arange(0, BLOCK_N)
    offs_n = n_start + offs_r
    offs_d = tl.arange(0, BLOCK_D)
    kv_mask = (offs_n[:, None] < seqlen_k) & (offs_d[None, :] < HEAD_DIM)

    k_ptrs = (K + off_b.to(tl.int64) * stride_kb + off_hk.to(tl.int64) * stride_kh
              + (k_start + n_start).to(tl.int64) * stride_kn + offs_r[:, None] * stride_kn + offs_d[None, :])
    v_ptrs = (V + off_b.to(tl.int64) * stride_vb + off_hk.to(tl.int64) * stride_vh
              + (k_start + n_start).to(tl.int64) * stride_vn + offs_r[:, None] * stride_vn + offs_d[None, :])
    if EVEN_N and EVEN_D:
        k = tl.load(k_ptrs)
        v = tl.load(v_ptrs)
    else:
        k = tl.load(k_ptrs, mask=kv_mask, other=0.0)
        v = tl.load(v_ptrs, mask=kv_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)

    SAFE: tl.constexpr = MASK
    lo, full_lo, full_hi, hi = query_range(n_start, seqlen_q, diag, win_left, win_right, BLOCK_M, BLOCK_N, LOCAL,
                                           WIN_BLOCK)
    for g in range(0, group):
        off_h = off_hk * group + g
        q_base = Q + off_b.to(tl.int64) * stride_qb + off_h.to(tl.int64) * stride_qh + q_start.to(tl.int64) * stride_qm
        do_base = (dOut + off_b.to(tl.int64) * stride_dob + off_h.to(tl.int64) * stride_doh
                   + q_start.to(tl.int64) * stride_dom)
        row_base = off_b.to(tl.int64) * stride_lb + off_h.to(tl.int64) * stride_lh + q_start
        bias_base = Bias + off_b.to(tl.int64) * stride_bb + off_h.to(tl.int64) * stride_bh
        mask_base = Mask + off_b.to(tl.int64) * stride_mb + off_h.to(tl.int64) * stride_mh
        slope2 = 0.0
        if ALIBI:
            slope2 = tl.load(Slopes + off_b * stride_sb + off_h * stride_sh).to(tl.float32) * 1.4426950408889634
        philox_base = philox_offset + row_base * philox_stride
        # dQ accumulator rows of this head: (batch, nheads, seqlen_q, D), or (nheads, total_q, D) for varlen.
        dqa_base = DQacc + off_b.to(tl.int64) * stride_dqab + off_h.to(tl.int64) * stride_dqah + q_start * stride_dqam
        dq_head = off_h if VARLEN else off_b * nheads + off_h
        if LOCAL and ONE_LOOP and not SAFE:
            dk, dv = _dkdv_tiles(dk, dv, k, v, q_base, do_base, Lse2 + row_base, Delta + row_base,
                                 stride_qm, stride_dom, lo, hi, offs_n, offs_d, seqlen_q, seqlen_k,
                                 diag, win_left, win_right, qk_scale,
                                 softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                 mask_base, stride_mm, stride_mn, drop_thresh, dropout_scale, seed, philox_base,
                                 philox_stride, dqa_base, stride_dqam, dq_desc, dq_head, q_start, sm_scale,
                                 full_lo, full_hi, q_desc, do_desc, off_b, off_h,
                                 HEAD_DIM, BLOCK_M, 2, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK,
                                 DROPOUT, EVEN_M, EVEN_D, DOT_PREC, DQ_ATOMIC, TMA)
        else:
            if LOCAL:
                dk, dv = _dkdv_tiles(dk, dv, k, v, q_base, do_base, Lse2 + row_base, Delta + row_base,
                                     stride_qm, stride_dom, lo, full_lo, offs_n, offs_d, seqlen_q, seqlen_k,
                                     diag, win_left, win_right, qk_scale,
                                     softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                     mask_base, stride_mm, stride_mn, drop_thresh, dropout_scale, seed, philox_base,
                                     philox_stride, dqa_base, stride_dqam, dq_desc, dq_head, q_start, sm_scale,
                                     full_lo, full_hi, q_desc, do_desc, off_b, off_h,
                                     HEAD_DIM, BLOCK_M, 1, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS,
                                     MASK, DROPOUT, EVEN_M, EVEN_D, DOT_PREC, DQ_ATOMIC, TMA)
            dk, dv = _dkdv_tiles(dk, dv, k, v, q_base, do_base, Lse2 + row_base, Delta + row_base,
                                 stride_qm, stride_dom, full_lo, full_hi, offs_n, offs_d, seqlen_q, seqlen_k,
                                 diag, win_left, win_right, qk_scale,
                                 softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                 mask_base, stride_mm, stride_mn, drop_thresh, dropout_scale, seed, philox_base,
                                 philox_stride, dqa_base, stride_dqam, dq_desc, dq_head, q_start, sm_scale,
                                 full_lo, full_hi, q_desc, do_desc, off_b, off_h,
                                 HEAD_DIM, BLOCK_M, SAFE, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS,
                                 MASK, DROPOUT, EVEN_M, EVEN_D, DOT_PREC, DQ_ATOMIC, TMA)
            if LOCAL:
                dk, dv = _dkdv_tiles(dk, dv, k, v, q_base, do_base, Lse2 + row_base, Delta + row_base,
                                     stride_qm, stride_dom, full_hi, hi, offs_n, offs_d, seqlen_q, seqlen_k,
                                     diag, win_left, win_right, qk_scale,
                                     softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                     mask_base, stride_mm, stride_mn, drop_thresh, dropout_scale, seed, philox_base,
                                     philox_stride, dqa_base, stride_dqam, dq_desc, dq_head, q_start, sm_scale,
                                     full_lo, full_hi, q_desc, do_desc, off_b, off_h,
                                     HEAD_DIM, BLOCK_M, 1, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS,
                                     MASK, DROPOUT, EVEN_M, EVEN_D, DOT_PREC, DQ_ATOMIC, TMA)
    dk = dk * sm_scale

    dk_ptrs = (dK + off_b.to(tl.int64) * stride_dkb + off_hk.to(tl.int64) * stride_dkh
               + (k_start + n_start).to(tl.int64) * stride_dkn + offs_r[:, None] * stride_dkn + offs_d[None, :])
    dv_ptrs = (dV + off_b.to(tl.int64) * stride_dvb + off_hk.to(tl.int64) * stride_dvh
               + (k_start + n_start).to(tl.int64) * stride_dvn + offs_r[:, None] * stride_dvn + offs_d[None, :])
    if EVEN_N and EVEN_D:
        tl.store(dk_ptrs, dk.to(dK.dtype.element_ty))
        tl.store(dv_ptrs, dv.to(dV.dtype.element_ty))
    else:
        tl.store(dk_ptrs, dk.to(dK.dtype.element_ty), mask=kv_mask)
        tl.store(dv_ptrs, dv.to(dV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _attn_bwd_dkdv_kernel(
    Q, K, V, dOut, Lse2, Delta, dK, dV, Bias, Mask, Slopes, CuSeqQ, CuSeqK, DQacc, dq_desc, QDesc, dODesc,
    stride_qb, stride_qm, stride_qh,
    stride_kb, stride_kn, stride_kh,
    stride_vb, stride_vn, stride_vh,
    stride_dob, stride_dom, stride_doh,
    stride_dkb, stride_dkn, stride_dkh,
    stride_dvb, stride_dvn, stride_dvh,
    stride_dqab, stride_dqah, stride_dqam,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_mb, stride_mh, stride_mm, stride_mn,
    stride_sb, stride_sh, stride_lb, stride_lh,
    nheads, seqlen_q, seqlen_k, group,
    sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
    drop_thresh, dropout_scale, seed, philox_offset, philox_stride,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    LOCAL: tl.constexpr, WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr,
    BIAS: tl.constexpr, MASK: tl.constexpr, DROPOUT: tl.constexpr, VARLEN: tl.constexpr,
    EVEN_M: tl.constexpr, EVEN_N: tl.constexpr, EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr,
    DQ_ATOMIC: tl.constexpr, ONE_LOOP: tl.constexpr, TMA: tl.constexpr,
):
    _dkdv_program(
        tl.program_id(0), tl.program_id(1), tl.program_id(2),
        Q, K, V, dOut, Lse2, Delta, dK, dV, Bias, Mask, Slopes, CuSeqQ, CuSeqK, DQacc, dq_desc, QDesc, dODesc,
        stride_qb, stride_qm, stride_qh, stride_kb, stride_kn, stride_kh, stride_vb, stride_vn, stride_vh,
        stride_dob, stride_dom, stride_doh, stride_dkb, stride_dkn, stride_dkh, stride_dvb, stride_dvn, stride_dvh,
        stride_dqab, stride_dqah, stride_dqam, stride_bb, stride_bh, stride_bm, stride_bn,
        stride_mb, stride_mh, stride_mm, stride_mn, stride_sb, stride_sh, stride_lb, stride_lh,
        nheads, seqlen_q, seqlen_k, group,
        sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
        drop_thresh, dropout_scale, seed, philox_offset, philox_stride,
        HEAD_DIM, BLOCK_D, BLOCK_M, BLOCK_N, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK, DROPOUT, VARLEN,
        EVEN_M, EVEN_N, EVEN_D, DOT_PREC, DQ_ATOMIC, ONE_LOOP, TMA,
    )


@triton.jit
def _dq_tiles(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, start_n, end_n,
              offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
              softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn, mask_base, stride_mm, stride_mn,
              drop_thresh, dropout_scale, seed, philox_base, philox_stride, dbias_base, stride_dbm, full_lo, full_hi,
              k_desc, v_desc, off_b, off_hk,
              HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, MASKED: tl.constexpr, LOCAL: tl.constexpr,
              WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr, BIAS: tl.constexpr,
              MASK: tl.constexpr, DROPOUT: tl.constexpr, BIAS_GRAD: tl.constexpr,
              EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr, TMA: tl.constexpr):
    """Accumulate one query tile's dQ over the key tiles ``[start_n, end_n)``; optionally write dS as dBias.

    ``MASKED`` as in ``forward._fwd_tiles``: 0 none, 1 every tile (band, user mask, ragged end), 2 only the band's
    edge tiles outside ``[full_lo, full_hi)``, in one loop (no tile hangs over the end of the keys).

    ``TMA``: K and V tiles come through the (batch, seqlen_k, heads_k, headdim) descriptors ``k_desc``/``v_desc``;
    keys past the end read as zeros, as the masked loads would give them.
    """
    offs_n0 = tl.arange(0, BLOCK_N)
    BLOCK_D: tl.constexpr = offs_d.shape[0]
    kt_ptrs = k_base + start_n.to(tl.int64) * stride_kn + (offs_n0[None, :] * stride_kn + offs_d[:, None])
    vt_ptrs = v_base + start_n.to(tl.int64) * stride_vn + (offs_n0[None, :] * stride_vn + offs_d[:, None])
    d_ok = offs_d < HEAD_DIM
    rows = offs_m[:, None]
    for start in tl.range(start_n, end_n, BLOCK_N):
        offs_n = start + offs_n0
        if TMA:
            kt = tl.trans(tl.reshape(k_desc.load([off_b, start, off_hk, 0]), [BLOCK_N, BLOCK_D]))
            vt = tl.trans(tl.reshape(v_desc.load([off_b, start, off_hk, 0]), [BLOCK_N, BLOCK_D]))
        elif MASKED == 1:
            kv_ok = (offs_n[None, :] < seqlen_k) & d_ok[:, None]
            kt = tl.load(kt_ptrs, mask=kv_ok, other=0.0)
            vt = tl.load(vt_ptrs, mask=kv_ok, other=0.0)
        elif EVEN_D:
            kt = tl.load(kt_ptrs)
            vt = tl.load(vt_ptrs)
        else:
            kt = tl.load(kt_ptrs, mask=d_ok[:, None], other=0.0)
            vt = tl.load(vt_ptrs, mask=d_ok[:, None], other=0.0)
        qk = tl.dot(q, kt, input_precision=DOT_PREC)
        if SOFTCAP or ALIBI or BIAS:
            s, t = score_log2(qk, rows, offs_n[None, :], seqlen_q, seqlen_k, diag, qk_scale, softcap_scale,
                              softcap_out, slope2, bias_base, stride_bm, stride_bn, SOFTCAP, ALIBI, BIAS)
            p = tl.math.exp2(s - lse2[:, None])
        else:
            p = tl.math.exp2(qk * qk_scale - lse2[:, None])
        if MASKED == 2:
            if (start < full_lo) | (start >= full_hi):
                p = tl.where(visible(rows, offs_n[None, :], seqlen_k, diag, win_left, win_right, False, LOCAL,
                                     WIN_BLOCK), p, 0.0)
        elif MASKED:
            ok = visible(rows, offs_n[None, :], seqlen_k, diag, win_left, win_right, True, LOCAL, WIN_BLOCK)
            if MASK:
                ok = ok & user_mask(rows, offs_n[None, :], seqlen_q, seqlen_k, mask_base, stride_mm, stride_mn)
            p = tl.where(ok, p, 0.0)
        dp = tl.dot(do, vt, input_precision=DOT_PREC)
        if DROPOUT:
            keep = dropout_keep(rows, start, philox_stride, seed, philox_base, drop_thresh, BLOCK_N)
            dp = tl.where(keep, dp * dropout_scale, 0.0)
        ds = p * (dp - delta[:, None])
        if BIAS_GRAD:
            # The bias is added after the softcap, so its gradient is dS itself. Exclusive writes: deterministic.
            tl.store(dbias_base + rows.to(tl.int64) * stride_dbm + offs_n[None, :], ds,
                     mask=(rows < seqlen_q) & (offs_n[None, :] < seqlen_k))
        if SOFTCAP:
            ds = ds * (1.0 - t * t)
        dq = tl.dot(ds.to(kt.dtype), tl.trans(kt), dq, input_precision=DOT_PREC)
        kt_ptrs += BLOCK_N * stride_kn
        vt_ptrs += BLOCK_N * stride_vn
    return dq


@triton.jit
def _dq_program(
    pid_m, off_h, off_b,
    Q, K, V, Out, dOut, Lse, Lse2, Delta, dQ, Bias, Mask, Slopes, dBias, CuSeqQ, CuSeqK, k_desc, v_desc,
    stride_qb, stride_qm, stride_qh,
    stride_kb, stride_kn, stride_kh,
    stride_vb, stride_vn, stride_vh,
    stride_ob, stride_om, stride_oh,
    stride_dob, stride_dom, stride_doh,
    stride_dqb, stride_dqm, stride_dqh,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_mb, stride_mh, stride_mm, stride_mn,
    stride_sb, stride_sh, stride_lb, stride_lh,
    nheads, seqlen_q, seqlen_k, group,
    sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
    drop_thresh, dropout_scale, seed, philox_offset, philox_stride,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    LOCAL: tl.constexpr, WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr,
    BIAS: tl.constexpr, MASK: tl.constexpr, DROPOUT: tl.constexpr, BIAS_GRAD: tl.constexpr, VARLEN: tl.constexpr,
    EVEN_M: tl.constexpr, EVEN_N: tl.constexpr, EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr,
    DELTA_READY: tl.constexpr, ONE_LOOP: tl.constexpr, TMA: tl.constexpr,
):
    """dQ of query tile ``pid_m`` of head ``off_h`` of batch entry ``off_b``. Unless ``DELTA_READY`` (a
    preprocessing pass wrote them), it also computes and stores the tile's delta and lse2."""
    off_hk = off_h // group
    m_start = pid_m * BLOCK_M
    q_start, k_start, seqlen_q, seqlen_k, diag = sequence_bounds(CuSeqQ, CuSeqK, off_b, seqlen_q, seqlen_k, diag,
                                                                 VARLEN)
    if VARLEN:
        if m_start >= seqlen_q:
            return
    offs_r = tl.arange(0, BLOCK_M)
    offs_m = m_start + offs_r
    offs_d = tl.arange(0, BLOCK_D)
    io_mask = (offs_m[:, None] < seqlen_q) & (offs_d[None, :] < HEAD_DIM)

    q_ptrs = (Q + off_b.to(tl.int64) * stride_qb + off_h.to(tl.int64) * stride_qh
              + (q_start + m_start).to(tl.int64) * stride_qm + offs_r[:, None] * stride_qm + offs_d[None, :])
    do_ptrs = (dOut + off_b.to(tl.int64) * stride_dob + off_h.to(tl.int64) * stride_doh
               + (q_start + m_start).to(tl.int64) * stride_dom + offs_r[:, None] * stride_dom + offs_d[None, :])
    row_base = off_b.to(tl.int64) * stride_lb + off_h.to(tl.int64) * stride_lh + q_start
    row = row_base + offs_m
    if EVEN_M and EVEN_D:
        q = tl.load(q_ptrs)
        do = tl.load(do_ptrs)
    else:
        q = tl.load(q_ptrs, mask=io_mask, other=0.0)
        do = tl.load(do_ptrs, mask=io_mask, other=0.0)
    m_ok = offs_m < seqlen_q
    if DELTA_READY:
        lse2 = tl.load(Lse2 + row, mask=m_ok, other=float("inf"))
        delta = tl.load(Delta + row, mask=m_ok, other=0.0)
    else:
        # This program owns these query rows, so it also computes their delta = rowsum(dO * O) and the lse in
        # log2 units (+inf for rows that saw no key, so P = 0) and stores both for the dK/dV kernel, launched
        # after it: no separate preprocessing pass over O and dO.
        o_ptrs = (Out + off_b.to(tl.int64) * stride_ob + off_h.to(tl.int64) * stride_oh
                  + (q_start + m_start).to(tl.int64) * stride_om + offs_r[:, None] * stride_om + offs_d[None, :])
        if EVEN_M and EVEN_D:
            o = tl.load(o_ptrs)
        else:
            o = tl.load(o_ptrs, mask=io_mask, other=0.0)
        delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), axis=1)
        lse = tl.load(Lse + row, mask=m_ok, other=float("-inf"))
        lse2 = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)
        tl.store(Delta + row, delta, mask=m_ok)
        tl.store(Lse2 + row, lse2, mask=m_ok)

    k_base = K + off_b.to(tl.int64) * stride_kb + off_hk.to(tl.int64) * stride_kh + k_start.to(tl.int64) * stride_kn
    v_base = V + off_b.to(tl.int64) * stride_vb + off_hk.to(tl.int64) * stride_vh + k_start.to(tl.int64) * stride_vn
    bias_base = Bias + off_b.to(tl.int64) * stride_bb + off_h.to(tl.int64) * stride_bh
    mask_base = Mask + off_b.to(tl.int64) * stride_mb + off_h.to(tl.int64) * stride_mh
    dbias_base = dBias + row_base * seqlen_k  # dBias is a full contiguous (batch, nheads, seqlen_q, seqlen_k)
    slope2 = 0.0
    if ALIBI:
        slope2 = tl.load(Slopes + off_b * stride_sb + off_h * stride_sh).to(tl.float32) * 1.4426950408889634
    philox_base = philox_offset + row_base * philox_stride
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    SAFE: tl.constexpr = MASK
    lo, full_lo, full_hi, hi = key_range(m_start, seqlen_k, diag, win_left, win_right, BLOCK_M, BLOCK_N, LOCAL,
                                         WIN_BLOCK)
    if LOCAL and ONE_LOOP and EVEN_N and not SAFE:
        dq = _dq_tiles(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, lo, hi,
                       offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                       softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn, mask_base, stride_mm,
                       stride_mn, drop_thresh, dropout_scale, seed, philox_base, philox_stride, dbias_base,
                       seqlen_k, full_lo, full_hi, k_desc, v_desc, off_b, off_hk,
                       HEAD_DIM, BLOCK_N, 2, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS,
                       MASK, DROPOUT, BIAS_GRAD, EVEN_D, DOT_PREC, TMA)
    else:
        if LOCAL:
            dq = _dq_tiles(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, lo, full_lo,
                           offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                           softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn, mask_base, stride_mm,
                           stride_mn, drop_thresh, dropout_scale, seed, philox_base, philox_stride, dbias_base,
                           seqlen_k, full_lo, full_hi, k_desc, v_desc, off_b, off_hk,
                           HEAD_DIM, BLOCK_N, 1, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS,
                           MASK, DROPOUT, BIAS_GRAD, EVEN_D, DOT_PREC, TMA)
        dq = _dq_tiles(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, full_lo, full_hi,
                       offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                       softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn, mask_base, stride_mm,
                       stride_mn, drop_thresh, dropout_scale, seed, philox_base, philox_stride, dbias_base,
                       seqlen_k, full_lo, full_hi, k_desc, v_desc, off_b, off_hk,
                       HEAD_DIM, BLOCK_N, SAFE, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS,
                       MASK, DROPOUT, BIAS_GRAD, EVEN_D, DOT_PREC, TMA)
        if LOCAL or not EVEN_N:  # else empty: not compiled, so it cannot cost the main loop registers
            dq = _dq_tiles(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, full_hi, hi,
                           offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                           softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn, mask_base, stride_mm,
                           stride_mn, drop_thresh, dropout_scale, seed, philox_base, philox_stride, dbias_base,
                           seqlen_k, full_lo, full_hi, k_desc, v_desc, off_b, off_hk,
                           HEAD_DIM, BLOCK_N, 1, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS,
                           MASK, DROPOUT, BIAS_GRAD, EVEN_D, DOT_PREC, TMA)
    dq = dq * sm_scale

    dq_ptrs = (dQ + off_b.to(tl.int64) * stride_dqb + off_h.to(tl.int64) * stride_dqh
               + (q_start + m_start).to(tl.int64) * stride_dqm + offs_r[:, None] * stride_dqm + offs_d[None, :])
    if EVEN_M and EVEN_D:
        tl.store(dq_ptrs, dq.to(dQ.dtype.element_ty))
    else:
        tl.store(dq_ptrs, dq.to(dQ.dtype.element_ty), mask=io_mask)


@triton.jit
def _attn_bwd_dq_kernel(
    Q, K, V, Out, dOut, Lse, Lse2, Delta, dQ, Bias, Mask, Slopes, dBias, CuSeqQ, CuSeqK, KDesc, VDesc,
    stride_qb, stride_qm, stride_qh,
    stride_kb, stride_kn, stride_kh,
    stride_vb, stride_vn, stride_vh,
    stride_ob, stride_om, stride_oh,
    stride_dob, stride_dom, stride_doh,
    stride_dqb, stride_dqm, stride_dqh,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_mb, stride_mh, stride_mm, stride_mn,
    stride_sb, stride_sh, stride_lb, stride_lh,
    nheads, seqlen_q, seqlen_k, group,
    sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
    drop_thresh, dropout_scale, seed, philox_offset, philox_stride,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    LOCAL: tl.constexpr, WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr,
    BIAS: tl.constexpr, MASK: tl.constexpr, DROPOUT: tl.constexpr, BIAS_GRAD: tl.constexpr, VARLEN: tl.constexpr,
    EVEN_M: tl.constexpr, EVEN_N: tl.constexpr, EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr,
    ONE_LOOP: tl.constexpr, TMA: tl.constexpr,
):
    # Under a band the last query tiles see the most keys: they start first, so the tail is short.
    num_m = tl.num_programs(0)
    pid_m = (num_m - 1 - tl.program_id(0)) if LOCAL else tl.program_id(0)
    _dq_program(
        pid_m, tl.program_id(1), tl.program_id(2),
        Q, K, V, Out, dOut, Lse, Lse2, Delta, dQ, Bias, Mask, Slopes, dBias, CuSeqQ, CuSeqK, KDesc, VDesc,
        stride_qb, stride_qm, stride_qh, stride_kb, stride_kn, stride_kh, stride_vb, stride_vn, stride_vh,
        stride_ob, stride_om, stride_oh, stride_dob, stride_dom, stride_doh, stride_dqb, stride_dqm, stride_dqh,
        stride_bb, stride_bh, stride_bm, stride_bn, stride_mb, stride_mh, stride_mm, stride_mn,
        stride_sb, stride_sh, stride_lb, stride_lh,
        nheads, seqlen_q, seqlen_k, group,
        sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
        drop_thresh, dropout_scale, seed, philox_offset, philox_stride,
        HEAD_DIM, BLOCK_D, BLOCK_M, BLOCK_N, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK, DROPOUT, BIAS_GRAD,
        VARLEN, EVEN_M, EVEN_N, EVEN_D, DOT_PREC, False, ONE_LOOP, TMA,
    )


@triton.jit
def _attn_bwd_fused_kernel(
    Q, K, V, dOut, Lse2, Delta, dQ, dK, dV, Bias, Mask, Slopes, dBias, CuSeqQ, CuSeqK, QDesc, dODesc, KDesc, VDesc,
    stride_qb, stride_qm, stride_qh,
    stride_kb, stride_kn, stride_kh,
    stride_vb, stride_vn, stride_vh,
    stride_dob, stride_dom, stride_doh,
    stride_dqb, stride_dqm, stride_dqh,
    stride_dkb, stride_dkn, stride_dkh,
    stride_dvb, stride_dvn, stride_dvh,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_mb, stride_mh, stride_mm, stride_mn,
    stride_sb, stride_sh, stride_lb, stride_lh,
    nheads, seqlen_q, seqlen_k, group,
    sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
    drop_thresh, dropout_scale, seed, philox_offset, philox_stride, n_kv_tiles, n_q_tiles,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M1: tl.constexpr, BLOCK_N1: tl.constexpr,
    BLOCK_M2: tl.constexpr, BLOCK_N2: tl.constexpr,
    LOCAL: tl.constexpr, WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr,
    BIAS: tl.constexpr, MASK: tl.constexpr, DROPOUT: tl.constexpr, BIAS_GRAD: tl.constexpr, VARLEN: tl.constexpr,
    EVEN_M1: tl.constexpr, EVEN_N1: tl.constexpr, EVEN_M2: tl.constexpr, EVEN_N2: tl.constexpr,
    EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr, ONE_LOOP: tl.constexpr, TMA: tl.constexpr,
):
    """Both gradient kernels in one launch (after the preprocessing pass): per kv head, the first ``n_kv_tiles``
    programs compute dK/dV of one key tile each, the next ``group * n_q_tiles`` dQ of one query tile of one of
    the group's query heads. The two kinds of programs then share the GPU instead of running one after the
    other, so neither kernel's last, partly idle wave is paid alone."""
    pid = tl.program_id(0)
    off_hk = tl.program_id(1)
    off_b = tl.program_id(2)
    if pid < n_kv_tiles:
        _dkdv_program(
            pid, off_hk, off_b,
            Q, K, V, dOut, Lse2, Delta, dK, dV, Bias, Mask, Slopes, CuSeqQ, CuSeqK, Delta, None, QDesc, dODesc,
            stride_qb, stride_qm, stride_qh, stride_kb, stride_kn, stride_kh, stride_vb, stride_vn, stride_vh,
            stride_dob, stride_dom, stride_doh, stride_dkb, stride_dkn, stride_dkh,
            stride_dvb, stride_dvn, stride_dvh, 0, 0, 0, stride_bb, stride_bh, stride_bm, stride_bn,
            stride_mb, stride_mh, stride_mm, stride_mn, stride_sb, stride_sh, stride_lb, stride_lh,
            nheads, seqlen_q, seqlen_k, group,
            sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
            drop_thresh, dropout_scale, seed, philox_offset, philox_stride,
            HEAD_DIM, BLOCK_D, BLOCK_M1, BLOCK_N1, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK, DROPOUT, VARLEN,
            EVEN_M1, EVEN_N1, EVEN_D, DOT_PREC, 0, ONE_LOOP, TMA,
        )
    else:
        j = pid - n_kv_tiles
        g = j // n_q_tiles
        pid_m = j - g * n_q_tiles
        if LOCAL:
            pid_m = n_q_tiles - 1 - pid_m
        _dq_program(
            pid_m, off_hk * group + g, off_b,
            Q, K, V, Delta, dOut, Delta, Lse2, Delta, dQ, Bias, Mask, Slopes, dBias, CuSeqQ, CuSeqK, KDesc, VDesc,
            stride_qb, stride_qm, stride_qh, stride_kb, stride_kn, stride_kh, stride_vb, stride_vn, stride_vh,
            0, 0, 0, stride_dob, stride_dom, stride_doh, stride_dqb, stride_dqm, stride_dqh,
            stride_bb, stride_bh, stride_bm, stride_bn, stride_mb, stride_mh, stride_mm, stride_mn,
            stride_sb, stride_sh, stride_lb, stride_lh,
            nheads, seqlen_q, seqlen_k, group,
            sm_scale, qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
            drop_thresh, dropout_scale, seed, philox_offset, philox_stride,
            HEAD_DIM, BLOCK_D, BLOCK_M2, BLOCK_N2, LOCAL, WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK, DROPOUT, BIAS_GRAD,
            VARLEN, EVEN_M2, EVEN_N2, EVEN_D, DOT_PREC, True, ONE_LOOP, TMA,
        )


def attention_backward(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    f: Features,
    bias_grad: bool = False,
    dkdv_config: Optional[KernelConfig] = None,
    dq_config: Optional[KernelConfig] = None,
    grads: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None,
    dq_mode: Optional[str] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Gradients ``(dq, dk, dv, dbias)`` for the forward of ``attention_forward``; same layouts as q, k, v.

    ``dbias`` is a float32 ``(batch, nheads, seqlen_q, seqlen_k)`` when ``bias_grad``, else None. ``grads`` may
    pass preallocated ``(dq, dk, dv)`` (the tests poison them to catch unwritten elements).

    ``dq_mode``: ``"split"`` computes dQ in its own kernel (7 matrix products per tile pair, exclusive writes,
    bit-identical run to run); ``"fused"`` runs the same dQ and dK/dV programs in one launch (after a
    preprocessing pass for delta); ``"atomic"``/``"tma"`` add each key tile's share of dQ from the dK/dV kernel into a
    float32 buffer (5 products; the order of the additions varies, so the last bits of dQ do too), through
    pointer atomics or TMA bulk reductions. None picks the default for the device (see ``default_dq_mode``).
    With ``bias_grad`` the split kernels always run (their dQ programs write dBias), and ``"tma"`` runs as
    ``"atomic"`` where there are no bulk reductions (CPU tensors, Triton's interpreter).
    """
    key = None
    if (dq_mode is None and grads is None and not bias_grad and dkdv_config is None and dq_config is None
            and q.device.type == "cuda"):
        # A call like an earlier one relaunches its recorded plans (ops/launch.py), as the forward does.
        key = _plan_key(dout, q, k, v, out, lse, f)
        planned = _planned_backward(key, dout, q, k, v, out, lse)
        if planned is not None:
            return planned
    fa = feature_args(q, k, f)
    lay, flags, local = fa["lay"], fa["flags"], fa["local"]
    batch, seqlen_q, seqlen_k, nheads, head_dim = lay.batch, lay.seqlen_q, lay.seqlen_k, lay.nheads, lay.head_dim
    dq, dk, dv = grads if grads is not None else (torch.empty_like(q), torch.empty_like(k), torch.empty_like(v))
    # Tiles outside the band are never visited, so their bias gradient must start at 0.
    dbias = (torch.zeros(batch, nheads, seqlen_q, seqlen_k, device=q.device, dtype=torch.float32)
             if bias_grad else None)
    if lay.empty or seqlen_k == 0 or k.numel() == 0:
        return dq.zero_(), dk.zero_(), dv.zero_(), dbias
    block_d = max(16, next_power_of_2(head_dim))
    group = nheads // lay.nheads_k
    qk_scale = f.softmax_scale * LOG2E
    prec = dot_precision(q.dtype)
    cu_q, cu_k = lay.cu_args(q)
    even = not lay.varlen  # packed sequences end anywhere inside a tile

    delta = torch.empty(lay.lse_shape, device=q.device, dtype=torch.float32)
    lse2 = torch.empty_like(delta)
    common = (*lay.lse_strides, nheads, seqlen_q, seqlen_k, group, f.softmax_scale, qk_scale, *fa["scalars"],
              fa["diag"], *fa["band"], *fa["dropout"])

    if dq_mode not in (None, "split", "fused", "atomic", "tma"):
        raise ValueError(f"dq_mode must be None, 'split', 'fused', 'atomic' or 'tma', got {dq_mode!r}")
    if dq_mode is None and (f.deterministic or torch.are_deterministic_algorithms_enabled()):
        dq_mode = "split"  # the other modes may add dQ in float32 in a varying order (atomic/TMA reductions)
    mode = "split" if bias_grad else (dq_mode or default_dq_mode(q, local))
    # The Gluon dK/dV kernel on Hopper either pairs with the split dQ kernel or adds dQ itself through TMA
    # reductions ("tma"), as asked or as measured faster (configs.backward_gluon_dq).
    gluon_dkdv = mode in ("split", "fused", "tma") and not bias_grad and backward_sm90.supported(
        q, k, v, dout, dk, dv, f)
    if gluon_dkdv:
        fuse = dq_mode == "tma" or (dq_mode is None and configs.backward_gluon_dq(
            head_dim, f.causal, seqlen_k, backward_sm90.banded(f), f.dropout_p > 0,
            alibi_only=f.alibi_slopes is not None and tuple(f.window_size) == (-1, -1)))
        mode = "tma" if fuse else "split"
    if mode == "tma" and (q.device.type != "cuda" or interpreting()):
        mode = "atomic"  # the interpreter has no bulk reductions
    dq_acc = None
    acc_strides = (0, 0, 0)
    if mode in ("atomic", "tma"):
        # (batch, nheads, seqlen_q, D) or (nheads, total_q, D): one head's rows are contiguous for the TMA box.
        rows = lay.total_q if lay.varlen else seqlen_q
        dq_acc = torch.zeros((1 if lay.varlen else batch) * nheads, rows, head_dim, device=q.device,
                             dtype=torch.float32)
        acc_strides = (0 if lay.varlen else nheads * rows * head_dim, rows * head_dim, head_dim)

    use_tma = not lay.varlen and configs.backward_tma(head_dim, block_d, local)
    acc4 = dq_acc.view(batch, nheads, seqlen_q, head_dim) if dq_acc is not None and not lay.varlen else None
    # Plans are kept for the Gluon path only (the default on Hopper where it applies); their tensors by role.
    roles = _roles(q, k, v, dout, out, lse, delta, lse2, dq, dk, dv, acc4) if key is not None and gluon_dkdv else None
    plans = {}

    def descriptors(tensors, rows):
        return tile_descriptors(tensors, rows, block_d) if use_tma else (None,) * len(tensors)

    def launch_dkdv(cfg: KernelConfig) -> None:
        q_desc, do_desc = descriptors((q, dout), cfg.block_m)
        desc = None
        if mode == "tma":
            from triton.tools.tensor_descriptor import TensorDescriptor

            desc = TensorDescriptor(dq_acc, list(dq_acc.shape), list(dq_acc.stride()), [1, cfg.block_m, block_d])
        _attn_bwd_dkdv_kernel[(cdiv(seqlen_k, cfg.block_n), lay.nheads_k, batch)](
            q, k, v, dout, lse2, delta, dk, dv, *fa["tensors"], cu_q, cu_k,
            dq_acc if dq_acc is not None else delta, desc, q_desc, do_desc,
            *lay.strides(q), *lay.strides(k), *lay.strides(v), *lay.strides(dout), *lay.strides(dk),
            *lay.strides(dv), *acc_strides, *fa["strides"], *common,
            HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n,
            LOCAL=local, **flags, EVEN_M=even and seqlen_q % cfg.block_m == 0,
            EVEN_N=even and seqlen_k % cfg.block_n == 0, EVEN_D=head_dim == block_d, DOT_PREC=prec,
            DQ_ATOMIC={"split": 0, "atomic": 1, "tma": 2}[mode], ONE_LOOP=configs.ONE_LOOP,
            TMA=q_desc is not None, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )

    def launch_dq(cfg: KernelConfig) -> None:
        k_desc, v_desc = descriptors((k, v), cfg.block_n)
        args = (q, k, v, out, dout, lse, lse2, delta, dq, *fa["tensors"], dbias if dbias is not None else delta,
                cu_q, cu_k, k_desc, v_desc, *lay.strides(q), *lay.strides(k), *lay.strides(v), *lay.strides(out),
                *lay.strides(dout), *lay.strides(dq), *fa["strides"], *common)
        kwargs = dict(HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n,
                      LOCAL=local, **flags, BIAS_GRAD=bias_grad, EVEN_M=even and seqlen_q % cfg.block_m == 0,
                      EVEN_N=even and seqlen_k % cfg.block_n == 0, EVEN_D=head_dim == block_d, DOT_PREC=prec,
                      ONE_LOOP=configs.ONE_LOOP, TMA=k_desc is not None, num_warps=cfg.num_warps,
                      num_stages=cfg.num_stages)
        plans["first"] = launch(_attn_bwd_dq_kernel, (cdiv(seqlen_q, cfg.block_m), nheads, batch), args, kwargs,
                                roles)

    def launch_fused(cfgs: Tuple[KernelConfig, KernelConfig]) -> None:
        c1, c2 = cfgs
        n_kv, n_q = cdiv(seqlen_k, c1.block_n), cdiv(seqlen_q, c2.block_m)
        q_desc, do_desc = descriptors((q, dout), c1.block_m)
        k_desc, v_desc = descriptors((k, v), c2.block_n)
        tma = q_desc is not None and k_desc is not None
        if not tma:
            q_desc = do_desc = k_desc = v_desc = None
        _attn_bwd_fused_kernel[(n_kv + group * n_q, lay.nheads_k, batch)](
            q, k, v, dout, lse2, delta, dq, dk, dv, *fa["tensors"], dbias if dbias is not None else delta,
            cu_q, cu_k, q_desc, do_desc, k_desc, v_desc, *lay.strides(q), *lay.strides(k), *lay.strides(v),
            *lay.strides(dout), *lay.strides(dq), *lay.strides(dk), *lay.strides(dv), *fa["strides"], *common,
            n_kv, n_q,
            HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M1=c1.block_m, BLOCK_N1=c1.block_n,
            BLOCK_M2=c2.block_m, BLOCK_N2=c2.block_n, LOCAL=local, **flags, BIAS_GRAD=bias_grad,
            EVEN_M1=even and seqlen_q % c1.block_m == 0, EVEN_N1=even and seqlen_k % c1.block_n == 0,
            EVEN_M2=even and seqlen_q % c2.block_m == 0, EVEN_N2=even and seqlen_k % c2.block_n == 0,
            EVEN_D=head_dim == block_d, DOT_PREC=prec, ONE_LOOP=configs.ONE_LOOP, TMA=tma,
            num_warps=c1.num_warps, num_stages=c1.num_stages,
        )

    strategy = TILING_STRATEGIES.get(f.tiling) if q.device.type == "cuda" else None
    dkdv_list = dkdv_configs(block_d, q.dtype, local, q.device)
    dq_list = dq_configs(block_d, q.dtype, local, q.device)
    if strategy is not None and strategy.dkdv is not None:
        dkdv_list, dq_list = [strategy.dkdv] + dkdv_list, [strategy.dq] + dq_list
    if mode == "split":
        # The dQ kernel also writes delta and lse2, which the dK/dV kernel reads: it goes first.
        launch_with_fallback("bwd_dq", launch_dq, [dq_config] if dq_config else dq_list)
    else:
        pre_block = 64 if block_d <= 128 else 32
        plans["first"] = launch(
            _attn_bwd_preprocess_kernel, (cdiv(seqlen_q, pre_block), nheads, batch),
            (out, dout, lse, delta, lse2, cu_q, *lay.strides(out), *lay.strides(dout), *lay.lse_strides, seqlen_q),
            dict(HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M=pre_block, VARLEN=lay.varlen), roles)
    if mode == "fused":
        # One launch: the dQ programs run with the dK/dV programs' warps and pipeline depth.
        pairs = [(c1, KernelConfig(c2.block_m, c2.block_n, c1.num_warps, c1.num_stages))
                 for c1, c2 in zip([dkdv_config] if dkdv_config else dkdv_list, [dq_config] if dq_config else dq_list)]
        launch_with_fallback("bwd_fused", launch_fused, pairs)
        return dq, dk, dv, dbias
    if mode in ("atomic", "tma"):
        dkdv_list = dkdv_atomic_configs(block_d, q.dtype, local, q.device)
    convert_kernel = mode != "split" and _convert_kernel_applies(dq_acc, dq, lay.varlen)
    # With the conversion kernel, the Gluon kernel leaves its dQ shares unscaled and the conversion scales once.
    scale_later = gluon_dkdv and mode == "tma" and convert_kernel
    if gluon_dkdv:
        plans["dkdv"] = backward_sm90.attention_backward_dkdv_sm90(q, k, v, dout, lse2, delta, dk, dv, f,
                                                                   dq_acc=acc4, roles=roles,
                                                                   dq_scaled=not scale_later)
    else:
        launch_with_fallback(f"bwd_dkdv_{mode}", launch_dkdv, [dkdv_config] if dkdv_config else dkdv_list)
    convert = None
    if mode != "split":
        convert = _convert_dq(dq_acc, dq, lay.varlen, convert_kernel, roles, f.softmax_scale if scale_later else 1.0)
    # A relaunch replays the conversion's plan, or copies the buffer as it is: without the plan, the unscaled
    # shares would go unscaled into dQ, so nothing is kept then.
    if gluon_dkdv and plans["first"] is not None and plans["dkdv"] is not None and (
            convert is not None or not scale_later):
        _PLANS.put(key, (mode == "tma", plans["first"], plans["dkdv"], convert))
    return dq, dk, dv, dbias


def _acc_views(dq_acc: torch.Tensor, dq: torch.Tensor, varlen: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """The float32 accumulator (``(batch * nheads, seqlen_q, head_dim)``, or ``(nheads, total_q, head_dim)`` for
    packed sequences) and dQ as matching ``(batch | 1, nheads, rows, head_dim)`` views."""
    out = dq.unsqueeze(0).transpose(1, 2) if varlen else dq.transpose(1, 2)
    return dq_acc.view(out.shape), out


def _convert_kernel_applies(dq_acc: Optional[torch.Tensor], dq: torch.Tensor, varlen: bool) -> bool:
    return (dq_acc is not None and configs.dq_convert_kernel(dq.device.type)
            and dq_convert.convertible(*_acc_views(dq_acc, dq, varlen)))


def _convert_dq(dq_acc: torch.Tensor, dq: torch.Tensor, varlen: bool, use_kernel: bool,
                roles: Optional[dict] = None, scale: float = 1.0) -> Optional[Plan]:
    """dQ (times ``scale``) from the float32 accumulator: through ops/dq_convert.py's kernel with ``use_kernel``
    (``_convert_kernel_applies``; returning its plan when ``roles`` are given), else ``copy_``."""
    acc, out = _acc_views(dq_acc, dq, varlen)
    if use_kernel:
        grid, args, kwargs = dq_convert.dq_convert_args(acc, out, scale)
        # The tensors themselves go in as the pointers (the views start where they do), so a plan can swap them.
        args = (roles["dq_acc"] if roles is not None else dq_acc, dq, *args[2:])
        return launch(dq_convert._dq_convert_kernel, grid, args, kwargs, roles)
    out.copy_(acc if scale == 1.0 else acc * scale)
    return None


_PLANS = PlanCache()


def _plan_key(dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
              lse: torch.Tensor, f: Features) -> Optional[tuple]:
    """What fixes the backward's launches besides the tensors' addresses, for gradients allocated here; None where
    the Gluon kernel does not cover the attention (only its path keeps plans)."""
    if f.tiling != "auto" or not backward_sm90.covers(q.dtype, q.shape[-1], f) or not forward_sm90.is_sm90(
            q.device.index or 0):
        return None
    return (q.shape, q.stride(), k.shape, k.stride(), v.stride(), dout.stride(), out.stride(), lse.shape,
            lse.stride(), q.dtype, dout.dtype, out.dtype, lse.dtype, q.device, torch.cuda.current_device(),
            tuple(t.data_ptr() % 16 for t in (q, k, v, dout, out, lse)), f.causal, f.softmax_scale, f.diag,
            f.deterministic, torch.are_deterministic_algorithms_enabled(), configs.BWD_GLUON, configs.BWD_GLUON_DQ,
            configs.GLUON_BWD_MIN_SEQLEN, configs.GLUON_DQ_MIN_SEQLEN,
            configs.GLUON_DQ_MIN_CAUSAL_SEQLEN_128, configs.GLUON_DQ_MIN_SEQLEN_128, configs.ONE_LOOP, configs.BWD_TMA,
            configs.GLUON_BWD_PTX_MASKS,
            configs.GLUON_BWD_STAGED_ROWS, configs.GLUON_BWD_MASK_EVERY_TILE, configs.GLUON_BWD_MASK_BRANCH,
            configs.DQ_CONVERT_KERNEL,
            configs.GLUON_BWD_DQ_NARROW_SWIZZLE, configs.GLUON_BWD_PRESCALED_ROWS)


def _roles(q, k, v, dout, out, lse, delta, lse2, dq, dk, dv, dq_acc) -> dict:
    """The backward's tensors by the names its plans record and relaunch them under (one list for both)."""
    roles = dict(q=q, k=k, v=v, dout=dout, out=out, lse=lse, delta=delta, lse2=lse2, dq=dq, dk=dk, dv=dv)
    if dq_acc is not None:
        roles["dq_acc"] = dq_acc
    return roles


def _planned_backward(key: Optional[tuple], dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      out: torch.Tensor, lse: torch.Tensor) -> Optional[Tuple[torch.Tensor, ...]]:
    """The Gluon path of ``attention_backward`` through the plans recorded under ``key`` (None when there are
    none): the same allocations and launches without rebuilding their arguments."""
    entry = _PLANS.get(key) if key is not None else None
    if entry is None:
        return None
    fused, first, dkdv, convert = entry
    batch, seqlen_q, nheads, head_dim = q.shape
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    delta = torch.empty((batch, nheads, seqlen_q), device=q.device, dtype=torch.float32)
    lse2 = torch.empty_like(delta)
    acc = torch.zeros(batch, nheads, seqlen_q, head_dim, device=q.device, dtype=torch.float32) if fused else None
    roles = _roles(q, k, v, dout, out, lse, delta, lse2, dq, dk, dv, acc)
    first.launch(roles)
    dkdv.launch(roles)
    if convert is not None:
        convert.launch(roles)
    elif fused:
        _convert_dq(acc, dq, False, False)
    return dq, dk, dv, None


def default_dq_mode(q: torch.Tensor, local: bool = False) -> str:
    """The dQ strategy used when the caller does not choose.

    Measured on the H100 (benchmarks/NOTES.md, 2026-11-25): the atomic/TMA adds lost to separate dQ programs
    everywhere (0.85-0.9x at head_dim 128). Running the dQ and dK/dV programs in one launch (``"fused"``) won
    without a band at head_dim 128 (+3-7%: neither kernel's last wave runs alone) but lost with one (-4..-7%,
    as the fused launch needs the separate delta pass that the split dQ kernel folds in) and at head_dim 64
    (within noise). So: fused for unbanded head_dim 65-128 in 16-bit types on a GPU, else split.
    """
    if (q.device.type == "cuda" and not interpreting() and not local and 64 < q.shape[-1] <= 128
            and q.dtype in (torch.float16, torch.bfloat16)):
        return "fused"
    return "split"
