"""FlashAttention-2 forward kernel and its launcher.

One program computes one tile of ``BLOCK_M`` query rows for one (batch, head): it streams the visible key/value
tiles through an online softmax (running max ``m``, running sum ``l`` and an unnormalised accumulator) and
writes the output and the log-sum-exp that the backward recomputes the probabilities from. Scores live in the
log2 domain (``exp2`` with the softmax scale folded into one multiply) because ``exp2`` is the native MUFU op.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import triton
import triton.language as tl

from ..features import Features
from . import configs, forward_sm90
from .configs import (TILING_STRATEGIES, KernelConfig, cdiv, dot_precision, forward_configs, launch_with_fallback,
                      next_power_of_2)
from .descriptors import tile_descriptors
from .launch import PlanCache, launch
from .layout import Layout, layout
from .masks import key_range, sequence_bounds, visible, window_bounds
from .scores import alibi_args, dropout_keep, dropout_row_stride, dropout_threshold, score_log2, user_mask

LOG2E = 1.4426950408889634


@triton.jit
def _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, start_n, end_n,
               offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
               softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn, mask_base, stride_mm, stride_mn,
               drop_thresh, seed, philox_base, philox_stride, full_lo, full_hi, k_desc, v_desc, off_b, off_hk,
               HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, MASKED: tl.constexpr, LOCAL: tl.constexpr,
               WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr, BIAS: tl.constexpr,
               MASK: tl.constexpr, DROPOUT: tl.constexpr, EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr,
               TMA: tl.constexpr):
    """Fold the key tiles ``[start_n, end_n)`` into the running softmax state of one query tile.

    ``MASKED``: 0 = no tile needs masking, 1 = every tile does (band, user mask, ragged end), 2 = the tiles outside
    ``[full_lo, full_hi)`` need the band mask, and no tile hangs over the end of the keys (one loop over the band,
    so the software pipeline is filled once per program instead of once per run of tiles).

    ``TMA``: whole tiles (``MASKED != 1``) come through the (batch, seqlen, heads, headdim) tensor descriptors
    ``k_desc``/``v_desc`` (Hopper's bulk copy engine) instead of pointer loads.
    """
    USE_TMA: tl.constexpr = TMA and MASKED != 1
    BLOCK_D: tl.constexpr = offs_d.shape[0]
    offs_n0 = tl.arange(0, BLOCK_N)
    # Pointers advance by one tile per step, so only this first offset needs 64-bit arithmetic.
    kt_ptrs = k_base + start_n.to(tl.int64) * stride_kn + (offs_n0[None, :] * stride_kn + offs_d[:, None])
    v_ptrs = v_base + start_n.to(tl.int64) * stride_vn + (offs_n0[:, None] * stride_vn + offs_d[None, :])
    d_ok = offs_d < HEAD_DIM
    for start in tl.range(start_n, end_n, BLOCK_N):
        offs_n = start + offs_n0
        if USE_TMA:
            kt = tl.trans(tl.reshape(k_desc.load([off_b, start, off_hk, 0]), [BLOCK_N, BLOCK_D]))
        elif MASKED == 1:
            n_ok = offs_n < seqlen_k
            kt = tl.load(kt_ptrs, mask=n_ok[None, :] & d_ok[:, None], other=0.0)
        elif EVEN_D:
            kt = tl.load(kt_ptrs)
        else:
            kt = tl.load(kt_ptrs, mask=d_ok[:, None], other=0.0)
        qk = tl.dot(q, kt, input_precision=DOT_PREC)
        if SOFTCAP or ALIBI or BIAS:
            s, _ = score_log2(qk, offs_m[:, None], offs_n[None, :], seqlen_q, seqlen_k, diag, qk_scale,
                              softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                              SOFTCAP, ALIBI, BIAS)
            mult = 1.0
        else:
            # Plain scores: the scale folds into the exp2 argument (one FMA per element).
            s = qk
            mult = qk_scale
        if MASKED == 2:
            if (start < full_lo) | (start >= full_hi):
                s = tl.where(visible(offs_m[:, None], offs_n[None, :], seqlen_k, diag, win_left, win_right, False,
                                     LOCAL, WIN_BLOCK), s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1) * mult)
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        elif MASKED:
            ok = visible(offs_m[:, None], offs_n[None, :], seqlen_k, diag, win_left, win_right, True, LOCAL,
                         WIN_BLOCK)
            if MASK:
                ok = ok & user_mask(offs_m[:, None], offs_n[None, :], seqlen_q, seqlen_k, mask_base, stride_mm,
                                    stride_mn)
            s = tl.where(ok, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1) * mult)
            # A row with nothing visible yet keeps m = -inf; subtracting 0 instead keeps exp2 at 0, not NaN.
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        else:
            m_new = tl.maximum(m_i, tl.max(s, 1) * mult)
            m_use = m_new
        p = tl.math.exp2(s * mult - m_use[:, None])
        alpha = tl.math.exp2(m_i - m_use)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        if USE_TMA:
            v = tl.reshape(v_desc.load([off_b, start, off_hk, 0]), [BLOCK_N, BLOCK_D])
        elif MASKED == 1:
            v = tl.load(v_ptrs, mask=n_ok[:, None] & d_ok[None, :], other=0.0)
        elif EVEN_D:
            v = tl.load(v_ptrs)
        else:
            v = tl.load(v_ptrs, mask=d_ok[None, :], other=0.0)
        if DROPOUT:
            # The normaliser l keeps the undropped probabilities; only what reaches V is dropped.
            p = tl.where(dropout_keep(offs_m[:, None], start, philox_stride, seed, philox_base, drop_thresh, BLOCK_N),
                         p, 0.0)
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision=DOT_PREC)
        m_i = m_new
        kt_ptrs += BLOCK_N * stride_kn
        v_ptrs += BLOCK_N * stride_vn
    return acc, l_i, m_i


@triton.jit
def _attn_fwd_kernel(
    Q, K, V, Out, Lse, Bias, Mask, Slopes, CuSeqQ, CuSeqK,
    stride_qb, stride_qm, stride_qh,
    stride_kb, stride_kn, stride_kh,
    stride_vb, stride_vn, stride_vh,
    stride_ob, stride_om, stride_oh,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_mb, stride_mh, stride_mm, stride_mn,
    stride_sb, stride_sh, stride_lb, stride_lh,
    nheads, seqlen_q, seqlen_k, group,
    qk_scale, softcap_scale, softcap_out, diag, win_left, win_right,
    drop_thresh, dropout_scale, seed, philox_offset, philox_stride, KDesc, VDesc,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    LOCAL: tl.constexpr, WIN_BLOCK: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr,
    BIAS: tl.constexpr, MASK: tl.constexpr, DROPOUT: tl.constexpr, VARLEN: tl.constexpr,
    EVEN_M: tl.constexpr, EVEN_N: tl.constexpr, EVEN_D: tl.constexpr, DOT_PREC: tl.constexpr,
    ONE_LOOP: tl.constexpr, TMA: tl.constexpr,
):
    num_m = tl.num_programs(0)
    # With a band (causal/window) later query tiles carry more work: start them first so the tail is short.
    pid_m = (num_m - 1 - tl.program_id(0)) if LOCAL else tl.program_id(0)
    off_h = tl.program_id(1)
    off_b = tl.program_id(2)
    off_hk = off_h // group
    m_start = pid_m * BLOCK_M
    q_start, k_start, seqlen_q, seqlen_k, diag = sequence_bounds(CuSeqQ, CuSeqK, off_b, seqlen_q, seqlen_k, diag,
                                                                 VARLEN)
    if VARLEN:
        if m_start >= seqlen_q:  # the grid covers the longest sequence; this one is shorter
            return

    q_base = (Q + off_b.to(tl.int64) * stride_qb + off_h.to(tl.int64) * stride_qh
              + (q_start + m_start).to(tl.int64) * stride_qm)
    k_base = K + off_b.to(tl.int64) * stride_kb + off_hk.to(tl.int64) * stride_kh + k_start.to(tl.int64) * stride_kn
    v_base = V + off_b.to(tl.int64) * stride_vb + off_hk.to(tl.int64) * stride_vh + k_start.to(tl.int64) * stride_vn
    o_base = (Out + off_b.to(tl.int64) * stride_ob + off_h.to(tl.int64) * stride_oh
              + (q_start + m_start).to(tl.int64) * stride_om)
    bias_base = Bias + off_b.to(tl.int64) * stride_bb + off_h.to(tl.int64) * stride_bh
    mask_base = Mask + off_b.to(tl.int64) * stride_mb + off_h.to(tl.int64) * stride_mh
    slope2 = 0.0
    if ALIBI:
        slope2 = tl.load(Slopes + off_b * stride_sb + off_h * stride_sh).to(tl.float32) * 1.4426950408889634
    # lse rows: (batch, nheads, seqlen_q), or (nheads, total_q) for varlen; dropout counters follow the same rows.
    row_base = off_b.to(tl.int64) * stride_lb + off_h.to(tl.int64) * stride_lh + q_start
    philox_base = philox_offset + row_base * philox_stride

    offs_r = tl.arange(0, BLOCK_M)
    offs_m = m_start + offs_r
    offs_d = tl.arange(0, BLOCK_D)
    q_ptrs = q_base + offs_r[:, None] * stride_qm + offs_d[None, :]
    io_mask = (offs_m[:, None] < seqlen_q) & (offs_d[None, :] < HEAD_DIM)
    if EVEN_M and EVEN_D:
        q = tl.load(q_ptrs)
    else:
        q = tl.load(q_ptrs, mask=io_mask, other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    # A user mask or bias can hide any key, so every tile then takes the -inf-safe path.
    SAFE: tl.constexpr = MASK or BIAS
    lo, full_lo, full_hi, hi = key_range(m_start, seqlen_k, diag, win_left, win_right, BLOCK_M, BLOCK_N, LOCAL,
                                         WIN_BLOCK)
    if LOCAL and ONE_LOOP and EVEN_N and not SAFE:
        acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, lo, hi,
                                   offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                                   softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                   mask_base, stride_mm, stride_mn, drop_thresh, seed, philox_base, philox_stride,
                                   full_lo, full_hi, KDesc, VDesc, off_b, off_hk, HEAD_DIM, BLOCK_N, 2, LOCAL,
                                   WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK, DROPOUT, EVEN_D, DOT_PREC, TMA)
    else:
        if LOCAL:
            acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, lo, full_lo,
                                       offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                                       softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                       mask_base, stride_mm, stride_mn, drop_thresh, seed, philox_base, philox_stride,
                                       full_lo, full_hi, KDesc, VDesc, off_b, off_hk, HEAD_DIM, BLOCK_N, 1, LOCAL,
                                       WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK, DROPOUT, EVEN_D, DOT_PREC, TMA)
        acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, full_lo, full_hi,
                                   offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                                   softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                   mask_base, stride_mm, stride_mn, drop_thresh, seed, philox_base, philox_stride,
                                   full_lo, full_hi, KDesc, VDesc, off_b, off_hk, HEAD_DIM, BLOCK_N, SAFE, LOCAL,
                                   WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK, DROPOUT, EVEN_D, DOT_PREC, TMA)
        if LOCAL or not EVEN_N:  # else empty: not compiled, so it cannot cost the main loop registers
            acc, l_i, m_i = _fwd_tiles(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, full_hi, hi,
                                       offs_m, offs_d, seqlen_q, seqlen_k, diag, win_left, win_right, qk_scale,
                                       softcap_scale, softcap_out, slope2, bias_base, stride_bm, stride_bn,
                                       mask_base, stride_mm, stride_mn, drop_thresh, seed, philox_base, philox_stride,
                                       full_lo, full_hi, KDesc, VDesc, off_b, off_hk, HEAD_DIM, BLOCK_N, 1, LOCAL,
                                       WIN_BLOCK, SOFTCAP, ALIBI, BIAS, MASK, DROPOUT, EVEN_D, DOT_PREC, TMA)

    # Rows that saw no key: output 0 and lse -inf, as FlashAttention defines them.
    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    if DROPOUT:
        out = out * dropout_scale
    lse = tl.where(empty, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)

    o_ptrs = o_base + offs_r[:, None] * stride_om + offs_d[None, :]
    if EVEN_M and EVEN_D:
        tl.store(o_ptrs, out.to(Out.dtype.element_ty))
    else:
        tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=io_mask)
    lse_ptrs = Lse + row_base + offs_m
    if EVEN_M:
        tl.store(lse_ptrs, lse)
    else:
        tl.store(lse_ptrs, lse, mask=offs_m < seqlen_q)


def feature_args(q: torch.Tensor, k: torch.Tensor, f: Features, lay: Optional[Layout] = None) -> dict:
    """Kernel arguments shared by every kernel: the band, score modifications, masks, dropout and their strides.

    Bias and mask are broadcast views (stride 0 on broadcast dimensions), never copies. ``lay``: the layout, when
    the caller has it already.
    """
    lay = lay or layout(q, k, f)
    batch, seqlen_q, seqlen_k, nheads = lay.batch, lay.seqlen_q, lay.seqlen_k, lay.nheads
    diag = f.diagonal(seqlen_q, seqlen_k)
    local, left, right, win_block = window_bounds(seqlen_q, seqlen_k, f.causal, f.window_size, f.window_block,
                                                  diag)

    def strides4(t: Optional[torch.Tensor]):
        if t is None:
            return q, (0, 0, 0, 0)
        t = t.expand(batch, nheads, seqlen_q, seqlen_k)
        return t, tuple(t.stride())

    bias, bias_strides = strides4(f.attn_bias)
    mask, mask_strides = strides4(f.attn_mask.view(torch.uint8) if f.attn_mask is not None else None)
    slopes, slope_strides = alibi_args(f, q)
    softcap = float(f.softcap)
    return dict(
        lay=lay, local=local, diag=diag, band=(left, right),
        tensors=(bias, mask, slopes), strides=bias_strides + mask_strides + slope_strides,
        scalars=(f.softmax_scale / softcap if softcap > 0 else 0.0, softcap * LOG2E),
        # Dropout counters: one per (lse row, 8 keys), so packed sequences never share one.
        dropout=(dropout_threshold(f.dropout_p), 1.0 / (1.0 - f.dropout_p), int(f.seed), int(f.offset),
                 dropout_row_stride(seqlen_k)),
        flags=dict(SOFTCAP=softcap > 0, ALIBI=f.alibi_slopes is not None, BIAS=f.attn_bias is not None,
                   MASK=f.attn_mask is not None, DROPOUT=f.dropout_p > 0, WIN_BLOCK=win_block, VARLEN=lay.varlen),
    )


def kv_descriptors(k: torch.Tensor, v: torch.Tensor, varlen: bool, local: bool, block_n: int,
                   block_d: int) -> Tuple[Optional[Any], Optional[Any]]:
    """Tensor descriptors of K and V with a ``[1, block_n, 1, block_d]`` box (ops/descriptors.py), or
    ``(None, None)`` where they are not used (``configs.forward_tma``) or the copy engine cannot take them (packed
    sequences, strides that are not 16-byte multiples, a broadcast dimension). The kernel uses them for whole tiles
    only."""
    if not configs.forward_tma(k.shape[-1], block_d, local) or varlen:
        return None, None
    return tile_descriptors((k, v), block_n, block_d)


_TL_PLANS = PlanCache()


def tl_plan_key(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f: Features) -> Optional[tuple]:
    """What fixes a tl forward launch besides the tensors' addresses (ops/launch.py), for outputs allocated as
    ``attention_forward`` does (``configs.TL_FORWARD_PLANS``). None for calls with tensors of their own (ALiBi
    slopes, bias, mask, packed sequences' offsets) or a fresh dropout seed, which take the JIT launch. The plans
    live in ``_TL_PLANS`` and relaunch through ``forward_sm90.planned_forward``."""
    if (not configs.TL_FORWARD_PLANS or f.alibi_slopes is not None or f.attn_bias is not None
            or f.attn_mask is not None or f.dropout_p > 0 or f.varlen):
        return None
    return ("tl", q.shape, q.stride(), k.shape, k.stride(), v.stride(), q.dtype, q.device,
            torch.cuda.current_device(), q.data_ptr() % 16, k.data_ptr() % 16, v.data_ptr() % 16, f.causal,
            f.softmax_scale, f.softcap, tuple(f.window_size), f.window_block, f.diag, configs.ONE_LOOP,
            configs.FWD_TMA, *forward_sm90.policy_switches())


def attention_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    f: Features,
    out: Optional[torch.Tensor] = None,
    lse: Optional[torch.Tensor] = None,
    config: Optional[KernelConfig] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel on validated q/k/v; returns ``(out, lse)``.

    q/k/v are ``(batch, seqlen, heads, headdim)``, or ``(total, heads, headdim)`` packed sequences when
    ``f.cu_seqlens_q`` is set (see ops/layout.py). ``out``/``lse`` may be passed preallocated (any strides for
    ``out``; ``lse`` contiguous float32 of ``Layout.lse_shape``), which the tests use to poison outputs.
    """
    key = tl_key = None
    if out is None and lse is None and config is None and f.tiling == "auto" and q.device.type == "cuda":
        # A call like an earlier one relaunches its recorded plan (ops/launch.py): at short sequences the host
        # time of the launch path below is a large part of the call.
        key = forward_sm90.plan_key(q, k, v, f)
        planned = forward_sm90.planned_forward(key, q, k, v)
        if planned is not None:
            return planned
        tl_key = tl_plan_key(q, k, v, f)
        planned = forward_sm90.planned_forward(tl_key, q, k, v, _TL_PLANS)
        if planned is not None:
            return planned
    lay = layout(q, k, f)
    if out is None:
        out = torch.empty_like(q)
    if lse is None:
        lse = torch.empty(lay.lse_shape, device=q.device, dtype=torch.float32)
    if lay.empty:
        return out, lse
    if lay.seqlen_k == 0:
        out.zero_()
        lse.fill_(float("-inf"))
        return out, lse
    if config is None and f.tiling == "auto" and forward_sm90.supported(q, k, v, out, f):
        # The Gluon kernel takes no feature arguments: none of them are built for it.
        forward_sm90.attention_forward_sm90(q, k, v, f, out, lse, plan_key=key)
        return out, lse
    fa = feature_args(q, k, f, lay)
    local = fa["local"]
    head_dim = lay.head_dim
    block_d = max(16, next_power_of_2(head_dim))

    # With a tl plan key, the launch is recorded in _TL_PLANS (its tensors by role).
    roles = None if tl_key is None else forward_sm90.plan_roles(q, k, v, out, lse)

    def run(cfg: KernelConfig) -> None:
        grid = (cdiv(lay.seqlen_q, cfg.block_m), lay.nheads, lay.batch)
        k_desc, v_desc = kv_descriptors(k, v, lay.varlen, local, cfg.block_n, block_d)
        args = (q, k, v, out, lse, *fa["tensors"], *lay.cu_args(q),
                *lay.strides(q), *lay.strides(k), *lay.strides(v), *lay.strides(out),
                *fa["strides"], *lay.lse_strides,
                lay.nheads, lay.seqlen_q, lay.seqlen_k, lay.nheads // lay.nheads_k,
                f.softmax_scale * LOG2E, *fa["scalars"], fa["diag"], *fa["band"],
                *fa["dropout"], k_desc, v_desc)
        kwargs = dict(HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n,
                      LOCAL=local, **fa["flags"], EVEN_M=not lay.varlen and lay.seqlen_q % cfg.block_m == 0,
                      EVEN_N=not lay.varlen and lay.seqlen_k % cfg.block_n == 0, EVEN_D=head_dim == block_d,
                      DOT_PREC=dot_precision(q.dtype), ONE_LOOP=configs.ONE_LOOP, TMA=k_desc is not None,
                      num_warps=cfg.num_warps, num_stages=cfg.num_stages)
        _TL_PLANS.put(tl_key, launch(_attn_fwd_kernel, grid, args, kwargs, roles))

    cfgs = [config] if config is not None else forward_configs(block_d, q.dtype, local, q.device, lay.seqlen_q)
    strategy = TILING_STRATEGIES.get(f.tiling)
    if config is None and strategy is not None and strategy.forward is not None and q.device.type == "cuda":
        cfgs = [strategy.forward] + cfgs
    launch_with_fallback("forward", run, cfgs)
    return out, lse
