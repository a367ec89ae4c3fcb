"""Hopper (sm_90) forward in Gluon: a warp-specialized kernel for plain and causal attention.

Triton 3.6 does not warp-specialize our ``tl`` forward on Hopper (benchmarks/NOTES.md), so its softmax and its
matrix products share the same warps and wait on each other. This kernel is written one level lower, in Gluon
(Triton's layout-explicit dialect, shipped in the same wheel), to give each job its own warps:

- one producer warp group streams K and V tiles into a ring of shared-memory stages through TMA, each stage
  guarded by a "ready" barrier (bytes landed) and an "empty" barrier (both consumers done with it);
- two consumer warp groups each own 64 of the program's 128 query rows: ``S = Q K^T`` and ``O += P V`` run as
  asynchronous warp-group MMAs from shared memory (P from registers), with the online softmax between them.
  In the default loop form (``configs.GLUON_OVERLAP``) tile j's ``S`` is issued together with tile j-1's
  ``P V``, and tile j's softmax runs while that ``P V`` is still on the tensor cores: each warp group overlaps its
  own softmax with its own matrix products, which the tl kernel cannot.

The producer spends its time waiting, so it gives its registers to the consumers (``worker_num_regs``). Each
consumer's half of the Q tile takes its output tile at the end (its last read of Q has completed by then), which
leaves room for three K/V stages at head_dim 128.

Two forms share that loop (``_attend``). The one-tile form launches a program per 128-row query tile. The
persistent form (``_attn_fwd_sm90_persistent``) launches one program per SM, which walks a list of query tiles with
its barriers and K/V ring carried from one to the next: the next tile's Q and first K/V tiles load while the current
one finishes, and at head_dim 64 three consumers share a 192-row tile (two on 128-row tiles for short rows:
``consumers_for``). Which form runs is measured policy (``configs.forward_gluon_persistent``, benchmarks/NOTES.md
entries 29, 32 and 84): the persistent form without a mask, and under a causal mask but for dropout there. Under a
causal mask its tiles differ in work, and programs that take them by rounds drift apart across heads and lose the
L2 reuse of K and V that the hardware's in-order scheduling of one-tile programs keeps. So head_dim 64 without a
mask, and causal calls beyond 4K keys, take their tiles from an atomic counter in the list's order
(``configs.forward_gluon_dynamic``), which keeps the programs on neighbouring tiles as the hardware does (NOTES
entry 78). ``tile_per_program`` (the persistent kernel with one program per tile) remains an A/B option.

Scope (``supported`` below): fp16/bf16, head_dim 64 or 128, no softcap/bias/mask/varlen/block windows; causal with
any diagonal; GQA; token windows (either side bounded, causal folded into the right side: ``WINDOW``, whose band's
first tiles are masked too) and ALiBi (``-slope * |m + diag - n|`` added to the scaled scores: ``ALIBI``), in the
one-tile form (the persistent form takes them where ``configs.gluon_persistent_bands`` measured it faster: a
head_dim-64 window without a causal mask, head_dim-128 causal windows beyond 4K keys); dropout (``DROPOUT``: the
Philox draws of ops/scores.py, unpacked in the accumulator's registers, ``_dropout``) in both forms; any sequence
lengths (a tile past the end of the keys is zero-filled by the copy engine and masked; output rows past the end of
the queries are clipped by the TMA store).
The Gluon backward (ops/backward_sm90.py) shares ``covers`` (windows and ALiBi there with
``configs.GLUON_BWD_BANDS``, dropout with ``configs.GLUON_BWD_DROPOUT``). Everything else, and every non-Hopper
device, keeps the ``tl`` kernels of ops/forward.py. Gluon has no interpreter, so this
kernel is tested on the GPU (tests/st) and compiled for sm_90 on the CPU machine (tests/ut/test_forward_sm90.py).
"""

from __future__ import annotations

import functools
from typing import Dict, Optional, Tuple

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma, warpgroup_mma,
                                                              warpgroup_mma_wait)
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

from ..features import Features
from . import configs
from .configs import cdiv
from .descriptors import tma_compatible
from .launch import PlanCache, launch
from .masks import window_bounds
from .scores import DROPOUT_ROUNDS, alibi_args, dropout_row_stride, dropout_threshold

LOG2E = 1.4426950408889634

# Query rows per consumer warp group (one wgmma M=64 each), consumer warp groups, query rows per program.
ROWS = gl.constexpr(64)
CONSUMERS = gl.constexpr(2)
BLOCK_M = gl.constexpr(128)


@gluon.constexpr_function
def mma_layout(n):
    # Four warps (one warp group) stacked along the rows; the instruction spans all n columns.
    return gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, n, 16])


