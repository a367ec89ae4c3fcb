"""Score modifications shared by the forward and backward kernels, written once as ``@triton.jit`` helpers.

Scores are carried in log2 units (``exp2`` is the native op): ``s2 = s * log2(e)`` where the natural-unit score is
``s = softcap * tanh(q.k * scale / softcap)`` (or ``q.k * scale``), plus ALiBi ``-slope * |i + diag - j|`` and an
additive ``attn_bias``. A boolean ``attn_mask`` and dropout act on the probabilities. Every helper takes query
indices ``rows`` and key indices ``cols`` as broadcastable 2-D tensors, so the same code serves the forward and
dQ tiles (queries x keys) and the transposed dK/dV tiles (keys x queries).
"""

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

from ..features import Features

LOG2E = 1.4426950408889634


@triton.jit
def tanh(x):
    # Through exp2 (a native op, also in the interpreter); saturates cleanly to +-1 for large |x|.
    e = tl.math.exp2(x * 2.8853900817779268)
    return 1.0 - 2.0 / (e + 1.0)


@triton.jit
def score_log2(qk, rows, cols, seqlen_q, seqlen_k, diag, qk_scale, softcap_scale, softcap_out, slope2,
               bias_base, stride_bm, stride_bn,
               SOFTCAP: tl.constexpr, ALIBI: tl.constexpr, BIAS: tl.constexpr):
    """Raw ``q.k`` products -> scores in log2 units; also returns the softcap's tanh (for its derivative)."""
    if SOFTCAP:
        t = tanh(qk * softcap_scale)
        s = t * softcap_out
    else:
        t = qk
        s = qk * qk_scale
    if ALIBI:
        # The distance in float32 from the (broadcast) row and column vectors: one conversion per row and per
        # column instead of one per score (conversions issue at a fraction of the float pipe's rate).
        s = s - slope2 * tl.abs((rows + diag).to(tl.float32) - cols.to(tl.float32))
    if BIAS:
        inside = (rows < seqlen_q) & (cols < seqlen_k)
        b = tl.load(bias_base + rows.to(tl.int64) * stride_bm + cols.to(tl.int64) * stride_bn, mask=inside,
                    other=0.0)
        s = s + b.to(tl.float32) * 1.4426950408889634
    return s, t


@triton.jit
def user_mask(rows, cols, seqlen_q, seqlen_k, mask_base, stride_mm, stride_mn):
    """The boolean ``attn_mask`` tile (True = may attend); False outside the tensor."""
    inside = (rows < seqlen_q) & (cols < seqlen_k)
    m = tl.load(mask_base + rows.to(tl.int64) * stride_mm + cols.to(tl.int64) * stride_mn, mask=inside, other=0)
    return m != 0


# Dropout draws: 8 bits per key (a key is dropped when its draw is below ``round(p * 256)``, so p rounds to a
# multiple of 1/256, as FlashAttention 2's 8-bit threshold does), 16 keys per Philox4x32 call of ``DROPOUT_ROUNDS``
# rounds (Salmon et al. 2011 found Philox4x32 passing TestU01 from 7 rounds, and made 10 the default for margin).
# The keys of a call are those one thread of a Hopper MMA accumulator holds: each 64-key span of a row takes 4
# calls, call ``t`` feeding keys ``8 g + 2 t + e`` (g < 8, e < 2) with draw ``2 g + e``, so the Gluon forward
# unpacks them where its scores are, in registers; the tl kernels regenerate the same pattern whatever their tiles.
DROPOUT_ROUNDS = tl.constexpr(7)
DROPOUT_SPAN = tl.constexpr(64)
DROPOUT_CALLS = tl.constexpr(4)  # Philox calls per span


def dropout_threshold(dropout_p: float) -> int:
    """The 8-bit threshold: a key is kept when its draw in ``[0, 256)`` is >= it."""
    return min(int(round(dropout_p * 256)), 255)


