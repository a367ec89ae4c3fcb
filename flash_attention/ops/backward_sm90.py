"""Hopper (sm_90) backward in Gluon, the counterpart of ops/forward_sm90.py: the default backward on Hopper for what
it covers (plain/causal attention, GQA, token windows, ALiBi and dropout, fp16/bf16, head_dim 64/128) from 1K keys,
2K at head_dim 64 without a mask (``configs.backward_gluon``).

One program owns 128 key rows of one KV head and sums dK/dV over the query heads of its GQA group:

- one producer warp group loads the program's K and V once, then streams (Q, dO) tiles of 64 query rows into a
  ring of shared-memory stages through TMA; with ``STAGED_ROWS`` (``configs.backward_staged_rows``) it also loads
  each tile's lse2 and delta into the stage, so the consumers read them from shared memory instead of waiting on
  global loads at every tile's start;
- two consumer warp groups own 64 key rows each. Per query tile: ``S^T = K Q^T - lse2 / scale`` and
  ``dP^T = V dO^T - delta`` (the products start from those offsets, so the vectors hold no registers while they
  run), ``P^T = exp2(S^T * scale)``, ``dS^T = P^T dP^T``, then ``dV += P^T dO`` (P^T from registers) and
  ``dK += dS^T Q``;
- with dQ fused (``FUSE_DQ``, the default where it measured faster: ``configs.backward_gluon_dq``), dS^T goes to
  shared memory, where it is dK's operand and, read transposed beside the other consumer's half, dQ's:
  ``dQ = dS K`` over the program's 128 keys (at head_dim 128 each consumer takes half of dQ's columns; at 64 they
  take turns), added into a float32 ``(batch, nheads, seqlen_q, head_dim)`` buffer by TMA reductions (the copy
  engine adds in L2; the order of the additions varies, so the last bits of dQ do too: ``deterministic=True``
  takes the split mode). Five products per tile pair. Without it, dQ, delta and lse2 come from the tl dQ kernel,
  which runs first (``attention_backward``'s split mode: seven products, exclusive writes). With ``DQ_UNSCALED``
  (``configs.dq_convert_kernel``) the shares go in without the softmax scale, which ops/dq_convert.py's row-wise
  kernel applies when it turns the buffer into dQ; with ``PRESCALED`` (``configs.backward_prescaled_rows``) the
  producer stages the products' starting values themselves (``-lse2 / scale``, ``-delta``);
- under a causal mask or a window, a program walks its masked edge tiles in a loop of their own, then the unmasked
  ones; with ``MASK_EVERY_TILE`` (``configs.backward_mask_every_tile``: head_dim 128 with dQ fused) it walks all of
  them in one loop with the mask folded into S^T's starting value, which keeps that kernel within its registers
  (no spills with dQ fused and the vectors staged, where the two-loop form spills 55 values);
- at the end each consumer's K and V halves take its dK and dV tiles for the TMA store (rows past seqlen_k are
  clipped by the copy engine).

Rows past seqlen_q read lse2 = +inf (so P = 0) and dO = 0; rows that saw no key have lse2 = +inf as well.

Dropout (``DROPOUT``) regenerates the forward's pattern (ops/scores.py). Its draws are laid out for the forward's
queries x keys accumulator, so each consumer draws its next tile's Philox words query-major while its current
tile's last products run, leaves them in shared memory, and reads the bytes back transposed (``draws_t_layout``)
when the tile starts; the mask goes into dP^T's starting values (``DROPPED`` where dropped), so nothing of it is
held in registers while the products run. ``DROPOUT`` 9 takes each Philox round's products from one wide
multiply (``configs.GLUON_BWD_PHILOX_WIDE``), as the forward's bit 8 does; the same words.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
from triton._C.libtriton import ir
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language._core import builtin
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor
from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma, warpgroup_mma,
                                                              warpgroup_mma_wait)

from ..features import Features
from . import configs
from .configs import cdiv
from .descriptors import tma_compatible
from .forward_sm90 import (LOG2E, alibi_slope2, banded, bhsd_descriptors, covers, dropout_words, is_sm90, mma_layout,
                           ptx_select, ring_stages, select_kept, smem_layout, window_sides)
from .launch import Plan, launch
from .scores import alibi_args, dropout_row_stride, dropout_threshold

# Key rows per consumer warp group (one wgmma M=64 each), consumers, key rows per program, query rows per stage.
ROWS = gl.constexpr(64)
CONSUMERS = gl.constexpr(2)
BLOCK_N = gl.constexpr(128)
BLOCK_M = gl.constexpr(64)
# dP^T's starting value for dropped entries with dropout, and the bound that tells them apart afterwards.
DROPPED = gl.constexpr(1e30)
DROPPED_BOUND = gl.constexpr(1e29)


@builtin
def _tma_reduce_add(tensor_desc, coord, src, _semantic=None):
    """``global[box at coord] += src`` through the copy engine (``cp.reduce.async.bulk.tensor``): the float32
    additions happen in L2, one instruction per tile. Gluon 3.6 has the builder call but no wrapper for it;
    completion is awaited like a TMA store (``tma.store_wait``)."""
    coord = _semantic._convert_to_ir_values(coord, require_i64=False)
    _semantic.builder.create_async_tma_reduce(ir.DESCRIPTOR_REDUCE_KIND.ADD, tensor_desc.handle, coord, src.handle)


@gluon.jit
def _bwd_producer(q_desc, k_desc, v_desc, do_desc, q_smem, k_smem, v_smem, do_smem, rows_smem, kv_bar, ready,
                  empty, Lse2, Delta, stride_lb, stride_lh, seqlen_q, off_b, off_hk, n0, lo, hi, group, qk_scale,
                  STAGES: gl.constexpr, STAGED_ROWS: gl.constexpr, PRESCALED: gl.constexpr = False):
    mbarrier.expect(kv_bar, 2 * CONSUMERS * k_desc.block_type.nbytes)
    for c in gl.static_range(CONSUMERS):
        tma.async_copy_global_to_shared(k_desc, [off_b, off_hk, n0 + c * ROWS, 0], kv_bar, k_smem.index(c))
        tma.async_copy_global_to_shared(v_desc, [off_b, off_hk, n0 + c * ROWS, 0], kv_bar, v_smem.index(c))
    rows_layout: gl.constexpr = gl.BlockedLayout([1], [32], [4], [0])
    offs = gl.arange(0, BLOCK_M, layout=rows_layout)
    i = 0
    for g in range(0, group):
        off_h = off_hk * group + g
        row_base = off_b.to(gl.int64) * stride_lb + off_h.to(gl.int64) * stride_lh
        for start in range(lo, hi, BLOCK_M):
            s = i % STAGES
            if STAGED_ROWS:
                # The tile's lse2 and delta, loaded here (their latency off the consumers' path) and handed over
                # in the stage beside Q and dO; ``ready`` counts this partition's arrival besides the copies'.
                m_ok = start + offs < seqlen_q
                lse2 = gl.load(Lse2 + row_base + start + offs, mask=m_ok, other=float("inf"))
                delta = gl.load(Delta + row_base + start + offs, mask=m_ok, other=0.0)
            mbarrier.wait(empty.index(s), ((i // STAGES) & 1) ^ 1)
            mbarrier.expect(ready.index(s), q_desc.block_type.nbytes + do_desc.block_type.nbytes)
            tma.async_copy_global_to_shared(q_desc, [off_b, off_h, start, 0], ready.index(s), q_smem.index(s))
            tma.async_copy_global_to_shared(do_desc, [off_b, off_h, start, 0], ready.index(s), do_smem.index(s))
            if STAGED_ROWS:
                if PRESCALED:
                    # The accumulators' starting values themselves, once per stage here rather than by every
                    # consumer thread for each of its 16 queries.
                    lse2 = 0.0 - lse2 / qk_scale
                    delta = 0.0 - delta
                rows_smem[0].index(s).store(lse2)
                rows_smem[1].index(s).store(delta)
                gl.thread_barrier()
                mbarrier.arrive(ready.index(s), count=1)
            i += 1


@gluon.jit
def _dq_products(ds_all, k_smem, CID: gl.constexpr, HEAD_DIM: gl.constexpr, DQ_COLS: gl.constexpr,
                 SPLIT_COLS: gl.constexpr):
    """Issue this consumer's share of ``dQ = dS K`` over the program's 128 keys: two products of 64 keys (one per
    consumer's K rows), dS read transposed from the dS^T slot ``ds_all``; with ``SPLIT_COLS`` the ``DQ_COLS``
    columns from ``CID * DQ_COLS``, else all of them."""
    dq = gl.zeros([BLOCK_M, DQ_COLS], gl.float32, layout=mma_layout(DQ_COLS))
    for c in gl.static_range(CONSUMERS):
        k_c = k_smem.index(c).reshape([ROWS, HEAD_DIM])
        if SPLIT_COLS:
            k_c = k_c.slice(CID * DQ_COLS, DQ_COLS, dim=1)
        dq = warpgroup_mma(ds_all.slice(c * ROWS, ROWS).permute((1, 0)), k_c, dq, use_acc=c > 0, is_async=True)
    return dq


@gluon.jit
def _dq_scaled(dq, sm_scale, UNSCALED: gl.constexpr):
    """A dQ share as added to the float32 buffer: times the softmax scale, or as it is with ``UNSCALED`` (the
    conversion kernel that turns the buffer into dQ applies the scale once, off the consumers' path)."""
    if UNSCALED:
        return dq
    return dq * sm_scale


@gluon.jit
def _dq_reduce(dq, dq_desc, dq_tile, off_b, off_h, start, col):
    """Add a float32 dQ tile into the global accumulator through the copy engine, via this consumer's staging
    tile (whose previous reduction, issued a whole query tile ago, must have read it first)."""
    tma.store_wait(pendings=0)
    dq_tile.reshape(dq.shape).store(dq)
    fence_async_shared()
    _tma_reduce_add(dq_desc, [off_b, off_h, start, col], dq_tile)


@gluon.constexpr_function
def draws_layout():
    # One consumer's draws of a query tile, as uint32 [64 queries, 16 words]: word x of Philox call c (keys
    # 64 s + 8 g + 2 c + e, draw 2 g + e = byte 4 x + (draw % 4)) at word 16 q + 4 c + (x ^ ((q >> 1) & 3)).
    # Bases: the (query, word) of each bit of the word offset; the XOR is explained at draws_t_layout.
    return gl.SharedLinearLayout(offset_bases=[[0, 1], [0, 2], [0, 4], [0, 8], [1, 0], [2, 1], [4, 2], [8, 0],
                                               [16, 0], [32, 0]])


@gluon.constexpr_function
def draws_t_layout():
    # The same bytes as [64 keys, 64 queries]: key k's draw (byte 2 (k >> 3) + (k & 1) of call (k >> 1) & 3) of
    # query q. A thread of the keys x queries accumulator (keys 16 w + g (+8), queries 8 j + 2 t + e) reads one
    # byte of a word per element; without the XOR of (q >> 1) & 3 into the word the lanes' t would meet in one
    # bank. Bases: the (key, query) of each bit of the byte offset.
    return gl.SharedLinearLayout(offset_bases=[[1, 0], [8, 0], [16, 0], [32, 0], [2, 0], [4, 0], [0, 1], [16, 2],
                                               [32, 4], [0, 8], [0, 16], [0, 32]])


@gluon.jit
def _store_draws(draws_smem, start, key0, drop, WIDE: gl.constexpr = False):
    """Draw the dropout pattern of query tile ``start`` x this consumer's 64 keys from ``key0`` and leave its raw
    Philox words in ``draws_smem``. Drawn query-major, as the forward draws it (each Philox call's 16 draws land
    in one thread, and its four words go out as one 16-byte store); ``_load_draws`` reads the bytes back transposed,
    as the keys x queries tile here has them (a thread of which holds 2 keys of 16 queries, whose draws would take
    16 calls). Waits for the last read of the buffer first."""
    r0, r1, r2, r3 = dropout_words(start, key0, ROWS, drop, WIDE)
    # join stacks along a new last axis: this interleaves to r0, r1, r2, r3, word x of each call at 4 c + x.
    words = gl.reshape(gl.join(gl.join(r0, r2), gl.join(r1, r3)), [BLOCK_M, 16])
    gl.thread_barrier()
    draws_smem.store(words)


@gluon.jit
def _load_draws(draws_smem):
    """The draws of ``_store_draws``' tile (as uint32) in the keys x queries accumulator layout."""
    gl.thread_barrier()
    draws = draws_smem._reinterpret(gl.uint8, [ROWS, BLOCK_M], draws_t_layout()).load(mma_layout(BLOCK_M))
    return draws.to(gl.uint32)


@gluon.jit
def _keep_where_le(n, bound, p):
    """``where(n <= bound, p, 0)`` for int32 ``n`` and ``bound`` broadcast to p's shape (``ptx_select``)."""
    return ptx_select("le.s32", n, bound, p, gl.zeros_like(p))


@gluon.jit
def _band_hides(start, key0, diag, win_left, win_right, WINDOW: gl.constexpr):
    """Whether the band hides any pair of the tile of keys ``[key0, key0 + ROWS)`` and queries ``[start, start +
    BLOCK_M)``: the first query's last visible key falls short of the tile's last key (causal, or a window's right
    side), or the last query's first visible key lies past the tile's first (a window's left side)."""
    hides = start + diag + win_right < key0 + ROWS - 1
    if WINDOW:
        hides = hides | (start + BLOCK_M - 1 + diag - win_left > key0)
    return hides


@gluon.jit
def _minus_rows(vec, s_layout: gl.constexpr, NEGATED: gl.constexpr):
    """``-vec`` per query broadcast over the tile's keys, a product's starting value; with ``NEGATED`` ``vec``
    already holds the negation (the producer staged it so) and ``x + (-0.0)``, which is x exactly, broadcasts it
    without arithmetic."""
    if NEGATED:
        rows = gl.full([ROWS, BLOCK_M], -0.0, gl.float32, layout=s_layout) + vec[None, :]
    else:
        rows = gl.zeros([ROWS, BLOCK_M], gl.float32, layout=s_layout) - vec[None, :]
    return rows


@gluon.jit
def _st_start(lse2, qk_scale, start, offs_m, key0, diag, win_left, win_right, s_layout: gl.constexpr,
              MASK_INIT: gl.constexpr, WINDOW: gl.constexpr, PRESCALED: gl.constexpr = False):
    """S^T's starting value ``-lse2 / qk_scale`` per query; with ``MASK_INIT`` -inf where the band hides the key
    (causal: n > m + diag; a window: outside ``[m + diag - win_left, m + diag + win_right]``), so the product keeps
    it there and exp2 gives 0: one select per score at the start instead of one after exp2, and no move.
    ``MASK_INIT`` 2 (``configs.GLUON_BWD_MASK_BRANCH``): only on a tile the band cuts (``_band_hides``), decided per
    tile by a uniform branch. ``PRESCALED``: ``lse2`` already holds ``-lse2 / qk_scale`` (the producer staged it
    so). ``start`` is the tile's first query (``offs_m[0]``)."""
    if PRESCALED:
        init = _minus_rows(lse2, s_layout, True)
    else:
        init = _minus_rows(lse2 / qk_scale, s_layout, False)
    if MASK_INIT == 2:
        if _band_hides(start, key0, diag, win_left, win_right, WINDOW):
            init = _band_init(init, offs_m, key0, diag, win_left, win_right, s_layout, WINDOW)
    elif MASK_INIT:
        init = _band_init(init, offs_m, key0, diag, win_left, win_right, s_layout, WINDOW)
    return init


@gluon.jit
def _band_init(init, offs_m, key0, diag, win_left, win_right, s_layout: gl.constexpr, WINDOW: gl.constexpr):
    """``init`` with -inf where the band hides the key (``_st_start``)."""
    offs_n = key0 + gl.arange(0, ROWS, layout=gl.SliceLayout(1, s_layout))
    hidden = gl.full([ROWS, BLOCK_M], float("-inf"), gl.float32, layout=s_layout)
    pos = offs_m + diag
    if WINDOW:
        init = ptx_select("le.s32", (pos - win_left)[None, :], offs_n[:, None], init, hidden)
        init = ptx_select("le.s32", offs_n[:, None], (pos + win_right)[None, :], init, hidden)
    else:
        init = ptx_select("le.s32", offs_n[:, None], pos[None, :], init, hidden)
    return init


@gluon.jit
def _tile_rows(Vec, row_base, offs_m, m_ok, other: gl.constexpr, rows_smem, s, WHICH: gl.constexpr,
               STAGED: gl.constexpr):
    """One of the query tile's vectors (lse2: ``WHICH`` 0, delta: 1) in the layout of ``offs_m``: from the stage's
    shared memory where the producer staged it (``STAGED``), else from global memory (``other`` past seqlen_q)."""
    if STAGED:
        vec = rows_smem[WHICH].index(s).load(offs_m.type.layout)
    else:
        vec = gl.load(Vec + row_base + offs_m, mask=m_ok, other=other)
    return vec


@gluon.jit
def _dropout_grads(pt, dpt, dropout_scale, delta):
    """``(dS^T, P^T kept)`` from P^T and dP^T (which started from -delta (1 - p) where kept, DROPPED where dropped):
    kept entries ``P^T (dP^T / (1 - p) - delta)`` and ``P^T``, dropped ones ``-P^T delta`` and 0. In PTX for the
    reason ``ptx_select`` gives (one compare, two selects per element)."""
    scale = gl.full(pt.shape, dropout_scale, gl.float32, pt.type.layout)
    minus_delta = gl.zeros_like(pt) - delta[None, :]
    # 0f6FA18F08 is DROPPED_BOUND (1e29).
    ds, pk = gl.inline_asm_elementwise(
        "{ .reg .pred p; .reg .f32 t; setp.lt.f32 p, $2, 0f6FA18F08; mul.f32 t, $2, $4; selp.f32 t, t, $5, p;"
        " mul.f32 $0, $3, t; selp.f32 $1, $3, 0f00000000, p; }", "=r,=r,r,r,r,r",
        [dpt.to(gl.uint32, bitcast=True), pt.to(gl.uint32, bitcast=True), scale.to(gl.uint32, bitcast=True),
         minus_delta.to(gl.uint32, bitcast=True)], dtype=(gl.uint32, gl.uint32), is_pure=True, pack=1)
    return ds.to(gl.float32, bitcast=True), pk.to(gl.float32, bitcast=True)


@gluon.jit
def _next_draws(draws_smem, start, lo, hi, key0, drop, head_step, WIDE: gl.constexpr = False):
    """``_store_draws`` for this consumer's next query tile: the next one of this head, else the first (``lo``) of
    the next head, whose counters start ``head_step`` further on."""
    nxt = start + BLOCK_M
    wrap = (nxt >= hi).to(gl.int32)
    seed, philox_base, philox_stride, drop_thresh = drop
    _store_draws(draws_smem, nxt + wrap * (lo - nxt), key0,
                 (seed, philox_base + wrap.to(gl.int64) * head_step, philox_stride, drop_thresh), WIDE)


@gluon.jit
def _bwd_tile(dk, dv, i, start, k, v, q_smem, do_smem, ds_smem, dq_smem, k_smem, dq_desc, ready, empty, ds_ready,
              Lse2, Delta, row_base, key0, seqlen_q, diag, win_left, win_right, slope2, qk_scale, sm_scale, off_b,
              off_h, draws_smem, lo, hi, drop, head_step, dropout_scale, rows_smem, CID: gl.constexpr,
              HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, MASKED: gl.constexpr, FUSE_DQ: gl.constexpr,
              WINDOW: gl.constexpr, ALIBI: gl.constexpr, DROPOUT: gl.constexpr, PTX_MASKS: gl.constexpr = True,
              STAGED_ROWS: gl.constexpr = False, MASK_INIT: gl.constexpr = False, DQ_UNSCALED: gl.constexpr = False,
              PRESCALED: gl.constexpr = False):
    """One query tile (the i-th this consumer takes from the ring): dV += P^T dO and dK += dS^T Q, and with
    ``FUSE_DQ`` this program's share of dQ for the tile added into the float32 accumulator. With ``DROPOUT`` (keep
    mask Z, scale 1 / (1 - p)): dV's operand is P^T with the dropped entries zeroed (the consumer scales dV once at
    the end), and dS^T = P^T (Z dP^T / (1 - p) - delta). ``draws_smem`` holds this tile's draws, made during the
    previous tile's last products; the next tile's are made during this one's."""
    dtype: gl.constexpr = q_smem.dtype
    s_layout: gl.constexpr = mma_layout(BLOCK_M)
    o_layout: gl.constexpr = mma_layout(HEAD_DIM)
    a_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    col_s: gl.constexpr = gl.SliceLayout(0, s_layout)
    # dQ's share of this program (its box, set by dq_cols on the host): at head_dim 128 each consumer takes half of
    # dQ's columns over all 128 keys; below, the consumers take turns computing all of them.
    DQ_COLS: gl.constexpr = dq_desc.block_type.shape[3]
    SPLIT_COLS: gl.constexpr = DQ_COLS < HEAD_DIM
    s = i % STAGES
    offs_m = start + gl.arange(0, BLOCK_M, layout=col_s)
    m_ok = offs_m < seqlen_q
    if STAGED_ROWS:
        mbarrier.wait(ready.index(s), (i // STAGES) & 1)
    # Rows past seqlen_q: lse2 = +inf makes P = 0 there (and dO reads as zeros).
    lse2 = _tile_rows(Lse2, row_base, offs_m, m_ok, float("inf"), rows_smem, s, 0, STAGED_ROWS)
    # Registers decide the shape of this loop (at head_dim 128, dK and dV alone hold 128 per thread, and each
    # 64-wide column vector 16 more): the products start from -lse2 / qk_scale and -delta instead of zero, so
    # S^T * qk_scale - lse2 and dP^T - delta come out of the tensor cores and neither vector stays live while
    # they run; dS^T is formed before P^T is converted for dV's product, so P^T's operand copy and the float32
    # P^T and dP^T tiles are never live at once.
    if DROPOUT:
        st = _st_start(lse2, qk_scale, start, offs_m, key0, diag, win_left, win_right, s_layout, MASK_INIT,
                       WINDOW, PRESCALED)
        if not STAGED_ROWS:
            mbarrier.wait(ready.index(s), (i // STAGES) & 1)
        qt = q_smem.index(s).reshape([BLOCK_M, HEAD_DIM])
        dot = do_smem.index(s).reshape([BLOCK_M, HEAD_DIM])
        st = warpgroup_mma(k, qt.permute((1, 0)), st, is_async=True)
        # The mask goes into dP^T's starting values, so nothing of it stays live while the products run: kept
        # entries need dP^T / (1 - p) - delta and start from -delta (1 - p); dropped ones start from DROPPED,
        # which no product moves (its float32 step is far above any |dP|), and take -delta below.
        delta = _tile_rows(Delta, row_base, offs_m, m_ok, 0.0, rows_smem, s, 1, STAGED_ROWS)
        kept_start = _minus_rows(delta * (1 / dropout_scale), s_layout, PRESCALED)  # PRESCALED: delta holds -delta
        dpt = select_kept(_load_draws(draws_smem), drop[3], kept_start, gl.full_like(kept_start, DROPPED))
        dpt = warpgroup_mma(v, dot.permute((1, 0)), dpt, is_async=True)
    elif STAGED_ROWS:
        # The vectors come from the stage (ready was awaited above), delta read after S^T's product is issued as in
        # the dropout branch (ptxas schedules the shared-memory loads itself: the head_dim-128 causal kernel
        # compiled to the same spills with both read first).
        qt = q_smem.index(s).reshape([BLOCK_M, HEAD_DIM])
        dot = do_smem.index(s).reshape([BLOCK_M, HEAD_DIM])
        st = _st_start(lse2, qk_scale, start, offs_m, key0, diag, win_left, win_right, s_layout, MASK_INIT,
                       WINDOW, PRESCALED)
        st = warpgroup_mma(k, qt.permute((1, 0)), st, is_async=True)
        delta = _tile_rows(Delta, row_base, offs_m, m_ok, 0.0, rows_smem, s, 1, STAGED_ROWS)
        dpt = _minus_rows(delta, s_layout, PRESCALED)  # PRESCALED: delta holds -delta
        dpt = warpgroup_mma(v, dot.permute((1, 0)), dpt, is_async=True)
    else:
        delta = _tile_rows(Delta, row_base, offs_m, m_ok, 0.0, rows_smem, s, 1, STAGED_ROWS)
        st = _st_start(lse2, qk_scale, start, offs_m, key0, diag, win_left, win_right, s_layout, MASK_INIT,
                       WINDOW, PRESCALED)
        dpt = _minus_rows(delta, s_layout, False)
        mbarrier.wait(ready.index(s), (i // STAGES) & 1)
        qt = q_smem.index(s).reshape([BLOCK_M, HEAD_DIM])
        dot = do_smem.index(s).reshape([BLOCK_M, HEAD_DIM])
        st = warpgroup_mma(k, qt.permute((1, 0)), st, is_async=True)
        dpt = warpgroup_mma(v, dot.permute((1, 0)), dpt, is_async=True)
    st = warpgroup_mma_wait(num_outstanding=1, deps=(st,))
    if ALIBI:
        # ALiBi's -slope * |m + diag - n| (log2 units), as the forward added it before its lse.
        # The distance in float32 from per-query and per-key conversions rather than one conversion per score
        # (ops/forward_sm90.py's _alibi_exact says why).
        offs_a = key0 + gl.arange(0, ROWS, layout=gl.SliceLayout(1, s_layout))
        dist = (offs_m + diag).to(gl.float32)[None, :] - offs_a.to(gl.float32)[:, None]
        pt = gl.exp2(st * qk_scale - slope2 * gl.abs(dist))
    else:
        pt = gl.exp2(st * qk_scale)
    if MASKED and not MASK_INIT:
        # A query tile at the band's edge: key n is visible to query m iff n <= m + diag (causal), or iff
        # -win_left <= n - m - diag <= win_right (a window, causal folded in).
        offs_n = key0 + gl.arange(0, ROWS, layout=gl.SliceLayout(1, s_layout))
        if WINDOW:
            # Each key against its query's bounds (per-query values): no index difference per score.
            pos = offs_m + diag
            if PTX_MASKS:
                pt = _keep_where_le(offs_n[:, None], (pos + win_right)[None, :],
                                    _keep_where_le((pos - win_left)[None, :], offs_n[:, None], pt))
            else:
                ok = (offs_n[:, None] <= (pos + win_right)[None, :]) & (offs_n[:, None] >= (pos - win_left)[None, :])
                pt = gl.where(ok, pt, 0.0)
        else:
            if PTX_MASKS:
                pt = _keep_where_le(offs_n[:, None], offs_m[None, :] + diag, pt)
            else:
                pt = gl.where(offs_n[:, None] <= offs_m[None, :] + diag, pt, 0.0)
    dpt = warpgroup_mma_wait(num_outstanding=0, deps=(dpt,))
    if DROPOUT:
        # Kept: P^T (dP^T / (1 - p) - delta); dropped: P^T (-delta), with delta read again (cached) rather than
        # held through the products.
        delta = _tile_rows(Delta, row_base, offs_m, m_ok, 0.0, rows_smem, s, 1, STAGED_ROWS)
        if PRESCALED:
            delta = 0.0 - delta
        ds, pk = _dropout_grads(pt, dpt, dropout_scale, delta)
        dst = ds.to(dtype)
        pa = gl.convert_layout(pk.to(dtype), a_layout)
    else:
        dst = (pt * dpt).to(dtype)
        pa = gl.convert_layout(pt.to(dtype), a_layout)
    dv = warpgroup_mma(pa, dot, dv, is_async=True)
    if FUSE_DQ:
        # dS^T goes to shared memory, where it is dK's A operand and (transposed, beside the other
        # consumer's half) dQ's; the other consumer is told once it is visible to the tensor cores.
        slot = i % 2
        ds_all = ds_smem.index(slot)
        ds_half = ds_all.slice(CID * ROWS, ROWS)
        ds_half.store(dst)
        fence_async_shared()
        mbarrier.arrive(ds_ready.index(slot), count=1)
        dk = warpgroup_mma(ds_half, qt, dk, is_async=True)
        if SPLIT_COLS:
            mbarrier.wait(ds_ready.index(slot), (i // 2) & 1)
            dq = _dq_products(ds_all, k_smem, CID, HEAD_DIM, DQ_COLS, SPLIT_COLS)
            if DROPOUT:
                _next_draws(draws_smem, start, lo, hi, key0, drop, head_step, DROPOUT & 8)  # under the last products
            dv, dk, pa, dq = warpgroup_mma_wait(num_outstanding=0, deps=(dv, dk, pa, dq))
            mbarrier.arrive(empty.index(s), count=1)
            _dq_reduce(_dq_scaled(dq, sm_scale, DQ_UNSCALED), dq_desc, dq_smem.index(CID), off_b, off_h, start,
                       CID * DQ_COLS)
        else:
            if DROPOUT:
                _next_draws(draws_smem, start, lo, hi, key0, drop, head_step, DROPOUT & 8)  # under the last products
            dv, dk, pa = warpgroup_mma_wait(num_outstanding=0, deps=(dv, dk, pa))
            mbarrier.arrive(empty.index(s), count=1)
            if i % 2 == CID:
                mbarrier.wait(ds_ready.index(slot), (i // 2) & 1)
                dq = _dq_products(ds_all, k_smem, CID, HEAD_DIM, DQ_COLS, SPLIT_COLS)
                dq = warpgroup_mma_wait(num_outstanding=0, deps=(dq,))
                _dq_reduce(_dq_scaled(dq, sm_scale, DQ_UNSCALED), dq_desc, dq_smem.index(CID), off_b, off_h, start, 0)
    else:
        dsa = gl.convert_layout(dst, a_layout)
        dk = warpgroup_mma(dsa, qt, dk, is_async=True)
        if DROPOUT:
            _next_draws(draws_smem, start, lo, hi, key0, drop, head_step, DROPOUT & 8)  # under the last products
        dv, dk, pa, dsa = warpgroup_mma_wait(num_outstanding=0, deps=(dv, dk, pa, dsa))
        mbarrier.arrive(empty.index(s), count=1)
    return dk, dv


@gluon.jit
def _bwd_tiles(dk, dv, i, first, last, tile_args, CID: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr,
               MASKED: gl.constexpr, FUSE_DQ: gl.constexpr, WINDOW: gl.constexpr, ALIBI: gl.constexpr,
               DROPOUT: gl.constexpr, PTX_MASKS: gl.constexpr, STAGED_ROWS: gl.constexpr, MASK_INIT: gl.constexpr,
               DQ_UNSCALED: gl.constexpr, PRESCALED: gl.constexpr):
    """``_bwd_tile`` over the query tiles ``[first, last)`` of one head; returns ``(dk, dv, i)``."""
    (k, v, q_smem, do_smem, ds_smem, dq_smem, k_smem, dq_desc, ready, empty, ds_ready, Lse2, Delta, row_base, key0,
     seqlen_q, diag, win_left, win_right, slope2, qk_scale, sm_scale, off_b, off_h, draws_smem, lo, hi, drop,
     head_step, dropout_scale, rows_smem) = tile_args
    for start in range(first, last, BLOCK_M):
        dk, dv = _bwd_tile(dk, dv, i, start, k, v, q_smem, do_smem, ds_smem, dq_smem, k_smem, dq_desc, ready, empty,
                           ds_ready, Lse2, Delta, row_base, key0, seqlen_q, diag, win_left, win_right, slope2,
                           qk_scale, sm_scale, off_b, off_h, draws_smem, lo, hi, drop, head_step, dropout_scale,
                           rows_smem, CID, HEAD_DIM, STAGES, MASKED, FUSE_DQ, WINDOW, ALIBI, DROPOUT, PTX_MASKS,
                           STAGED_ROWS, MASK_INIT, DQ_UNSCALED, PRESCALED)
        i += 1
    return dk, dv, i


@gluon.jit
def _bwd_consumer(dk_desc, dv_desc, dq_desc, Lse2, Delta, stride_lb, stride_lh, k_smem, v_smem, q_smem, do_smem,
                  ds_smem, dq_smem, draws_all, kv_bar, ready, empty, ds_ready, done, off_b, off_hk, n0, lo, full_lo,
                  full_hi, hi, seqlen_q, group, diag, win_left, win_right, Slopes, stride_sb, stride_sh, qk_scale,
                  sm_scale, dropout_args, rows_smem, CID: gl.constexpr, HEAD_DIM: gl.constexpr,
                  STAGES: gl.constexpr, CAUSAL: gl.constexpr, FUSE_DQ: gl.constexpr, WINDOW: gl.constexpr,
                  ALIBI: gl.constexpr, DROPOUT: gl.constexpr, PTX_MASKS: gl.constexpr, STAGED_ROWS: gl.constexpr,
                  MASK_EVERY_TILE: gl.constexpr, DQ_UNSCALED: gl.constexpr, PRESCALED: gl.constexpr):
    dtype: gl.constexpr = dk_desc.dtype
    o_layout: gl.constexpr = mma_layout(HEAD_DIM)
    key0 = n0 + CID * ROWS
    dk = gl.zeros([ROWS, HEAD_DIM], gl.float32, layout=o_layout)
    dv = gl.zeros([ROWS, HEAD_DIM], gl.float32, layout=o_layout)
    k_tile = k_smem.index(CID)
    v_tile = v_smem.index(CID)
    k = k_tile.reshape([ROWS, HEAD_DIM])
    v = v_tile.reshape([ROWS, HEAD_DIM])

    seed, philox_offset, philox_stride, drop_thresh, dropout_scale = dropout_args
    # Counters of the next head start this far on (the heads' lse rows and these share strides).
    head_step = stride_lh * philox_stride
    draws_smem = draws_all[0]
    if DROPOUT:
        # The first tile's draws; each tile makes the next one's while its last products run.
        draws_smem = draws_all[CID]
        head0 = off_b.to(gl.int64) * stride_lb + (off_hk * group).to(gl.int64) * stride_lh
        _store_draws(draws_smem, lo, key0, (seed, philox_offset + head0 * philox_stride, philox_stride, drop_thresh),
                     DROPOUT & 8)
    mbarrier.wait(kv_bar, 0)
    i = 0
    for g in range(0, group):
        off_h = off_hk * group + g
        row_base = off_b.to(gl.int64) * stride_lb + off_h.to(gl.int64) * stride_lh
        slope2 = alibi_slope2(Slopes, off_b, off_h, stride_sb, stride_sh, ALIBI)
        # This head's Philox counters start where the forward's did (its lse rows and these share strides).
        drop = (seed, philox_offset + row_base * philox_stride, philox_stride, drop_thresh)
        # What every tile of this head needs besides the flags (one tuple, so the loops below read as loops).
        tile_args = (k, v, q_smem, do_smem, ds_smem, dq_smem, k_smem, dq_desc, ready, empty, ds_ready, Lse2, Delta,
                     row_base, key0, seqlen_q, diag, win_left, win_right, slope2, qk_scale, sm_scale, off_b, off_h,
                     draws_smem, lo, hi, drop, head_step, dropout_scale, rows_smem)
        if (CAUSAL or WINDOW) and MASK_EVERY_TILE:
            # Every tile takes the mask, in one loop: a compare and a select per score more on the tiles that need
            # none, but one loop's live values instead of two or three loops' (the head_dim-128 causal kernel with
            # dQ fused and lse2/delta staged spills around every unmasked tile's products in the two-loop form, and
            # not at all in this one; here the mask goes into S^T's starting value, ``_st_start``).
            # MASK_EVERY_TILE 2 (configs.GLUON_BWD_MASK_BRANCH): still one loop, but only the tiles the band cuts
            # take the mask, behind a branch on the tile's first query (uniform across the warp group).
            dk, dv, i = _bwd_tiles(dk, dv, i, lo, hi, tile_args, CID, HEAD_DIM, STAGES, True, FUSE_DQ, WINDOW, ALIBI,
                                   DROPOUT, PTX_MASKS, STAGED_ROWS, MASK_EVERY_TILE, DQ_UNSCALED, PRESCALED)
        else:
            mask_end = lo
            if CAUSAL or WINDOW:
                # The first tiles (those starting before full_lo) need the mask; they get their own loop so the
                # mask's registers are not held through the long unmasked one.
                mask_end = lo + (full_lo - lo + BLOCK_M - 1) // BLOCK_M * BLOCK_M
                dk, dv, i = _bwd_tiles(dk, dv, i, lo, gl.minimum(mask_end, hi), tile_args, CID, HEAD_DIM, STAGES,
                                       True, FUSE_DQ, WINDOW, ALIBI, DROPOUT, PTX_MASKS, STAGED_ROWS, False,
                                       DQ_UNSCALED, PRESCALED)
            dk, dv, i = _bwd_tiles(dk, dv, i, mask_end, full_hi, tile_args, CID, HEAD_DIM, STAGES, False, FUSE_DQ,
                                   WINDOW, ALIBI, DROPOUT, PTX_MASKS, STAGED_ROWS, False, DQ_UNSCALED, PRESCALED)
            if WINDOW:
                # The last tiles, past the band's left edge for some of these keys.
                dk, dv, i = _bwd_tiles(dk, dv, i, gl.maximum(full_hi, mask_end), hi, tile_args, CID, HEAD_DIM,
                                       STAGES, True, FUSE_DQ, WINDOW, ALIBI, DROPOUT, PTX_MASKS, STAGED_ROWS, False,
                                       DQ_UNSCALED, PRESCALED)

    if FUSE_DQ:
        # The other consumer's dQ products read this consumer's K rows until its last tile: wait for it before
        # K's rows take dK.
        mbarrier.arrive(done, count=1)
        mbarrier.wait(done, 0)
    # This warp group's K and V halves are read for the last time: they take its dK and dV tiles.
    k.store((dk * sm_scale).to(dtype))
    if DROPOUT:
        dv = dv * dropout_scale  # the kept probabilities' 1 / (1 - p), once per tile of dV
    v.store(dv.to(dtype))
    fence_async_shared()
    tma.async_copy_shared_to_global(dk_desc, [off_b, off_hk, n0 + CID * ROWS, 0], k_tile)
    tma.async_copy_shared_to_global(dv_desc, [off_b, off_hk, n0 + CID * ROWS, 0], v_tile)
    tma.store_wait(pendings=0)


@gluon.jit
def _attn_bwd_dkdv_sm90(q_desc, k_desc, v_desc, do_desc, dk_desc, dv_desc, dq_desc, Lse2, Delta, stride_lb,
                        stride_lh, Slopes, stride_sb, stride_sh, seqlen_q, group, diag, win_left, win_right, qk_scale,
                        sm_scale, seed, philox_offset, philox_stride, drop_thresh, dropout_scale,
                        HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr, FUSE_DQ: gl.constexpr,
                        WINDOW: gl.constexpr, ALIBI: gl.constexpr, DROPOUT: gl.constexpr,
                        PTX_MASKS: gl.constexpr = True, STAGED_ROWS: gl.constexpr = False,
                        MASK_EVERY_TILE: gl.constexpr = False, DQ_UNSCALED: gl.constexpr = False,
                        PRESCALED: gl.constexpr = False):
    dtype: gl.constexpr = q_desc.dtype
    off_hk = gl.program_id(1)
    off_b = gl.program_id(2)
    n0 = gl.program_id(0) * BLOCK_N
    lo = 0
    full_lo = 0
    full_hi = seqlen_q
    hi = seqlen_q
    if CAUSAL:
        # Query m sees key n iff n <= m + diag: the first query tile that sees any of keys [n0, n0 + BLOCK_N) and
        # the first that sees all of them.
        lo = (gl.maximum(n0 - diag, 0) // BLOCK_M) * BLOCK_M
        full_lo = gl.maximum(n0 + BLOCK_N - 1 - diag, 0)
    if WINDOW:
        # Query m sees key n iff m + diag - win_left <= n <= m + diag + win_right: query tiles [lo, hi) see some
        # of these keys, those in [full_lo, full_hi) all of them (ops/masks.py's query_range for token windows).
        n_last = n0 + BLOCK_N - 1
        lo = (gl.maximum(n0 - win_right - diag, 0) // BLOCK_M) * BLOCK_M
        hi = gl.minimum(gl.maximum(n_last + win_left + 1 - diag, 0), seqlen_q)
        full_lo = (gl.maximum(n_last - win_right - diag + BLOCK_M - 1, 0) // BLOCK_M) * BLOCK_M
        full_hi = (gl.maximum(n0 + win_left + 1 - diag, 0) // BLOCK_M) * BLOCK_M
        full_lo = gl.minimum(gl.maximum(full_lo, lo), gl.maximum(hi, lo))
        full_hi = gl.maximum(gl.minimum(full_hi, hi), full_lo)
        hi = gl.maximum(hi, full_hi)

    k_smem = gl.allocate_shared_memory(dtype, [CONSUMERS, 1, 1, ROWS, HEAD_DIM], k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [CONSUMERS, 1, 1, ROWS, HEAD_DIM], v_desc.layout)
    q_smem = gl.allocate_shared_memory(dtype, [STAGES, 1, 1, BLOCK_M, HEAD_DIM], q_desc.layout)
    do_smem = gl.allocate_shared_memory(dtype, [STAGES, 1, 1, BLOCK_M, HEAD_DIM], do_desc.layout)
    kv_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    mbarrier.init(kv_bar, count=1)
    for st in gl.static_range(STAGES):
        # With STAGED_ROWS the producer arrives once more, after it stored the tile's lse2 and delta.
        mbarrier.init(ready.index(st), count=2 if STAGED_ROWS else 1)
        mbarrier.init(empty.index(st), count=CONSUMERS)
    if STAGED_ROWS:
        # Each stage's lse2 and delta.
        rows_smem = (gl.allocate_shared_memory(gl.float32, [STAGES, BLOCK_M], gl.SwizzledSharedLayout(1, 1, 1, [0])),
                     gl.allocate_shared_memory(gl.float32, [STAGES, BLOCK_M], gl.SwizzledSharedLayout(1, 1, 1, [0])))
    else:
        rows_smem = (kv_bar, kv_bar)
    if FUSE_DQ:
        # Two slots of dS^T for all 128 keys (each consumer writes its 64 rows), so one consumer may write tile
        # i + 1 while the other still reads tile i; one staging tile of dQ per consumer for the TMA reduction.
        ds_layout: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=2)
        ds_smem = gl.allocate_shared_memory(dtype, [2, BLOCK_N, BLOCK_M], ds_layout)
        dq_smem = gl.allocate_shared_memory(gl.float32, [CONSUMERS, 1, 1, BLOCK_M, dq_desc.block_type.shape[3]],
                                            dq_desc.layout)
        ds_ready = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        done = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        for st in gl.static_range(2):
            mbarrier.init(ds_ready.index(st), count=CONSUMERS)
        mbarrier.init(done, count=CONSUMERS)
    else:
        ds_smem = kv_bar
        dq_smem = kv_bar
        ds_ready = kv_bar
        done = kv_bar

    dropout_args = (seed, philox_offset, philox_stride, drop_thresh, dropout_scale)
    if DROPOUT:
        # Each consumer's Philox draws of its next tile (draws_layout).
        draws_all = (gl.allocate_shared_memory(gl.uint32, [BLOCK_M, 16], draws_layout()),
                    gl.allocate_shared_memory(gl.uint32, [BLOCK_M, 16], draws_layout()))
    else:
        draws_all = (kv_bar, kv_bar)
    gl.warp_specialize([
        (_bwd_producer, (q_desc, k_desc, v_desc, do_desc, q_smem, k_smem, v_smem, do_smem, rows_smem, kv_bar, ready,
                         empty, Lse2, Delta, stride_lb, stride_lh, seqlen_q, off_b, off_hk, n0, lo, hi, group,
                         qk_scale, STAGES, STAGED_ROWS, PRESCALED)),
        (_bwd_consumer, (dk_desc, dv_desc, dq_desc, Lse2, Delta, stride_lb, stride_lh, k_smem, v_smem, q_smem,
                         do_smem, ds_smem, dq_smem, draws_all, kv_bar, ready, empty, ds_ready, done, off_b, off_hk, n0,
                         lo, full_lo, full_hi, hi, seqlen_q, group, diag, win_left, win_right, Slopes, stride_sb,
                         stride_sh, qk_scale, sm_scale, dropout_args, rows_smem, 0, HEAD_DIM, STAGES, CAUSAL,
                         FUSE_DQ, WINDOW, ALIBI, DROPOUT, PTX_MASKS, STAGED_ROWS, MASK_EVERY_TILE, DQ_UNSCALED,
                         PRESCALED)),
        (_bwd_consumer, (dk_desc, dv_desc, dq_desc, Lse2, Delta, stride_lb, stride_lh, k_smem, v_smem, q_smem,
                         do_smem, ds_smem, dq_smem, draws_all, kv_bar, ready, empty, ds_ready, done, off_b, off_hk, n0,
                         lo, full_lo, full_hi, hi, seqlen_q, group, diag, win_left, win_right, Slopes, stride_sb,
                         stride_sh, qk_scale, sm_scale, dropout_args, rows_smem, 1, HEAD_DIM, STAGES, CAUSAL,
                         FUSE_DQ, WINDOW, ALIBI, DROPOUT, PTX_MASKS, STAGED_ROWS, MASK_EVERY_TILE, DQ_UNSCALED,
                         PRESCALED)),
    ], [4, 4], [240, 240])


def supported(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dout: torch.Tensor, dk: torch.Tensor,
              dv: torch.Tensor, f: Features) -> bool:
    """Whether the Gluon backward kernel takes the call: an sm_90 GPU, an attention it covers (``covers_backward``),
    tensors the copy engine can address, and a length where it measured faster (``configs.backward_gluon``; a
    window or ALiBi counts as a mask there)."""
    if configs.interpreting() or q.device.type != "cuda" or not configs.backward_gluon(
            q.shape[-1], f.causal or banded(f), k.shape[1]):
        return False
    return (covers_backward(q.dtype, q.shape[-1], f) and is_sm90(q.device.index or 0)
            and all(tma_compatible(t) for t in (q, k, v, dout, dk, dv)))


def covers_backward(dtype: torch.dtype, head_dim: int, f: Features) -> bool:
    """What the kernel computes: plain and causal attention (``covers``, shared with the forward), with
    ``configs.GLUON_BWD_BANDS`` token windows and ALiBi (``WINDOW``, ``ALIBI``), and with
    ``configs.GLUON_BWD_DROPOUT`` dropout (``DROPOUT``)."""
    return covers(dtype, head_dim, f, configs.GLUON_BWD_BANDS, configs.GLUON_BWD_DROPOUT)


def dropout_bits(dropout_p: float) -> int:
    """The kernel's ``DROPOUT`` constexpr: 0 without dropout, else 1 plus 8 for the Philox rounds' products from
    one wide multiply each (``configs.GLUON_BWD_PHILOX_WIDE``; the forward's bit, ``forward_sm90.dropout_bits``)."""
    if dropout_p <= 0:
        return 0
    return 1 | (8 if configs.GLUON_BWD_PHILOX_WIDE else 0)


def dq_cols(head_dim: int) -> int:
    """Columns of dQ that one consumer adds per query tile, the width of the dQ descriptor's box: half of them at
    head_dim 128 (each consumer its half); all at 64, where the consumers take turns, since a 32-column half would
    split a 128-byte swizzle atom."""
    return head_dim // 2 if head_dim >= 128 else head_dim


def dq_staging_layout(rows: int, cols: int) -> gl.NVMMASharedLayout:
    """The shared-memory layout of a consumer's float32 dQ tile, which its TMA reductions read. The default 128-byte
    swizzle takes twice the ideal wavefronts for the tile's stores from the wgmma accumulator: a 64-bit store's
    half warp covers 4 rows x 32 bytes, and the swizzle only permutes those rows' chunks within one 128-byte group
    (Nsight Compute: 2,097,152 excessive wavefronts on each of the 16 stores per tile,
    results/diagnostics/h200-2026-12-03o-ncu-*). With ``configs.GLUON_BWD_DQ_NARROW_SWIZZLE`` a 32-byte swizzle
    (the copy engine then adds 8-column boxes, 8 per tile): each half warp's stores fill 128 contiguous bytes."""
    if configs.GLUON_BWD_DQ_NARROW_SWIZZLE:
        return gl.NVMMASharedLayout(swizzle_byte_width=32, element_bitwidth=32, rank=4)
    return smem_layout(rows, cols, torch.float32)


def stages_for(head_dim: int, fuse_dq: bool = False, dropout: bool = False, staged_rows: bool = True) -> int:
    """(Q, dO) stages beside the program's K and V (and, with dQ fused, two dS^T slots and the dQ staging tiles;
    with dropout, each consumer's 4 KB of Philox draws for its next tile); with ``staged_rows`` each stage also
    holds its tile's lse2 and delta (512 bytes)."""
    fixed = 2 * BLOCK_N.value * head_dim * 2
    if fuse_dq:
        fixed += 2 * BLOCK_N.value * BLOCK_M.value * 2 + CONSUMERS.value * BLOCK_M.value * dq_cols(head_dim) * 4
    if dropout:
        fixed += CONSUMERS.value * BLOCK_M.value * ROWS.value
    return ring_stages(fixed, 2 * BLOCK_M.value * head_dim * 2 + (2 * BLOCK_M.value * 4 if staged_rows else 0))


def attention_backward_dkdv_sm90(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dout: torch.Tensor,
                                 lse2: torch.Tensor, delta: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor,
                                 f: Features, stages: int = 0, dq_acc: Optional[torch.Tensor] = None,
                                 roles: Optional[Dict[str, torch.Tensor]] = None,
                                 dq_scaled: bool = True) -> Optional[Plan]:
    """Launch the Gluon backward kernel (``supported`` was checked). Without ``dq_acc``, lse2/delta were written
    by the dQ kernel; with it (a zeroed float32 ``(batch, nheads, seqlen_q, head_dim)`` tensor, lse2/delta from
    the preprocessing pass) the kernel also adds each key tile's share of dQ (scaled: the sum is the final dQ in
    float32) into it through TMA reductions; ``dq_scaled=False`` leaves those shares unscaled, for a conversion
    that applies the softmax scale (ops/dq_convert.py). With ``roles`` (the tensors by name, ``dq_acc`` among them
    when fused), returns the launch's plan (ops/launch.py)."""
    batch, seqlen_q, nheads, head_dim = q.shape
    seqlen_k, nheads_k = k.shape[1], k.shape[2]
    rows_m, rows_n = BLOCK_M.value, ROWS.value
    descs = bhsd_descriptors((q, k, v, dout, dk, dv), (rows_m, rows_n, rows_n, rows_m, rows_n, rows_n))
    fuse = dq_acc is not None
    if fuse:
        cols = dq_cols(head_dim)
        dq_desc = TensorDescriptor(dq_acc, list(dq_acc.shape), list(dq_acc.stride()), [1, 1, rows_m, cols],
                                   dq_staging_layout(rows_m, cols))
    else:
        dq_desc = descs[4]
    diag = f.diagonal(seqlen_q, seqlen_k)
    window = tuple(f.window_size) != (-1, -1)
    grid = (cdiv(seqlen_k, BLOCK_N.value), nheads_k, batch)
    left, right = window_sides(f, seqlen_q, seqlen_k, diag)
    slopes, slope_strides = alibi_args(f, lse2)
    # Seed, Philox offset, counters per row, 8-bit threshold and 1 / (1 - p), as the forward took them.
    drop = ((int(f.seed), int(f.offset), dropout_row_stride(seqlen_k), dropout_threshold(f.dropout_p),
             1.0 / (1.0 - f.dropout_p)) if f.dropout_p > 0 else (0, 0, 0, 0, 1.0))
    args = (*descs, dq_desc, lse2, delta, *lse2.stride()[:2], slopes, *slope_strides, seqlen_q, nheads // nheads_k,
            diag, left, right, f.softmax_scale * LOG2E, f.softmax_scale, *drop)
    masked = f.causal or window
    every = masked and configs.backward_mask_every_tile(head_dim, fuse)
    staged = configs.backward_staged_rows(head_dim, masked, fuse, f.dropout_p > 0, every)
    kwargs = dict(HEAD_DIM=head_dim, STAGES=stages or stages_for(head_dim, fuse, f.dropout_p > 0, staged),
                  CAUSAL=f.causal and not window,
                  FUSE_DQ=fuse, WINDOW=window, ALIBI=f.alibi_slopes is not None, DROPOUT=dropout_bits(f.dropout_p),
                  PTX_MASKS=configs.GLUON_BWD_PTX_MASKS, STAGED_ROWS=staged,
                  MASK_EVERY_TILE=2 if every and configs.GLUON_BWD_MASK_BRANCH else every,
                  DQ_UNSCALED=fuse and not dq_scaled,
                  PRESCALED=staged and configs.backward_prescaled_rows(head_dim, masked),
                  num_warps=4)
    return launch(_attn_bwd_dkdv_sm90, grid, args, kwargs, roles)