@gluon.constexpr_function
def dropout_layout(n):
    # The Philox counters of a [64, n] score tile, [64, n // 16]: counter 4 s + t of a row feeds its keys
    # 64 s + 8 g + 2 t + e (ops/scores.py), which the accumulator layout above gives to one thread (lane bits 0-1
    # pick t, lane bits 2-4 and warps the row, registers the row + 8 and the span s). So each counter lives where
    # its 16 draws are used, and unpacking them is register work only.
    spans = n // 64
    reg = [[8, 0]] + [[0, 4 << b] for b in range(spans.bit_length() - 1)]
    return gl.DistributedLinearLayout(reg_bases=reg, lane_bases=[[0, 1], [0, 2], [1, 0], [2, 0], [4, 0]],
                                      warp_bases=[[16, 0], [32, 0]], block_bases=[], shape=[64, n // 16])


@gluon.jit
def _mul_hi_lo(x, m, WIDE: gl.constexpr):
    """``(umulhi(x, m), x * m)``: with ``WIDE`` from one 32 x 32 -> 64-bit multiply (``mul.wide.u32``), else as two
    (``IMAD.HI.U32`` and ``IMAD``)."""
    if WIDE:
        return gl.inline_asm_elementwise("{ .reg .b64 t; mul.wide.u32 t, $2, $3; mov.b64 {$1, $0}, t; }",
                                         "=r,=r,r,r", [x, m], dtype=(gl.uint32, gl.uint32), is_pure=True, pack=1)
    return gl.umulhi(x, m), x * m


@gluon.jit
def _philox(seed, counters, ROUNDS: gl.constexpr, WIDE: gl.constexpr = False):
    """Philox4x32 of 64-bit ``counters`` under the 64-bit key ``seed``, ``ROUNDS`` rounds: the four words Triton's
    ``tl.randint4x(seed, counters, ROUNDS)`` returns (the tl kernels regenerate these draws). ``WIDE``: each round's
    high and low products from one wide multiply (``configs.GLUON_FWD_PHILOX_WIDE``); the same words."""
    key = seed.to(gl.uint64)
    k0 = (key & 0xFFFFFFFF).to(gl.uint32)
    k1 = ((key >> 32) & 0xFFFFFFFF).to(gl.uint32)
    c0 = counters.to(gl.uint32)
    c1 = (counters >> 32).to(gl.uint32)
    c2 = c0 * 0
    c3 = c0 * 0
    # The round multipliers as uint32 tensors (umulhi takes no Python int above 2^31).
    mul_a = gl.full(c0.shape, 0xD2511F53, gl.uint32, c0.type.layout)
    mul_b = gl.full(c0.shape, 0xCD9E8D57, gl.uint32, c0.type.layout)
    for _ in gl.static_range(ROUNDS):
        _c0 = c0
        _c2 = c2
        hi_b, lo_b = _mul_hi_lo(_c2, mul_b, WIDE)
        hi_a, lo_a = _mul_hi_lo(_c0, mul_a, WIDE)
        c0 = hi_b ^ c1 ^ k0
        c2 = hi_a ^ c3 ^ k1
        c1 = lo_b
        c3 = lo_a
        k0 = k0 + 0x9E3779B9
        k1 = k1 + 0xBB67AE85
    return c0, c1, c2, c3


@gluon.jit
def dropout_words(row0, start, N: gl.constexpr, drop, WIDE: gl.constexpr = False):
    """The four Philox words of each call of a [64, N] score tile (query rows from ``row0``, keys from ``start``,
    a multiple of 64), ``[64, N // 16]`` each in ``dropout_layout(N)``; ``drop`` = (seed, Philox counter of this
    head's row 0, counters per row, 8-bit threshold); ``WIDE``: ``_philox``'s."""
    seed, philox_base, philox_stride, _ = drop
    c_layout: gl.constexpr = dropout_layout(N)
    rows = row0 + gl.arange(0, 64, layout=gl.SliceLayout(1, c_layout))
    calls = (start // 64) * 4 + gl.arange(0, N // 16, layout=gl.SliceLayout(0, c_layout))
    counters = philox_base + rows.to(gl.int64)[:, None] * philox_stride + calls[None, :]
    return _philox(seed, counters, DROPOUT_ROUNDS, WIDE)


@gluon.jit
def dropout_draws(row0, start, N: gl.constexpr, drop, WIDE: gl.constexpr = False):
    """The 8-bit draws (as uint32) of a [64, N] score tile (query rows from ``row0``, keys from ``start``, a
    multiple of 64) in the accumulator layout ``mma_layout(N)``, unpacked from ``dropout_words`` in registers."""
    return unpack_draws(dropout_words(row0, start, N, drop, WIDE), N)


@gluon.jit
def _word_order(r0, r1, r2, r3, N: gl.constexpr):
    """Per-word values of a [64, N] tile's calls in draw order, ``[64, N // 16, 4]``: draw d of a call lies in
    word d // 4 (join stacks along a new last axis, so this interleaves to r0, r1, r2, r3)."""
    return gl.reshape(gl.join(gl.join(r0, r2), gl.join(r1, r3)), [64, N // 16, 4])


@gluon.jit
def _key_order(lo, hi, N: gl.constexpr):
    """Per-half values ``[64, N // 16, 8]`` (word, half) split once more, ``lo`` for the first key of each pair and
    ``hi`` for the second, as the [64, N] tile in ``mma_layout(N)``: key 64 span + 8 g + 2 t + e of draw 2 g + e."""
    keys = gl.reshape(gl.join(lo, hi), [64, N // 64, 4, 8, 2])  # (span, t, g, e)
    keys = gl.reshape(gl.permute(keys, (0, 1, 3, 2, 4)), [64, N])
    return gl.convert_layout(keys, mma_layout(N))


@gluon.jit
def unpack_draws(words, N: gl.constexpr):
    """``dropout_words``' four words of a [64, N] tile as its 8-bit draws (uint32) in ``mma_layout(N)``: draw d of a
    call is byte d % 2 of half (d // 2) % 2 of word d // 4."""
    r0, r1, r2, r3 = words
    words = _word_order(r0, r1, r2, r3, N)
    halves = gl.reshape(gl.join(words & 0xFFFF, words >> 16), [64, N // 16, 8])
    return _key_order(halves & 0xFF, halves >> 8, N)


@gluon.constexpr_function
def _select_asm(cmp):
    return "{ .reg .pred p; setp." + cmp + " p, $1, $2; selp.b32 $0, $3, $4, p; }"


@gluon.jit
def ptx_select(CMP: gl.constexpr, x, y, a, b):
    """``where(x CMP y, a, b)`` for float32 ``a``/``b``, with ``CMP`` a PTX comparison and type (``"ge.u32"``,
    ``"le.s32"``); the operands broadcast together. One compare and one select per element, written in PTX: from
    ``gl.where`` on a tensor of compares, LLVM packs the predicates into bit masks and unpacks them again, about
    four more integer instructions per element."""
    picked = gl.inline_asm_elementwise(
        _select_asm(CMP), "=r,r,r,r,r", [x, y, a.to(gl.uint32, bitcast=True), b.to(gl.uint32, bitcast=True)],
        dtype=gl.uint32, is_pure=True, pack=1)
    return picked.to(gl.float32, bitcast=True)


@gluon.jit
def select_kept(draws, drop_thresh, kept, dropped):
    """``where(draws >= drop_thresh, kept, dropped)`` (float32 tensors of the draws' shape and layout)."""
    thresh = gl.full(draws.shape, drop_thresh, gl.uint32, draws.type.layout)
    return ptx_select("ge.u32", draws, thresh, kept, dropped)


@gluon.jit
def _dropout(p, row0, start, drop, words=None, WIDE: gl.constexpr = False):
    """``p`` (a [64, n] tile in the accumulator layout: rows from ``row0``, keys from ``start``) with its dropped
    keys zeroed (``dropout_draws`` against the threshold); ``words``: that tile's ``dropout_words``, where the
    caller drew them ahead (``DROPOUT & 2`` in ``_attend``)."""
    if words is None:
        draws = dropout_draws(row0, start, p.shape[1], drop, WIDE)
    else:
        draws = unpack_draws(words, p.shape[1])
    return select_kept(draws, drop[3], p, gl.zeros_like(p))


# Dropout's keep decisions on pairs of keys (``configs.GLUON_FWD_DROPOUT_PAIRS``). A pair of keys 8 g + 2 t + e
# (e < 2) of a thread's accumulator takes bytes 2 (g % 2) + e of one Philox word (``unpack_draws``), and the same
# pair sits in one 32-bit register once the probabilities are converted to 16 bits. So each word is compared with
# the threshold four bytes at once (the low seven bits of each byte by a subtraction that cannot borrow across
# bytes, the top bits by one three-input logic operation: LUT 0xB2 = (w & ~t) | (~(w ^ t) & d) on each byte's top
# bit), each half of the word is spread into a pair mask (``prmt`` with the sign-replicating selector: 0xFFFF where
# the byte's top bit is set), and the pair is ANDed with it: about 3.5 integer instructions per two keys, against
# an unpacked byte, a compare and a select per key.
_KEEP_PAIRS_ASM = gl.constexpr("{ .reg .b32 t; or.b32 t, $2, 0x80808080; sub.u32 t, t, $4; "
                                "lop3.b32 t, $2, $3, t, 0xB2; prmt.b32 $0, t, 0, 0x9988; prmt.b32 $1, t, 0, 0xBBAA; }")


@gluon.jit
def _word_pairs(word, thresh, low7):
    """A Philox word's two pair masks (its low half's keys, its high half's): ``keep_pairs``."""
    return gl.inline_asm_elementwise(_KEEP_PAIRS_ASM, "=r,=r,r,r,r", [word, thresh, low7],
                                     dtype=(gl.uint32, gl.uint32), is_pure=True, pack=1)


@gluon.jit
def keep_pairs(words, drop_thresh, N: gl.constexpr):
    """The keep masks of a [64, N] tile from its ``dropout_words``, uint32 in ``mma_layout(N)``: each key's value is
    its pair's mask (low half 0xFFFF if key 8 g + 2 t is kept, high half likewise for the key after it)."""
    r0, r1, r2, r3 = words
    # The threshold (at most 255: scores.dropout_threshold) in every byte.
    thresh = gl.full(r0.shape, drop_thresh, gl.uint32, r0.type.layout) * 0x01010101
    low7 = thresh & 0x7F7F7F7F
    lo0, hi0 = _word_pairs(r0, thresh, low7)
    lo1, hi1 = _word_pairs(r1, thresh, low7)
    lo2, hi2 = _word_pairs(r2, thresh, low7)
    lo3, hi3 = _word_pairs(r3, thresh, low7)
    # Each word's halves low first, as ``unpack_draws`` lays them out; both keys of a pair take its mask.
    pairs = gl.reshape(gl.join(_word_order(lo0, lo1, lo2, lo3, N), _word_order(hi0, hi1, hi2, hi3, N)),
                       [64, N // 16, 8])
    return _key_order(pairs, pairs, N)


@gluon.jit
def and_pairs(p16, keep):
    """``p16`` (16-bit probabilities) with the dropped keys zeroed: one AND per register of two (``keep_pairs``;
    both keys of a register carry the same mask, so either one's serves)."""
    return gl.inline_asm_elementwise("and.b32 $0, $1, $2;", "=r,r,r,r", [p16, keep], dtype=p16.dtype,
                                     is_pure=True, pack=2)


@gluon.jit
def _drop_keep(p, row0, start, drop, words, DROPOUT: gl.constexpr):
    """Dropout on a [64, n] score tile where the tile's draws are used: ``(p, keep)``, with ``p`` zeroed at the
    dropped keys (``_dropout``), or, with the pair form (``DROPOUT & 4``), ``p`` as is and ``keep`` its pair
    masks for ``_to_operand``; ``words``: the tile's Philox words where the caller drew them ahead."""
    keep = 0
    if DROPOUT & 4:
        if words is None:
            words = dropout_words(row0, start, p.shape[1], drop, DROPOUT & 8)
        keep = keep_pairs(words, drop[3], p.shape[1])
    elif DROPOUT:
        p = _dropout(p, row0, start, drop, words, DROPOUT & 8)
    return p, keep


@gluon.jit
def _to_operand(p, dtype: gl.constexpr, keep, DROPOUT: gl.constexpr):
    """The probabilities in the products' 16-bit type, the pair form's dropped keys zeroed there."""
    p16 = p.to(dtype)
    if DROPOUT & 4:
        p16 = and_pairs(p16, keep)
    return p16


@gluon.jit
def _load_q(q_desc, q_smem, q_bar, off_b, off_h, m0, NC: gl.constexpr):
    """A query tile's Q into shared memory, one 64-row part per consumer (``NC`` of them), on ``q_bar``."""
    mbarrier.expect(q_bar, NC * q_desc.block_type.nbytes)
    for c in gl.static_range(NC):
        tma.async_copy_global_to_shared(q_desc, [off_b, off_h, m0 + c * ROWS, 0], q_bar, q_smem.index(c))


@gluon.jit
def _load_kv(i, k_desc, v_desc, k_smem, v_smem, k_ready, v_ready, kv_empty, off_b, off_hk, lo, hi,
             BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    """The K/V tiles of keys ``[lo, hi)`` into the ring, ``i`` stages having been taken before; returns the count
    after them."""
    for start in range(lo, hi, BLOCK_N):
        s = i % STAGES
        # A fresh barrier counts as having completed the phase before 0, so the first lap does not wait.
        mbarrier.wait(kv_empty.index(s), ((i // STAGES) & 1) ^ 1)
        mbarrier.expect(k_ready.index(s), k_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(k_desc, [off_b, off_hk, start, 0], k_ready.index(s), k_smem.index(s))
        mbarrier.expect(v_ready.index(s), v_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(v_desc, [off_b, off_hk, start, 0], v_ready.index(s), v_smem.index(s))
        i += 1
    return i


@gluon.jit
def _producer(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, k_ready, v_ready, kv_empty,
              off_b, off_h, off_hk, m0, lo, hi, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    # Q arrives as one 64-row half per consumer; each half later holds that consumer's output tile.
    _load_q(q_desc, q_smem, q_bar, off_b, off_h, m0, CONSUMERS)
    _load_kv(gl.to_tensor(0), k_desc, v_desc, k_smem, v_smem, k_ready, v_ready, kv_empty, off_b, off_hk, lo, hi,
             BLOCK_N, STAGES)


@gluon.jit
def alibi_slope2(Slopes, off_b, off_h, stride_sb, stride_sh, ALIBI: gl.constexpr):
    """ALiBi's slope of query head ``off_h`` of batch entry ``off_b`` in log2 units (0.0 without ALiBi)."""
    slope2 = 0.0
    if ALIBI:
        slope2 = gl.load(Slopes + off_b * stride_sb + off_h * stride_sh).to(gl.float32) * 1.4426950408889634
    return slope2


@gluon.jit
def _alibi_exact(qk, offs_a, offs_m, diag, slope2, qk_scale):
    """``qk * qk_scale - slope2 * |m + diag - n|`` per score (``offs_a`` the tile's keys)."""
    # The distance is taken in float32 (exact below 2^24) from a per-row and a per-key conversion: converting an
    # integer difference per score costs a conversion each (the CUDA guide lists 16 per clock per SM against 128
    # float FMAs), about a second exp2's worth on the softmax's path (measured: NOTES entry 42).
    pos = (offs_m + diag).to(gl.float32)
    key = offs_a.to(gl.float32)
    return qk * qk_scale - slope2 * gl.abs(pos[:, None] - key[None, :])


@gluon.jit
def _alibi_scores(qk, start, offs_m, row0, diag, slope2, qk_scale, SPLIT: gl.constexpr, ONE_SIDED: gl.constexpr):
    """ALiBi's scores in log2 units, ``qk * qk_scale - slope2 * |m + diag - n|``, as ``(t, shift)`` with the score
    ``t - shift[:, None]``. With ``SPLIT``, a tile wholly on one side of the diagonal splits the distance into a key
    term (one FMA per score, in ``t``) and a query term (``shift``, which the softmax takes per row); only tiles
    that straddle the diagonal compute it per score (``_alibi_exact``). ``ONE_SIDED`` (a causal mask): every key a
    row sees is at or before its position, so every tile takes the left side's split, the diagonal one included
    (the keys past the diagonal, whose split value is wrong, are masked). ``row0``: the first of ``offs_m``."""
    offs_a = start + gl.arange(0, qk.shape[1], layout=gl.SliceLayout(0, qk.type.layout))
    shift = gl.zeros([qk.shape[0]], gl.float32, layout=gl.SliceLayout(1, qk.type.layout))
    if SPLIT:
        if ONE_SIDED:
            # Both terms are taken relative to the tile's first key, so the scores near a row's maximum stay small
            # numbers (a key term of slope * 64000 would leave float32 a 2^-8 step there).
            t = qk * qk_scale + (slope2 * (offs_a - start).to(gl.float32))[None, :]
            shift = slope2 * (offs_m + diag - start).to(gl.float32)
        else:
            # The tile's side from its first and last rows, scalars (a reduction over offs_m cost the warp group
            # a shared-memory round trip and a barrier per tile).
            left = start + qk.shape[1] - 1 <= row0 + diag  # every key at or before every row's position
            right = start >= row0 + qk.shape[0] - 1 + diag
            if left | right:
                sgn_slope = slope2 * (1.0 - 2.0 * right.to(gl.float32))
                t = qk * qk_scale + (sgn_slope * (offs_a - start).to(gl.float32))[None, :]
                shift = sgn_slope * (offs_m + diag - start).to(gl.float32)
            else:
                t = _alibi_exact(qk, offs_a, offs_m, diag, slope2, qk_scale)
    else:
        t = _alibi_exact(qk, offs_a, offs_m, diag, slope2, qk_scale)
    return t, shift


@gluon.jit
def _softmax(qk, m_i, l_i, start, full_lo, full_hi, offs_m, row0, seqlen_k, diag, win_left, win_right, slope2,
             qk_scale, CAUSAL: gl.constexpr, WINDOW: gl.constexpr, ALIBI: gl.constexpr,
             ALIBI_SPLIT: gl.constexpr = False):
    """Online-softmax step for one score tile: ``(p, alpha, m_new, l_new)``. Scores stay unscaled; the scale and
    log2(e) fold into the exp2 argument. ``WINDOW``: the band ``diag - win_left <= n - m <= diag + win_right``
    (causal folded into ``win_right = 0``), whose tiles below ``full_lo`` need the mask too. ``ALIBI``: the scores
    take ``-slope * |m + diag - n|`` (``slope2`` in log2 units), as the tl kernels' ``score_log2`` adds it
    (``_alibi_scores``; ``ALIBI_SPLIT`` its cheaper form off the diagonal)."""
    sc = qk_scale
    if ALIBI:
        qk, shift = _alibi_scores(qk, start, offs_m, row0, diag, slope2, qk_scale, ALIBI_SPLIT, CAUSAL)
        sc = 1.0
    masked = start >= full_hi
    if WINDOW:
        masked = masked | (start < full_lo)
    if masked:
        # Tiles past the band's full part or hanging over the end of the keys: mask, and keep rows that have seen
        # nothing yet at m = -inf without producing NaN (subtract 0 instead).
        offs_n = start + gl.arange(0, qk.shape[1], layout=gl.SliceLayout(0, qk.type.layout))
        ok = offs_n[None, :] < seqlen_k
        if CAUSAL:
            ok = ok & (offs_n[None, :] <= offs_m[:, None] + diag)
        if WINDOW:
            # Each key against its row's bounds (per-row values): no index difference per score.
            pos = offs_m + diag
            ok = ok & (offs_n[None, :] <= (pos + win_right)[:, None]) & (offs_n[None, :] >= (pos - win_left)[:, None])
        qk = gl.where(ok, qk, float("-inf"))
        row_max = gl.max(qk, 1) * sc
        if ALIBI_SPLIT:
            row_max = row_max - shift
        m_new = gl.maximum(m_i, row_max)
        m_use = gl.where(m_new == float("-inf"), 0.0, m_new)
    else:
        row_max = gl.max(qk, 1) * sc
        if ALIBI_SPLIT:
            row_max = row_max - shift
        m_new = gl.maximum(m_i, row_max)
        m_use = m_new
    if ALIBI_SPLIT:
        p = gl.exp2(qk - (m_use + shift)[:, None])
    else:
        p = gl.exp2(qk * sc - m_use[:, None])
    alpha = gl.exp2(m_i - m_use)
    return p, alpha, m_new, l_i * alpha + gl.sum(p, 1)


@gluon.jit
def _attend(q, k_smem, v_smem, k_ready, v_ready, kv_empty, turn, q_empty, i, lo, full_lo, full_hi, hi, offs_m,
            row0, seqlen_k, diag, win_left, win_right, slope2, qk_scale, m_i, l_i, acc, CID: gl.constexpr,
            BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr,
            WINDOW: gl.constexpr, ALIBI: gl.constexpr, PINGPONG: gl.constexpr, RELEASE_Q: gl.constexpr,
            ALIBI_SPLIT: gl.constexpr = False, drop=None, DROPOUT: gl.constexpr = False,
            HOLD_LAST: gl.constexpr = False):
    """The overlapped loop over one query tile's key tiles ``[lo, hi)``: tile j's ``S = Q K^T`` is issued before
    tile j-1's ``O += P V``, and the softmax of tile j runs while that ``P V`` is still on the tensor cores.
    ``i`` counts the K/V stages taken so far (the ring carries on across a persistent program's tiles); returns
    ``(acc, m_i, l_i, i)``. With ``RELEASE_Q`` the consumer tells the producer once its last read of Q is done
    (before the last ``P V``), so the next tile's Q can land while this one finishes. ``DROPOUT``: the products
    take the probabilities with dropped keys zeroed (``_dropout``), the row sums all of them. ``DROPOUT`` is a set
    of bits: 1 on; 2 (``configs.GLUON_FWD_DROPOUT_EARLY``) draws each tile's Philox words right after issuing its
    products, before waiting for S, so the generator's integer work overlaps the tensor cores' ``Q K^T`` as well as
    ``P V`` (the words, 16 registers per thread at 128 keys, are unpacked after the softmax as before); 4
    (``configs.GLUON_FWD_DROPOUT_PAIRS``) zeroes the dropped keys on the 16-bit probabilities, two per register
    (``keep_pairs``); 8 (``configs.GLUON_FWD_PHILOX_WIDE``) takes each Philox round's products from one wide
    multiply (``_philox``). ``HOLD_LAST``: the last
    K/V stage is not released here (the persistent form's output passes through its K half; ``_compute_tile``)."""
    dtype: gl.constexpr = q.dtype
    s_layout: gl.constexpr = mma_layout(BLOCK_N)
    o_layout: gl.constexpr = mma_layout(HEAD_DIM)
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_o: gl.constexpr = gl.SliceLayout(1, o_layout)
    zero_s = gl.zeros([ROWS, BLOCK_N], gl.float32, layout=s_layout)
    if lo < hi:
        i0 = i
        mbarrier.wait(k_ready.index(i % STAGES), (i // STAGES) & 1)
        qk = warpgroup_mma(q, k_smem.index(i % STAGES).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), zero_s,
                           use_acc=False)
        p, alpha, m_i, l_i = _softmax(qk, m_i, l_i, lo, full_lo, full_hi, offs_m, row0, seqlen_k, diag, win_left,
                                      win_right, slope2, qk_scale, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT)
        p, keep = _drop_keep(p, row0, lo, drop, None, DROPOUT)
        pa = gl.convert_layout(_to_operand(p, dtype, keep, DROPOUT), p_layout)
        if PINGPONG:
            if CID == 1:
                mbarrier.arrive(turn.index(0), count=1)  # consumer 0 issues first
        i += 1
        for start in range(lo + BLOCK_N, hi, BLOCK_N):
            s = i % STAGES
            prev = (i - 1) % STAGES
            mbarrier.wait(k_ready.index(s), (i // STAGES) & 1)
            mbarrier.wait(v_ready.index(prev), ((i - 1) // STAGES) & 1)
            if PINGPONG:
                # The two consumers take turns issuing their products, so one's softmax meets the other's
                # matrix products instead of both computing the same thing at the same time.
                mbarrier.wait(turn.index(CID), (i - i0 - 1) & 1)
            qk = warpgroup_mma(q, k_smem.index(s).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), zero_s,
                               use_acc=False, is_async=True)
            acc = warpgroup_mma(pa, v_smem.index(prev).reshape([BLOCK_N, HEAD_DIM]), acc, is_async=True)
            if PINGPONG:
                mbarrier.arrive(turn.index(1 - CID), count=1)
            words = None
            if DROPOUT & 2:
                words = dropout_words(row0, start, BLOCK_N, drop, DROPOUT & 8)
            qk, pa = warpgroup_mma_wait(num_outstanding=1, deps=(qk, pa))
            p, alpha, m_i, l_i = _softmax(qk, m_i, l_i, start, full_lo, full_hi, offs_m, row0, seqlen_k, diag,
                                          win_left, win_right, slope2, qk_scale, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT)
            p, keep = _drop_keep(p, row0, start, drop, words, DROPOUT)
            acc, pa = warpgroup_mma_wait(num_outstanding=0, deps=(acc, pa))
            mbarrier.arrive(kv_empty.index(prev), count=1)
            acc = acc * gl.convert_layout(alpha, row_o)[:, None]
            pa = gl.convert_layout(_to_operand(p, dtype, keep, DROPOUT), p_layout)
            i += 1
        if RELEASE_Q:
            mbarrier.arrive(q_empty, count=1)
        last = (i - 1) % STAGES
        mbarrier.wait(v_ready.index(last), ((i - 1) // STAGES) & 1)
        acc = warpgroup_mma(pa, v_smem.index(last).reshape([BLOCK_N, HEAD_DIM]), acc)
        if not HOLD_LAST:
            mbarrier.arrive(kv_empty.index(last), count=1)
    elif RELEASE_Q:
        mbarrier.arrive(q_empty, count=1)
    return acc, m_i, l_i, i


@gluon.jit
def _finish(acc, m_i, l_i, out_scale=1.0, SCALE: gl.constexpr = False):
    """``(out, lse)`` of a query tile: rows that saw no key get output 0 and lse -inf, as FlashAttention defines
    them. ``SCALE``: the output times ``out_scale`` (dropout's 1 / (1 - p))."""
    row_o: gl.constexpr = gl.SliceLayout(1, acc.type.layout)
    empty = l_i == 0.0
    l_safe = gl.where(empty, 1.0, l_i)
    if SCALE:
        out = acc * gl.convert_layout(out_scale / l_safe, row_o)[:, None]
    else:
        out = acc / gl.convert_layout(l_safe, row_o)[:, None]
    lse = gl.where(empty, float("-inf"), (m_i + gl.log2(l_safe)) * 0.6931471805599453)
    return out, lse


@gluon.jit
def _consumer(o_desc, Lse, q_smem, k_smem, v_smem, q_bar, k_ready, v_ready, kv_empty, turn,
              off_b, off_h, m0, lo, full_lo, full_hi, hi, seqlen_q, seqlen_k, diag, win_left, win_right, slope2,
              qk_scale, lse_base, drop, dropout_scale, CID: gl.constexpr, BLOCK_N: gl.constexpr,
              HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr, WINDOW: gl.constexpr,
              ALIBI: gl.constexpr, ALIBI_SPLIT: gl.constexpr, OVERLAP: gl.constexpr, PINGPONG: gl.constexpr,
              DROPOUT: gl.constexpr):
    dtype: gl.constexpr = o_desc.dtype
    s_layout: gl.constexpr = mma_layout(BLOCK_N)
    o_layout: gl.constexpr = mma_layout(HEAD_DIM)
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    row_o: gl.constexpr = gl.SliceLayout(1, o_layout)

    r0 = m0 + CID * ROWS
    offs_m = r0 + gl.arange(0, ROWS, layout=row_s)
    m_i = gl.full([ROWS], float("-inf"), gl.float32, layout=row_s)
    l_i = gl.zeros([ROWS], gl.float32, layout=row_s)
    acc = gl.zeros([ROWS, HEAD_DIM], gl.float32, layout=o_layout)
    zero_s = gl.zeros([ROWS, BLOCK_N], gl.float32, layout=s_layout)
    q_tile = q_smem.index(CID)
    q = q_tile.reshape([ROWS, HEAD_DIM])

    mbarrier.wait(q_bar, 0)
    if OVERLAP:
        acc, m_i, l_i, i = _attend(q, k_smem, v_smem, k_ready, v_ready, kv_empty, turn, q_bar, gl.to_tensor(0), lo,
                                   full_lo, full_hi, hi, offs_m, r0, seqlen_k, diag, win_left, win_right, slope2,
                                   qk_scale, m_i, l_i, acc, CID, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, WINDOW, ALIBI,
                                   PINGPONG, False, ALIBI_SPLIT, drop, DROPOUT)
    else:
        i = 0
        for start in range(lo, hi, BLOCK_N):
            s = i % STAGES
            phase = (i // STAGES) & 1
            mbarrier.wait(k_ready.index(s), phase)
            qk = warpgroup_mma(q, k_smem.index(s).reshape([BLOCK_N, HEAD_DIM]).permute((1, 0)), zero_s,
                               use_acc=False, is_async=True)
            qk = warpgroup_mma_wait(num_outstanding=0, deps=(qk,))
            p, alpha, m_i, l_i = _softmax(qk, m_i, l_i, start, full_lo, full_hi, offs_m, r0, seqlen_k, diag,
                                          win_left, win_right, slope2, qk_scale, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT)
            p, keep = _drop_keep(p, r0, start, drop, None, DROPOUT)
            acc = acc * gl.convert_layout(alpha, row_o)[:, None]
            pa = gl.convert_layout(_to_operand(p, dtype, keep, DROPOUT), p_layout)
            mbarrier.wait(v_ready.index(s), phase)
            acc = warpgroup_mma(pa, v_smem.index(s).reshape([BLOCK_N, HEAD_DIM]), acc, is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
            mbarrier.arrive(kv_empty.index(s), count=1)
            i += 1

    out, lse = _finish(acc, m_i, l_i, dropout_scale, DROPOUT)
    gl.store(Lse + lse_base + offs_m, lse, mask=offs_m < seqlen_q)
    # This warp group's last read of its Q half has completed (every MMA was waited for): the half takes the
    # output tile. Rows past seqlen_q fall outside the descriptor's bounds, and the copy engine drops them.
    q.store(out.to(dtype))
    fence_async_shared()
    tma.async_copy_shared_to_global(o_desc, [off_b, off_h, r0, 0], q_tile)
    tma.store_wait(pendings=0)


@gluon.jit
def _key_range(m0, seqlen_k, diag, win_left, win_right, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr,
               CAUSAL: gl.constexpr, WINDOW: gl.constexpr):
    """``(lo, full_lo, full_hi, hi)`` for the query rows ``[m0, m0 + BLOCK_M)``: the key tiles ``[lo, hi)`` hold
    every key one of them sees, and those in ``[full_lo, full_hi)`` need no mask for any of them (as
    ops/masks.py's ``key_range`` for token windows)."""
    lo = 0
    hi = seqlen_k
    full_hi = (seqlen_k // BLOCK_N) * BLOCK_N
    full_lo = lo
    if CAUSAL:
        hi = gl.minimum(hi, gl.maximum(m0 + BLOCK_M + diag, 0))
        full_hi = gl.minimum(full_hi, gl.maximum(((m0 + diag + 1) // BLOCK_N) * BLOCK_N, 0))
    if WINDOW:
        even_hi = full_hi
        m_last = m0 + BLOCK_M - 1
        lo = (gl.maximum(m0 + diag - win_left, 0) // BLOCK_N) * BLOCK_N
        hi = gl.minimum(gl.maximum(m_last + diag + win_right + 1, 0), seqlen_k)
        # A key tile is fully visible when the last row passes its left edge and the first row its right.
        full_lo = (gl.maximum(m_last + diag - win_left + BLOCK_N - 1, 0) // BLOCK_N) * BLOCK_N
        full_hi = (gl.maximum(m0 + diag + win_right + 1, 0) // BLOCK_N) * BLOCK_N
        full_lo = gl.minimum(gl.maximum(full_lo, lo), even_hi)
        full_hi = gl.maximum(gl.minimum(full_hi, even_hi), full_lo)
        hi = gl.maximum(hi, full_hi)
    return lo, full_lo, full_hi, hi


@gluon.jit
def _attn_fwd_sm90(q_desc, k_desc, v_desc, o_desc, Lse, stride_lb, stride_lh, Slopes, stride_sb, stride_sh, seqlen_q,
                   seqlen_k, group, diag, win_left, win_right, qk_scale, seed, philox_offset, philox_stride,
                   drop_thresh, dropout_scale, HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                   CAUSAL: gl.constexpr, WINDOW: gl.constexpr, ALIBI: gl.constexpr, ALIBI_SPLIT: gl.constexpr,
                   OVERLAP: gl.constexpr, PINGPONG: gl.constexpr, DROPOUT: gl.constexpr = False):
    dtype: gl.constexpr = q_desc.dtype
    num_m = gl.num_programs(0)
    # Causal: later query tiles carry more keys; start them first so the tail of the grid is short.
    pid_m = (num_m - 1 - gl.program_id(0)) if CAUSAL else gl.program_id(0)
    off_h = gl.program_id(1)
    off_b = gl.program_id(2)
    off_hk = off_h // group
    m0 = pid_m * BLOCK_M

    lo, full_lo, full_hi, hi = _key_range(m0, seqlen_k, diag, win_left, win_right, BLOCK_M, BLOCK_N, CAUSAL, WINDOW)
    slope2 = alibi_slope2(Slopes, off_b, off_h, stride_sb, stride_sh, ALIBI)

    q_smem = gl.allocate_shared_memory(dtype, [CONSUMERS, 1, 1, ROWS, HEAD_DIM], q_desc.layout)
    k_smem = gl.allocate_shared_memory(dtype, [STAGES, 1, 1, BLOCK_N, HEAD_DIM], k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [STAGES, 1, 1, BLOCK_N, HEAD_DIM], v_desc.layout)
    q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    k_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    v_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    kv_empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    turn = gl.allocate_shared_memory(gl.int64, [CONSUMERS, 1], mbarrier.MBarrierLayout())
    mbarrier.init(q_bar, count=1)
    for c in gl.static_range(CONSUMERS):
        mbarrier.init(turn.index(c), count=1)
    for st in gl.static_range(STAGES):
        mbarrier.init(k_ready.index(st), count=1)
        mbarrier.init(v_ready.index(st), count=1)
        mbarrier.init(kv_empty.index(st), count=CONSUMERS)

    lse_base = off_b.to(gl.int64) * stride_lb + off_h.to(gl.int64) * stride_lh
    # Dropout's counters index rows as lse does (ops/forward.py): this head's row 0 starts at lse_base rows.
    drop = (seed, philox_offset + lse_base * philox_stride, philox_stride, drop_thresh)
    gl.warp_specialize([
        (_producer, (q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, k_ready, v_ready, kv_empty,
                     off_b, off_h, off_hk, m0, lo, hi, BLOCK_N, STAGES)),
        (_consumer, (o_desc, Lse, q_smem, k_smem, v_smem, q_bar, k_ready, v_ready, kv_empty, turn,
                     off_b, off_h, m0, lo, full_lo, full_hi, hi, seqlen_q, seqlen_k, diag, win_left, win_right,
                     slope2, qk_scale, lse_base, drop, dropout_scale, 0, BLOCK_N, HEAD_DIM, STAGES, CAUSAL,
                     WINDOW, ALIBI, ALIBI_SPLIT, OVERLAP, PINGPONG, DROPOUT)),
        (_consumer, (o_desc, Lse, q_smem, k_smem, v_smem, q_bar, k_ready, v_ready, kv_empty, turn,
                     off_b, off_h, m0, lo, full_lo, full_hi, hi, seqlen_q, seqlen_k, diag, win_left, win_right,
                     slope2, qk_scale, lse_base, drop, dropout_scale, 1, BLOCK_N, HEAD_DIM, STAGES, CAUSAL,
                     WINDOW, ALIBI, ALIBI_SPLIT, OVERLAP, PINGPONG, DROPOUT)),
    ], [4, 4], [240, 240])


# --- The persistent form: one program per SM walks a list of query tiles --------------------------------------
#
# At short lengths a query tile's own work is only a few key tiles (8 at 1K keys), so what surrounds it (a
# program's start, its Q load, the pipeline's fill, the epilogue and the output store) is a large share of it. Here
# each program keeps its barriers and its K/V ring across tiles: the producer loads the next tile's Q as soon as
# the consumers' last ``S = Q K^T`` of the current one is done, and its K/V tiles while they finish, so the
# epilogue of one tile overlaps the loads of the next. Q's shared memory holds the next tile's Q by the epilogue,
# so the output passes through the K half of the tile's last K/V stage (two consumers; ``_compute_tile``) or leaves
# from registers (three). ``CONSUMERS`` warp groups of 64 query rows each: 3 at head_dim 64 (a 192-row tile,
# where each warp group's products are short and a third keeps the tensor cores fed), else 2.


@gluon.jit
def _tile_index(t0, num_tiles, CAUSAL: gl.constexpr):
    """The tile this program takes in the round of tiles starting at ``t0`` (one tile per program per round), or
    ``num_tiles`` and above for none. Under a causal mask tiles differ in work, and a program that took the same
    position every round would take the same kind of tile each time (at 1K keys and 6 tiles per head, 132 programs
    each saw one tile size only): odd rounds run backwards, so a program's long and short tiles alternate."""
    nprog = gl.num_programs(0)
    t = t0 + gl.program_id(0)
    if CAUSAL:
        if (t0 // nprog) % 2 == 1:
            t = t0 + nprog - 1 - gl.program_id(0)
    return t


@gluon.jit
def _tile_coords(t, num_m, nheads, BLOCK_M: gl.constexpr, CAUSAL: gl.constexpr):
    """Query tile ``t``: ``(batch, head, first row)``. Tiles of one head are neighbours (its K and V stay in L2
    while several programs read them); under a causal mask the tiles with the most keys come first within each
    head."""
    bh = t // num_m
    r = t % num_m
    mb = (num_m - 1 - r) if CAUSAL else r
    return bh // nheads, bh % nheads, mb * BLOCK_M


@gluon.jit
def _publish_tile(t, n, tile_smem, tile_ready, tile_empty):
    """Dynamic schedule: the producer hands the index of its ``n``-th tile (or, at the end, one past the list) to
    the consumers through one of two shared-memory slots."""
    slot = n % 2
    mbarrier.wait(tile_empty.index(slot), ((n // 2) & 1) ^ 1)
    tile_smem.index(slot).store(gl.full([1], t, gl.int32, layout=gl.BlockedLayout([1], [32], [4], [0])))
    mbarrier.arrive(tile_ready.index(slot), count=1)


@gluon.jit
def _take_tile(n, tile_smem, tile_ready, tile_empty):
    """Dynamic schedule: a consumer's ``n``-th tile index, as the producer published it."""
    slot = n % 2
    mbarrier.wait(tile_ready.index(slot), (n // 2) & 1)
    t = gl.max(tile_smem.index(slot).load(gl.BlockedLayout([1], [32], [4], [0])), axis=0)
    mbarrier.arrive(tile_empty.index(slot), count=1)
    return t


@gluon.jit
def _load_tile(t, i, n, q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, q_empty, k_ready, v_ready, kv_empty,
               num_m, nheads, group, seqlen_k, diag, win_left, win_right, NC: gl.constexpr, BLOCK_N: gl.constexpr,
               STAGES: gl.constexpr, CAUSAL: gl.constexpr, WINDOW: gl.constexpr):
    """The producer's work for query tile ``t`` (the program's ``n``-th): its Q, then its K/V tiles into the ring
    (``i`` stages taken so far, returned updated)."""
    BLOCK: gl.constexpr = NC * ROWS
    off_b, off_h, m0 = _tile_coords(t, num_m, nheads, BLOCK, CAUSAL)
    off_hk = off_h // group
    lo, full_lo, full_hi, hi = _key_range(m0, seqlen_k, diag, win_left, win_right, BLOCK, BLOCK_N, CAUSAL, WINDOW)
    # Q's shared memory is free once every consumer's last S = Q K^T of the previous tile is done.
    mbarrier.wait(q_empty, (n & 1) ^ 1)
    _load_q(q_desc, q_smem, q_bar, off_b, off_h, m0, NC)
    return _load_kv(i, k_desc, v_desc, k_smem, v_smem, k_ready, v_ready, kv_empty, off_b, off_hk, lo, hi, BLOCK_N,
                    STAGES)


@gluon.jit
def _producer_persistent(loads, NC: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr, CAUSAL: gl.constexpr,
                         WINDOW: gl.constexpr, DYNAMIC: gl.constexpr):
    # ``loads``: the producer's arguments in one tuple, so the partition lists name them once.
    (q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, q_empty, k_ready, v_ready, kv_empty, Sched, tile_smem,
     tile_ready, tile_empty, num_tiles, num_m, nheads, group, seqlen_k, diag, win_left, win_right) = loads
    i = 0
    n = 0
    if DYNAMIC:
        # Tiles in the list's order, each to whichever program asks next (an atomic counter zeroed per launch), as
        # the hardware hands out one-tile programs: the programs stay on neighbouring tiles, hence on few heads.
        t = gl.atomic_add(Sched, 1)
        while t < num_tiles:
            _publish_tile(t, n, tile_smem, tile_ready, tile_empty)
            i = _load_tile(t, i, n, q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, q_empty, k_ready,
                           v_ready, kv_empty, num_m, nheads, group, seqlen_k, diag, win_left, win_right, NC, BLOCK_N,
                           STAGES, CAUSAL, WINDOW)
            n += 1
            t = gl.atomic_add(Sched, 1)
        _publish_tile(t, n, tile_smem, tile_ready, tile_empty)
    else:
        for t0 in range(0, num_tiles, gl.num_programs(0)):
            t = _tile_index(t0, num_tiles, CAUSAL)
            if t < num_tiles:
                i = _load_tile(t, i, n, q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, q_empty, k_ready,
                               v_ready, kv_empty, num_m, nheads, group, seqlen_k, diag, win_left, win_right, NC,
                               BLOCK_N, STAGES, CAUSAL, WINDOW)
                n += 1


@gluon.jit
def _release_held(held, kv_empty):
    """Out through shared memory: once this consumer's output store has read the K half it passed through, that
    K/V stage (``held``; -1 for none) goes back to the producer."""
    tma.store_wait(pendings=0)
    if held >= 0:
        mbarrier.arrive(kv_empty.index(held), count=1)
    return gl.to_tensor(-1)


@gluon.jit
def _compute_tile(t, i, n, held, pv_done, q, Out, o_desc, stride_ob, stride_oh, stride_os, Lse, stride_lb,
                  stride_lh, k_smem, v_smem, q_bar, q_empty, k_ready, v_ready, kv_empty, num_m, nheads, seqlen_q,
                  seqlen_k, diag, qk_scale, win_left, win_right, Slopes, stride_sb, stride_sh, dropout_args,
                  CID: gl.constexpr, NC: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
                  STAGES: gl.constexpr, CAUSAL: gl.constexpr, WINDOW: gl.constexpr, ALIBI: gl.constexpr,
                  ALIBI_SPLIT: gl.constexpr, DROPOUT: gl.constexpr, OUT_SMEM: gl.constexpr):
    """A consumer's work for query tile ``t`` (the program's ``n``-th): its 64 rows' attention, the lse and the
    output; returns the updated count of K/V stages taken and the stage it holds. ``dropout_args``: (seed, Philox
    offset, counters per row, 8-bit threshold, output scale).

    The output leaves from registers, or with ``OUT_SMEM`` (``configs.GLUON_PERSISTENT_OUT_SMEM``) through the K
    half of the tile's last K/V stage and a TMA store: that K tile's last reader was the last ``S = Q K^T``, which
    every consumer has finished once Q's release completes. With three consumers (``NC * 64`` rows past one K tile;
    ``configs.GLUON_PERSISTENT_OUT_SMEM_V``) the third takes the first rows of that stage's V tile, once every
    consumer has arrived on ``pv_done`` after its last ``P V``. Stored from registers, each thread writes 4-byte
    pieces scattered over 8 rows, and the store queue stalls the consumers at 1K keys (Nsight Compute, NOTES entry
    71). The stage goes back to the producer at the start of the next tile, after the copy engine has read it
    (``_release_held``)."""
    dtype: gl.constexpr = Out.dtype.element_ty
    BLOCK: gl.constexpr = NC * ROWS
    s_layout: gl.constexpr = mma_layout(BLOCK_N)
    o_layout: gl.constexpr = mma_layout(HEAD_DIM)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    off_b, off_h, m0 = _tile_coords(t, num_m, nheads, BLOCK, CAUSAL)
    lo, full_lo, full_hi, hi = _key_range(m0, seqlen_k, diag, win_left, win_right, BLOCK, BLOCK_N, CAUSAL, WINDOW)
    slope2 = alibi_slope2(Slopes, off_b, off_h, stride_sb, stride_sh, ALIBI)
    r0 = m0 + CID * ROWS
    offs_m = r0 + gl.arange(0, ROWS, layout=row_s)
    m_i = gl.full([ROWS], float("-inf"), gl.float32, layout=row_s)
    l_i = gl.zeros([ROWS], gl.float32, layout=row_s)
    acc = gl.zeros([ROWS, HEAD_DIM], gl.float32, layout=o_layout)
    lse_base = off_b.to(gl.int64) * stride_lb + off_h.to(gl.int64) * stride_lh
    seed, philox_offset, philox_stride, drop_thresh, dropout_scale = dropout_args
    drop = (seed, philox_offset + lse_base * philox_stride, philox_stride, drop_thresh)
    mbarrier.wait(q_bar, n & 1)
    if OUT_SMEM:
        held = _release_held(held, kv_empty)
    acc, m_i, l_i, i = _attend(q, k_smem, v_smem, k_ready, v_ready, kv_empty, q_bar, q_empty, i, lo, full_lo,
                               full_hi, hi, offs_m, r0, seqlen_k, diag, win_left, win_right, slope2, qk_scale, m_i,
                               l_i, acc, CID, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, WINDOW, ALIBI, False, True,
                               ALIBI_SPLIT, drop, DROPOUT, OUT_SMEM)
    V_HALF: gl.constexpr = OUT_SMEM and NC * ROWS > BLOCK_N
    if V_HALF:
        mbarrier.arrive(pv_done, count=1)  # this consumer's last P V has completed (it was waited for)
    out, lse = _finish(acc, m_i, l_i, dropout_scale, DROPOUT)
    gl.store(Lse + lse_base + offs_m, lse, mask=offs_m < seqlen_q)
    out = out.to(dtype)
    o_base = off_b.to(gl.int64) * stride_ob + off_h.to(gl.int64) * stride_oh
    if OUT_SMEM:
        if lo < hi:
            held = (i - 1) % STAGES
            if CID * ROWS < BLOCK_N:
                mbarrier.wait(q_empty, n & 1)
                o_tile = k_smem.index(held).reshape([BLOCK_N, HEAD_DIM]).slice(CID * ROWS, ROWS)
            else:
                # Rows past the K tile take the V tile's first rows, free once every consumer's last P V is done.
                mbarrier.wait(pv_done, n & 1)
                o_tile = v_smem.index(held).reshape([BLOCK_N, HEAD_DIM]).slice(CID * ROWS - BLOCK_N, ROWS)
            o_tile.store(out)
            fence_async_shared()
            # Rows past seqlen_q fall outside the descriptor's bounds, and the copy engine drops them.
            tma.async_copy_shared_to_global(o_desc, [off_b, off_h, r0, 0], o_tile)
        else:
            _store_rows(out, Out, o_base, stride_os, r0, seqlen_q, ROWS, HEAD_DIM)
    else:
        _store_rows(out, Out, o_base, stride_os, r0, seqlen_q, ROWS, HEAD_DIM)
    return i, held


@gluon.jit
def _store_rows(out, Out, o_base, stride_os, r0, seqlen_q, ROWS: gl.constexpr, HEAD_DIM: gl.constexpr):
    """The output rows ``[r0, r0 + ROWS)`` stored from registers, those past ``seqlen_q`` left out."""
    o_layout: gl.constexpr = out.type.layout
    o_rows = r0 + gl.arange(0, ROWS, layout=gl.SliceLayout(1, o_layout))
    cols = gl.arange(0, HEAD_DIM, layout=gl.SliceLayout(0, o_layout))
    o_ptrs = Out + o_base + o_rows.to(gl.int64)[:, None] * stride_os + cols[None, :]
    gl.store(o_ptrs, out, mask=(o_rows < seqlen_q)[:, None])


@gluon.jit
def _consumer_persistent(common, CID: gl.constexpr, NC: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr,
                         STAGES: gl.constexpr, CAUSAL: gl.constexpr, WINDOW: gl.constexpr, ALIBI: gl.constexpr,
                         ALIBI_SPLIT: gl.constexpr, DYNAMIC: gl.constexpr, DROPOUT: gl.constexpr,
                         OUT_SMEM: gl.constexpr):
    # ``common``: the arguments every consumer shares, one tuple so the partition list names them once.
    (Out, o_desc, stride_ob, stride_oh, stride_os, Lse, stride_lb, stride_lh, q_smem, k_smem, v_smem, q_bar, q_empty,
     k_ready, v_ready, kv_empty, pv_done, tile_smem, tile_ready, tile_empty, num_tiles, num_m, nheads, seqlen_q,
     seqlen_k, diag, qk_scale, win_left, win_right, Slopes, stride_sb, stride_sh, dropout_args) = common
    q = q_smem.index(CID).reshape([ROWS, HEAD_DIM])
    i = gl.to_tensor(0)
    held = gl.to_tensor(-1)
    n = 0
    if DYNAMIC:
        t = _take_tile(n, tile_smem, tile_ready, tile_empty)
        while t < num_tiles:
            i, held = _compute_tile(t, i, n, held, pv_done, q, Out, o_desc, stride_ob, stride_oh, stride_os, Lse,
                                    stride_lb, stride_lh, k_smem, v_smem, q_bar, q_empty, k_ready, v_ready, kv_empty,
                                    num_m, nheads, seqlen_q, seqlen_k, diag, qk_scale, win_left, win_right, Slopes,
                                    stride_sb, stride_sh, dropout_args, CID, NC, BLOCK_N, HEAD_DIM, STAGES, CAUSAL,
                                    WINDOW, ALIBI, ALIBI_SPLIT, DROPOUT, OUT_SMEM)
            n += 1
            t = _take_tile(n, tile_smem, tile_ready, tile_empty)
    else:
        for t0 in range(0, num_tiles, gl.num_programs(0)):
            t = _tile_index(t0, num_tiles, CAUSAL)
            if t < num_tiles:
                i, held = _compute_tile(t, i, n, held, pv_done, q, Out, o_desc, stride_ob, stride_oh, stride_os, Lse,
                                        stride_lb, stride_lh, k_smem, v_smem, q_bar, q_empty, k_ready, v_ready,
                                        kv_empty, num_m, nheads, seqlen_q, seqlen_k, diag, qk_scale, win_left,
                                        win_right, Slopes, stride_sb, stride_sh, dropout_args, CID, NC, BLOCK_N,
                                        HEAD_DIM, STAGES, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT, DROPOUT, OUT_SMEM)
                n += 1
    if OUT_SMEM:
        # The last output store must have read shared memory before the program ends.
        _release_held(held, kv_empty)


@gluon.jit
def _attn_fwd_sm90_persistent(q_desc, k_desc, v_desc, Out, o_desc, stride_ob, stride_oh, stride_os, Lse, stride_lb,
                              stride_lh, Sched, Slopes, stride_sb, stride_sh, batch, nheads, seqlen_q, seqlen_k,
                              group, diag, win_left, win_right, qk_scale, seed, philox_offset, philox_stride,
                              drop_thresh, dropout_scale, HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr,
                              STAGES: gl.constexpr, CAUSAL: gl.constexpr, NC: gl.constexpr, DYNAMIC: gl.constexpr,
                              WINDOW: gl.constexpr = False, ALIBI: gl.constexpr = False,
                              ALIBI_SPLIT: gl.constexpr = False, DROPOUT: gl.constexpr = False,
                              OUT_SMEM: gl.constexpr = False):
    dtype: gl.constexpr = q_desc.dtype
    num_m = gl.cdiv(seqlen_q, NC * ROWS)
    num_tiles = num_m * nheads * batch
    q_smem = gl.allocate_shared_memory(dtype, [NC, 1, 1, ROWS, HEAD_DIM], q_desc.layout)
    k_smem = gl.allocate_shared_memory(dtype, [STAGES, 1, 1, BLOCK_N, HEAD_DIM], k_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [STAGES, 1, 1, BLOCK_N, HEAD_DIM], v_desc.layout)
    q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    q_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    k_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    v_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    kv_empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    pv_done = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    tile_smem = gl.allocate_shared_memory(gl.int32, [2, 1], gl.SwizzledSharedLayout(1, 1, 1, [0]))
    tile_ready = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    tile_empty = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    mbarrier.init(q_bar, count=1)
    mbarrier.init(q_empty, count=NC)
    mbarrier.init(pv_done, count=NC)
    for st in gl.static_range(2):
        mbarrier.init(tile_ready.index(st), count=1)
        mbarrier.init(tile_empty.index(st), count=NC)
    for st in gl.static_range(STAGES):
        mbarrier.init(k_ready.index(st), count=1)
        mbarrier.init(v_ready.index(st), count=1)
        mbarrier.init(kv_empty.index(st), count=NC)

    # Gluon takes the partitions' functions only inside the list, so the list is written out per consumer count.
    common = (Out, o_desc, stride_ob, stride_oh, stride_os, Lse, stride_lb, stride_lh, q_smem, k_smem, v_smem, q_bar,
              q_empty, k_ready, v_ready, kv_empty, pv_done, tile_smem, tile_ready, tile_empty, num_tiles, num_m, nheads,
              seqlen_q, seqlen_k, diag, qk_scale, win_left, win_right, Slopes, stride_sb, stride_sh,
              (seed, philox_offset, philox_stride, drop_thresh, dropout_scale))
    loads = (q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, q_empty, k_ready, v_ready, kv_empty, Sched,
             tile_smem, tile_ready, tile_empty, num_tiles, num_m, nheads, group, seqlen_k, diag, win_left, win_right)
    if NC == 3:
        # 16 warps share the register file: 24 for the producer leaves 160 for each consumer thread.
        gl.warp_specialize([
            (_producer_persistent, (loads, NC, BLOCK_N, STAGES, CAUSAL, WINDOW, DYNAMIC)),
            (_consumer_persistent, (common, 0, NC, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT,
                                    DYNAMIC, DROPOUT, OUT_SMEM)),
            (_consumer_persistent, (common, 1, NC, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT,
                                    DYNAMIC, DROPOUT, OUT_SMEM)),
            (_consumer_persistent, (common, 2, NC, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT,
                                    DYNAMIC, DROPOUT, OUT_SMEM)),
        ], [4, 4, 4], [160, 160, 160])
    else:
        gl.warp_specialize([
            (_producer_persistent, (loads, NC, BLOCK_N, STAGES, CAUSAL, WINDOW, DYNAMIC)),
            (_consumer_persistent, (common, 0, NC, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT,
                                    DYNAMIC, DROPOUT, OUT_SMEM)),
            (_consumer_persistent, (common, 1, NC, BLOCK_N, HEAD_DIM, STAGES, CAUSAL, WINDOW, ALIBI, ALIBI_SPLIT,
                                    DYNAMIC, DROPOUT, OUT_SMEM)),
        ], [4, 4], [240, 240])


@functools.lru_cache(maxsize=None)
def is_sm90(index: int) -> bool:
    """Whether CUDA device ``index`` is a Hopper GPU (asked once per device: the query costs host time per call)."""
    return torch.cuda.get_device_capability(index)[0] == 9


def covers(dtype: torch.dtype, head_dim: int, f: Features, bands: bool = False, dropout: bool = False) -> bool:
    """Whether a Gluon kernel computes this attention: fp16/bf16, head_dim 64/128, fixed lengths, none of softcap,
    bias, mask or block-granular windows; token windows and ALiBi only with ``bands`` (the kernel's
    ``WINDOW``/``ALIBI`` paths switched on), dropout only with ``dropout`` (the forward's ``DROPOUT``). See the
    module docstring."""
    return (dtype in (torch.float16, torch.bfloat16) and head_dim in (64, 128) and not f.varlen and f.softcap == 0
            and f.attn_bias is None and f.attn_mask is None and (dropout or f.dropout_p == 0)
            and f.window_block == 1 and (bands or not banded(f)))


def banded(f: Features) -> bool:
    """Whether the call has a sliding window or ALiBi, which the one-tile form computes (``WINDOW``, ``ALIBI``)."""
    return tuple(f.window_size) != (-1, -1) or f.alibi_slopes is not None


def window_sides(f: Features, seqlen_q: int, seqlen_k: int, diag: int) -> Tuple[int, int]:
    """``(win_left, win_right)`` of a token window for the kernels' ``WINDOW`` (0, 0 without one), as the tl kernels
    get them from ``window_bounds`` (causal folded into the right side, unbounded sides a span no index difference
    reaches)."""
    if tuple(f.window_size) == (-1, -1):
        return 0, 0
    _, left, right, _ = window_bounds(seqlen_q, seqlen_k, f.causal, f.window_size, 1, diag)
    return left, right


def covers_forward(dtype: torch.dtype, head_dim: int, f: Features) -> bool:
    """Whether the forward kernel computes this attention: what ``covers`` takes (which the Gluon backward shares),
    token windows and ALiBi (``configs.GLUON_FWD_BANDS``), and dropout (``configs.GLUON_FWD_DROPOUT``)."""
    return covers(dtype, head_dim, f, configs.GLUON_FWD_BANDS, configs.GLUON_FWD_DROPOUT)


def supported(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, f: Features) -> bool:
    """Whether this kernel takes the call: an sm_90 GPU, tensors the copy engine can address, an attention it
    covers, and a shape where it measured faster than the tl kernel (``configs.forward_gluon``; a window or ALiBi
    is a band there)."""
    if configs.interpreting() or q.device.type != "cuda" or not configs.forward_gluon(
            q.shape[-1], k.shape[1], f.causal, banded(f), f.dropout_p > 0):
        return False
    return (covers_forward(q.dtype, q.shape[-1], f) and is_sm90(q.device.index or 0)
            and all(tma_compatible(t) for t in (q, k, v, out)))


def descriptors(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                block_n: int) -> Tuple[TensorDescriptor, ...]:
    """The forward's Q, K, V and output descriptors (64-row Q and output boxes: one per consumer)."""
    return bhsd_descriptors((q, k, v, out), (ROWS.value, block_n, block_n, ROWS.value))


def bhsd_descriptors(tensors: Tuple[torch.Tensor, ...], rows: Tuple[int, ...]) -> Tuple[TensorDescriptor, ...]:
    """Descriptors over (batch, heads, seqlen, headdim) views of (batch, seqlen, heads, headdim) tensors, so each
    box ``[1, 1, rows, headdim]`` is a plain row-major tile; no copy is made. The views' shapes and strides are
    written out instead of building the views, and the layouts are cached: 63 -> 14 us for the forward's four
    descriptors on the CPU machine, which counts at short sequences."""
    out = []
    for t, r in zip(tensors, rows):
        b, s, h, d = t.shape
        sb, ss, sh, sd = t.stride()
        out.append(TensorDescriptor(t, [b, h, s, d], [sb, sh, ss, sd], [1, 1, r, d], smem_layout(r, d, t.dtype)))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def smem_layout(rows: int, head_dim: int, dtype: torch.dtype) -> gl.NVMMASharedLayout:
    """The shared-memory layout of a ``[1, 1, rows, head_dim]`` tile of ``dtype`` (fp16, bf16 or float32)."""
    return gl.NVMMASharedLayout.get_default_for([1, 1, rows, head_dim], _GL_DTYPES[dtype])


_GL_DTYPES = {torch.float16: gl.float16, torch.bfloat16: gl.bfloat16, torch.float32: gl.float32}


def ring_stages(fixed_bytes: int, stage_bytes: int, most: int = 4) -> int:
    """Stages of a TMA ring that fit beside ``fixed_bytes`` in 227 KB of shared memory (1 KB kept for barriers):
    at least 2, at most ``most``."""
    return max(2, min(most, (227 * 1024 - fixed_bytes - 1024) // stage_bytes))


def stages_for(head_dim: int, block_n: int) -> int:
    """K/V stages beside the Q tile (whose halves later hold the output)."""
    return ring_stages(BLOCK_M.value * head_dim * 2, 2 * block_n * head_dim * 2)


_PLANS = PlanCache()


def plan_key(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f: Features) -> Optional[tuple]:
    """What fixes a forward launch besides the tensors' addresses (ops/launch.py), for outputs the caller allocates
    as ``attention_forward`` does; None where this kernel does not cover the attention."""
    # ALiBi calls are not planned (the slopes would be one more role to carry), nor dropout (a fresh seed and
    # offset per call): they take the JIT launch.
    if not covers_forward(q.dtype, q.shape[-1], f) or f.alibi_slopes is not None or f.dropout_p > 0 or not is_sm90(
            q.device.index or 0):
        return None
    return (q.shape, q.stride(), k.shape, k.stride(), v.stride(), q.dtype, q.device, torch.cuda.current_device(),
            q.data_ptr() % 16, k.data_ptr() % 16, v.data_ptr() % 16, f.causal, f.softmax_scale, f.diag,
            tuple(f.window_size), *policy_switches())


def policy_switches() -> tuple:
    """The configuration switches that decide whether this kernel takes a call and how it launches: part of every
    forward plan's key (a tl plan's too, whose call this kernel declined)."""
    return (configs.GLUON_FWD_BANDS, configs.GLUON_ALIBI_SPLIT, configs.FWD_GLUON, configs.GLUON_D64_MIN_SEQLEN,
            configs.GLUON_BLOCK_N, configs.GLUON_OVERLAP, configs.GLUON_PINGPONG, configs.FWD_GLUON_PERSISTENT,
            configs.GLUON_PERSISTENT_BANDS, configs.GLUON_FWD_DROPOUT, configs.GLUON_FWD_DROPOUT_EARLY,
            configs.GLUON_FWD_DROPOUT_PAIRS, configs.GLUON_FWD_PHILOX_WIDE,
            configs.GLUON_D64_PERSISTENT_MIN_SEQLEN, configs.GLUON_DYNAMIC_SCHEDULE,
            configs.GLUON_CAUSAL_ROUNDS_MAX_SEQLEN, configs.GLUON_PERSISTENT_OUT_SMEM,
            configs.GLUON_PERSISTENT_OUT_SMEM_V, configs.GLUON_D64_DROPOUT_MIN_SEQLEN,
            configs.GLUON_D64_CAUSAL_MIN_SEQLEN, configs.GLUON_D64_THREE_CONSUMERS_MIN_SEQLEN,
            configs.GLUON_D64_CAUSAL_THREE_CONSUMERS_MIN_SEQLEN, configs.GLUON_D64_TWO_CONSUMER_STAGES)


def plan_roles(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
               lse: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The forward's tensors by the names its plans record and relaunch them under (one list for the Gluon and the
    tl forward's plans)."""
    return {"q": q, "k": k, "v": v, "out": out, "lse": lse}


def planned_forward(key: Optional[tuple], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    plans: Optional[PlanCache] = None) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """``(out, lse)`` through the plan recorded under ``key`` in ``plans`` (this kernel's by default; the tl
    forward passes its own), None when there is none: the launch without ``supported``, the descriptors or
    Triton's argument binding."""
    plan = (_PLANS if plans is None else plans).get(key) if key is not None else None
    if plan is None:
        return None
    out = torch.empty_like(q)
    lse = torch.empty((q.shape[0], q.shape[2], q.shape[1]), device=q.device, dtype=torch.float32)
    roles = plan_roles(q, k, v, out, lse)
    if plan.uses("sched"):  # the dynamic schedule's counter, fresh and zeroed for every launch
        roles["sched"] = torch.zeros(1, dtype=torch.int32, device=q.device)
    plan.launch(roles)
    return out, lse


@functools.lru_cache(maxsize=None)
def num_sms(index: int) -> int:
    """Streaming multiprocessors of CUDA device ``index`` (asked once per device)."""
    return torch.cuda.get_device_properties(index).multi_processor_count


def register_heavy(f: Optional[Features]) -> bool:
    """ALiBi or dropout: the features whose persistent consumers need two warp groups' registers at head_dim 64
    (``consumers_for``) and whose ring was measured at the usual stage count only (``persistent_stages_for``)."""
    return f is not None and (f.alibi_slopes is not None or f.dropout_p > 0)


def consumers_for(head_dim: int, f: Optional[Features] = None, seqlen_k: int = 0) -> int:
    """Consumer warp groups of the persistent form: 2 at head_dim 128 (whose accumulators need the registers of
    two) and with ALiBi or dropout (compiled for sm_90 with three consumers of 160 registers, ALiBi's split form
    spills 150-230 values and dropout's draws 82; with two of 240, none without a causal mask); at head_dim 64
    3 (192-row tiles), but 2 for short rows without a window (``configs.GLUON_D64_THREE_CONSUMERS_MIN_SEQLEN`` and its
    causal twin: with 128-row tiles the output leaves through the K tile, and there are more tiles to spread over
    the SMs; benchmarks/NOTES.md entry 83). Without ``f`` or ``seqlen_k``: the long-row choice."""
    if head_dim > 64 or register_heavy(f):
        return 2
    if f is not None and seqlen_k and not banded(f):  # ALiBi returned above, so: no window
        least = (configs.GLUON_D64_CAUSAL_THREE_CONSUMERS_MIN_SEQLEN if f.causal
                 else configs.GLUON_D64_THREE_CONSUMERS_MIN_SEQLEN)
        if seqlen_k < least:
            return 2
    return 3


def dropout_bits(dropout_p: float, head_dim: int) -> int:
    """The kernels' ``DROPOUT`` constexpr: 0 without dropout, else 1 plus 2 for the early draws
    (``configs.GLUON_FWD_DROPOUT_EARLY``), 4 for the pair form (``configs.gluon_dropout_pairs``) and 8 for the
    wide multiplies (``configs.GLUON_FWD_PHILOX_WIDE``)."""
    if dropout_p <= 0:
        return 0
    return (1 | (2 if configs.GLUON_FWD_DROPOUT_EARLY else 0) | (4 if configs.gluon_dropout_pairs(head_dim) else 0)
            | (8 if configs.GLUON_FWD_PHILOX_WIDE else 0))


def out_smem(nc: int, block_n: int, f: Features) -> bool:
    """Whether the persistent form's output passes through the tile's last K/V stage: its ``nc * 64`` rows in the K
    tile (``configs.GLUON_PERSISTENT_OUT_SMEM``), or past it in the V tile too (``configs.GLUON_PERSISTENT_OUT_SMEM_V``,
    three consumers). Not with ALiBi, nor with dropout under a causal mask or a window: compiled for sm_90 the
    consumers spill more there than with the register store (head_dim 128 ALiBi 53 values against 48, head_dim 64
    causal dropout 11 against at most 4), and head_dim 64 ALiBi measured level (NOTES entry 72)."""
    masked = f.causal or tuple(f.window_size) != (-1, -1)
    if f.alibi_slopes is not None or (f.dropout_p > 0 and masked):
        return False
    rows = nc * ROWS.value
    return configs.GLUON_PERSISTENT_OUT_SMEM and (rows <= block_n or (configs.GLUON_PERSISTENT_OUT_SMEM_V
                                                                      and rows <= 2 * block_n))


def persistent_stages_for(head_dim: int, block_n: int, nc: int, featured: bool = False) -> int:
    """K/V stages beside the persistent form's Q tile (its output needs no buffer of its own: ``_compute_tile``);
    head_dim 64 with two consumers and neither ALiBi nor dropout (not ``featured``: ``register_heavy``) up to
    ``configs.GLUON_D64_TWO_CONSUMER_STAGES``."""
    most = configs.GLUON_D64_TWO_CONSUMER_STAGES if head_dim == 64 and nc == 2 and not featured else 4
    return ring_stages(nc * ROWS.value * head_dim * 2, 2 * block_n * head_dim * 2, most)


def attention_forward_sm90(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f: Features, out: torch.Tensor,
                           lse: torch.Tensor, block_n: int = 0, stages: int = 0, overlap: bool | None = None,
                           pingpong: bool | None = None, plan_key: Optional[tuple] = None,
                           persistent: bool | None = None, consumers: int = 0,
                           tile_per_program: bool = False, dynamic: bool | None = None) -> None:
    """Launch the Gluon forward into ``out``/``lse`` (already allocated; ``supported`` was checked). With
    ``plan_key`` (from ``plan_key``, for outputs allocated as ``planned_forward`` does), the launch is recorded
    for ``planned_forward``. ``persistent`` (default: ``configs.forward_gluon_persistent``) picks the persistent
    form, with ``consumers`` warp groups (default ``consumers_for``); ``tile_per_program`` launches that kernel
    with one program per query tile (the hardware then schedules the tiles, in order: three consumers at head_dim
    64 under a causal mask without the persistent form's drift across heads; an A/B option, not a default);
    ``dynamic`` (default ``configs.forward_gluon_dynamic``) hands the persistent form's tiles out through an atomic
    counter, in the list's order, instead of by rounds. A window or ALiBi takes the persistent form where
    ``configs.forward_gluon_persistent`` says so for banded calls."""
    batch, seqlen_q, nheads, head_dim = q.shape
    seqlen_k, nheads_k = k.shape[1], k.shape[2]
    block_n = block_n or configs.GLUON_BLOCK_N
    if persistent is None:
        persistent = tile_per_program or configs.forward_gluon_persistent(head_dim, f.causal, seqlen_k, banded(f),
                                                                          f.alibi_slopes is not None,
                                                                          f.dropout_p > 0)
    elif tile_per_program and not persistent:
        raise ValueError("tile_per_program launches the persistent kernel: pass persistent=True or None")
    roles = None if plan_key is None else plan_roles(q, k, v, out, lse)
    diag = f.diagonal(seqlen_q, seqlen_k)
    window = tuple(f.window_size) != (-1, -1)
    left, right = window_sides(f, seqlen_q, seqlen_k, diag)
    slopes, slope_strides = alibi_args(f, lse)
    # A window folds the causal mask into its right side.
    bands = dict(CAUSAL=f.causal and not window, WINDOW=window, ALIBI=f.alibi_slopes is not None,
                 ALIBI_SPLIT=f.alibi_slopes is not None and configs.gluon_alibi_split(head_dim, f.causal),
                 DROPOUT=dropout_bits(f.dropout_p, head_dim))
    # Seed, Philox offset, counters per row, 8-bit threshold and output scale (ops/scores.py; unused without it).
    drop = ((int(f.seed), int(f.offset), dropout_row_stride(seqlen_k), dropout_threshold(f.dropout_p),
             1.0 / (1.0 - f.dropout_p)) if f.dropout_p > 0 else (0, 0, 0, 0, 1.0))
    if persistent:
        nc = consumers or consumers_for(head_dim, f, seqlen_k)
        stages = stages or persistent_stages_for(head_dim, block_n, nc, register_heavy(f))
        tiles = cdiv(seqlen_q, nc * ROWS.value) * nheads * batch
        grid = (tiles if tile_per_program else min(tiles, num_sms(q.device.index or 0)),)
        q_desc, k_desc, v_desc, o_desc = bhsd_descriptors((q, k, v, out), (ROWS.value, block_n, block_n, ROWS.value))
        dynamic = configs.forward_gluon_dynamic(head_dim, f.causal, seqlen_k) if dynamic is None else dynamic
        # The dynamic schedule's counter, zeroed per launch (a stream-ordered memset: launches on other streams or
        # replays of a CUDA graph never share one); without it the kernel reads nothing there (lse stands in).
        sched = torch.zeros(1, dtype=torch.int32, device=q.device) if dynamic else lse
        if roles is not None and dynamic:
            roles["sched"] = sched
        args = (q_desc, k_desc, v_desc, out, o_desc, out.stride(0), out.stride(2), out.stride(1), lse,
                *lse.stride()[:2], sched, slopes, *slope_strides, batch, nheads, seqlen_q, seqlen_k, nheads // nheads_k,
                diag, left, right, f.softmax_scale * LOG2E, *drop)
        kwargs = dict(HEAD_DIM=head_dim, BLOCK_N=block_n, STAGES=stages, NC=nc, DYNAMIC=dynamic, num_warps=4,
                      OUT_SMEM=out_smem(nc, block_n, f), **bands)
        _PLANS.put(plan_key, launch(_attn_fwd_sm90_persistent, grid, args, kwargs, roles))
        return
    stages = stages or stages_for(head_dim, block_n)
    grid = (cdiv(seqlen_q, BLOCK_M.value), nheads, batch)
    args = (*descriptors(q, k, v, out, block_n), lse, *lse.stride()[:2], slopes, *slope_strides, seqlen_q,
            seqlen_k, nheads // nheads_k, diag, left, right, f.softmax_scale * LOG2E, *drop)
    kwargs = dict(HEAD_DIM=head_dim, BLOCK_N=block_n, STAGES=stages,
                  OVERLAP=configs.GLUON_OVERLAP if overlap is None else overlap,
                  PINGPONG=configs.GLUON_PINGPONG if pingpong is None else pingpong, num_warps=4, **bands)
    _PLANS.put(plan_key, launch(_attn_fwd_sm90, grid, args, kwargs, roles))