def dropout_row_stride(seqlen_k: int) -> int:
    """Philox counters per query row (whole 64-key spans)."""
    return -(-seqlen_k // DROPOUT_SPAN.value) * DROPOUT_CALLS.value


@triton.jit
def dropout_keep(rows, col0, row_stride, seed, philox_base, drop_thresh, BLOCK_N: tl.constexpr):
    """Keep mask of the tile ``rows`` (a ``[BLOCK_M, 1]`` column) x keys ``[col0, col0 + BLOCK_N)``.

    ``col0`` must be a multiple of ``min(BLOCK_N, 64)``. Key ``j`` of row ``i`` uses Philox counter ``philox_base +
    i * row_stride + 4 (j // 64) + (j % 8) // 2`` and draw ``2 ((j % 64) // 8) + j % 2`` of its 16 (see
    ``DROPOUT_ROUNDS``), so the pattern depends on (row, key) only.
    """
    return dropout_draws(rows, col0, row_stride, seed, philox_base, BLOCK_N) >= drop_thresh


@triton.jit
def _span_draws(rows, span0, row_stride, seed, philox_base, NSPAN: tl.constexpr):
    """The draws of keys ``[64 span0, 64 (span0 + NSPAN))``, ``[BLOCK_M, 64 NSPAN]`` in key order."""
    block_m: tl.constexpr = rows.shape[0]
    calls = span0 * 4 + tl.arange(0, NSPAN * 4)  # DROPOUT_CALLS per span
    counters = philox_base + rows.to(tl.int64) * row_stride + calls[None, :]
    r0, r1, r2, r3 = tl.randint4x(seed, counters, DROPOUT_ROUNDS)
    # Draw d of a call: byte d % 2 of half (d // 2) % 2 of word d // 4, low first.
    # join(join(r0, r2), join(r1, r3)) interleaves to r0, r1, r2, r3 (join stacks along a new last axis).
    words = tl.reshape(tl.join(tl.join(r0, r2), tl.join(r1, r3)), [block_m, NSPAN * 4, 4])
    halves = tl.reshape(tl.join(words & 0xFFFF, words >> 16), [block_m, NSPAN * 4, 8])
    draws = tl.reshape(tl.join(halves & 0xFF, halves >> 8), [block_m, NSPAN, 4, 8, 2])  # (span, t, g, e)
    return tl.reshape(tl.permute(draws, (0, 1, 3, 2, 4)), [block_m, NSPAN * 64])  # key 64 span + 8 g + 2 t + e


@triton.jit
def dropout_draws(rows, col0, row_stride, seed, philox_base, BLOCK_N: tl.constexpr):
    """The tile's 8-bit draws as int32 (see ``dropout_keep``); transposed tiles transpose these."""
    block_m: tl.constexpr = rows.shape[0]
    # Spans of 64 keys (DROPOUT_SPAN, written out: the interpreter takes no constexpr on the right of % or //).
    if BLOCK_N >= 64:
        d = _span_draws(rows, col0 // 64, row_stride, seed, philox_base, BLOCK_N // 64)
    else:
        # A tile narrower than a span: the span's draws, then the tile's part of them (small tiles only).
        PARTS: tl.constexpr = 64 // BLOCK_N
        span = tl.reshape(_span_draws(rows, col0 // 64, row_stride, seed, philox_base, 1), [block_m, PARTS, BLOCK_N])
        part = tl.arange(0, PARTS)[None, :, None] == (col0 % 64) // BLOCK_N
        d = tl.sum(tl.where(part, span, 0), axis=1)
    return d.to(tl.int32)


@triton.jit
def _dropout_mask_kernel(Keep, nheads, seqlen_q, seqlen_k, seed, philox_offset, stride_ph, row_stride, drop_thresh,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Materialise the keep mask ``(batch, nheads, seqlen_q, seqlen_k)`` (for ``return_attn_probs`` only).

    Counters of (batch b, head h, row i) start at ``offset + (b * nheads + h) * stride_ph + i * row_stride`` as in
    the attention kernels (packed sequences pass their own head and row strides).
    """
    off_bh = tl.program_id(2).to(tl.int64) * nheads + tl.program_id(1)
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]
    base = philox_offset + off_bh * stride_ph
    for start in range(0, seqlen_k, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)[None, :]
        keep = dropout_keep(rows, start, row_stride, seed, base, drop_thresh, BLOCK_N)
        inside = (rows < seqlen_q) & (cols < seqlen_k)
        tl.store(Keep + off_bh * seqlen_q * seqlen_k + rows.to(tl.int64) * seqlen_k + cols, keep.to(tl.int8),
                 mask=inside)


def dropout_mask(batch: int, nheads: int, seqlen_q: int, seqlen_k: int, seed: int, offset: int, dropout_p: float,
                 device, head_stride: Optional[int] = None, row_stride: Optional[int] = None) -> torch.Tensor:
    """The keep pattern the kernels use for (seed, offset), ``(batch, nheads, seqlen_q, seqlen_k)`` bool.

    ``head_stride``/``row_stride`` count Philox counters and default to a fixed-length batch's
    (``seqlen_q * dropout_row_stride(seqlen_k)`` and ``dropout_row_stride(seqlen_k)``); one packed sequence passes
    ``total_q * dropout_row_stride(max_seqlen_k)`` and ``dropout_row_stride(max_seqlen_k)`` with its start folded
    into ``offset``.
    """
    row_stride = dropout_row_stride(seqlen_k) if row_stride is None else row_stride
    head_stride = seqlen_q * row_stride if head_stride is None else head_stride
    keep = torch.empty(batch, nheads, seqlen_q, seqlen_k, device=device, dtype=torch.int8)
    if keep.numel():
        _dropout_mask_kernel[(triton.cdiv(seqlen_q, 16), nheads, batch)](
            keep, nheads, seqlen_q, seqlen_k, seed, offset, head_stride, row_stride, dropout_threshold(dropout_p),
            BLOCK_M=16, BLOCK_N=64)
    return keep.bool()


def alibi_args(f: Features, stand_in: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """The ALiBi slopes and their (batch, head) strides for the kernels' ``ALIBI`` (tl and Gluon); without slopes
    ``stand_in`` (a tensor of the call, never read) and zero strides."""
    if f.alibi_slopes is None:
        return stand_in, (0, 0)
    slopes = f.alibi_slopes
    return slopes, (tuple(slopes.stride()) if slopes.dim() == 2 else (0, slopes.stride(0)))
