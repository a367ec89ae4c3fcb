"""Masking logic shared by the forward and backward kernels, written once as ``@triton.jit`` helpers.

Geometry (FlashAttention 2 convention): query row ``i`` sits at key position ``i + diag`` with
``diag = seqlen_k - seqlen_q`` (bottom-right alignment) and sees keys ``j`` with
``i + diag - win_left <= j <= i + diag + win_right``. Causal is ``win_right = 0``; an unbounded side is
passed as a number at least ``seqlen_q + seqlen_k`` so no special case is needed in the kernels.

``WIN_BLOCK`` (a power of two, 1 for token windows) makes the band block-granular, the seed layer's local
block-sparse attention: with ``g = WIN_BLOCK`` and ``pos = i + diag``, row ``i`` sees the keys of blocks
``pos // g - win_left .. pos // g + win_right`` (window sizes then count blocks). ``g = 1`` is the token window.
A negative ``WIN_BLOCK`` means blocks of ``-WIN_BLOCK`` with token-level causality on top (key ``j <= pos``):
the seed's causal mask intersected with its block-sparse band.

The kernels split every row (or column) of tiles into three runs: masked tiles at the start, tiles that
every query/key pair of the tile may see (no mask work at all), and masked tiles at the end. The range
helpers below return those run boundaries; a tile outside ``[lo, hi)`` is never visited, so the cost of
causal or windowed attention grows with the visible area, not with seqlen^2.
"""

from typing import Tuple

import triton
import triton.language as tl


@triton.jit
def band_lower(pos, win_left, WIN_BLOCK: tl.constexpr):
    """First key a query at key position ``pos`` may see."""
    if WIN_BLOCK == 1:
        return pos - win_left
    elif WIN_BLOCK > 0:
        return (pos // WIN_BLOCK - win_left) * WIN_BLOCK
    else:
        return (pos // -WIN_BLOCK - win_left) * -WIN_BLOCK


@triton.jit
def block_upper(pos, win_right, WIN_BLOCK: tl.constexpr):
    """One past the last key of the band (blocks only, without the token-level causal cap)."""
    if WIN_BLOCK == 1:
        return pos + win_right + 1
    elif WIN_BLOCK > 0:
        return (pos // WIN_BLOCK + win_right + 1) * WIN_BLOCK
    else:
        return (pos // -WIN_BLOCK + win_right + 1) * -WIN_BLOCK


@triton.jit
def band_upper(pos, win_right, WIN_BLOCK: tl.constexpr):
    """One past the last key a query at key position ``pos`` may see."""
    if WIN_BLOCK < 0:
        return tl.minimum(block_upper(pos, win_right, WIN_BLOCK), pos + 1)
    else:
        return block_upper(pos, win_right, WIN_BLOCK)


@triton.jit
def first_row(key, win_right, WIN_BLOCK: tl.constexpr):
    """First key position (query position + diag) that sees ``key``: the inverse of ``band_upper``."""
    if WIN_BLOCK < 0:
        return tl.maximum(band_lower(key, win_right, WIN_BLOCK), key)
    else:
        return band_lower(key, win_right, WIN_BLOCK)


@triton.jit
def visible(rows, cols, seqlen_k, diag, win_left, win_right, CHECK_K: tl.constexpr, LOCAL: tl.constexpr,
            WIN_BLOCK: tl.constexpr = 1):
    """Boolean mask for query indices ``rows`` against key indices ``cols`` (broadcastable 2-D tensors).

    ``CHECK_K`` adds the key bound (ragged last tile); ``LOCAL`` the causal/window band.
    """
    ok = cols >= 0  # all-true of the right shape: a cheap seed that folds away
    if CHECK_K:
        ok = ok & (cols < seqlen_k)
    if LOCAL:
        pos = rows + diag
        ok = ok & (cols < band_upper(pos, win_right, WIN_BLOCK)) & (cols >= band_lower(pos, win_left, WIN_BLOCK))
    return ok


@triton.jit
def sequence_bounds(CuSeqQ, CuSeqK, off_b, seqlen_q, seqlen_k, diag, VARLEN: tl.constexpr):
    """``(q_start, k_start, seqlen_q, seqlen_k, diag)`` of batch entry ``off_b``.

    Variable-length batches pack every sequence along one token axis; ``cu_seqlens`` gives where each starts.
    Their diagonal is bottom-right per sequence. Fixed-length batches start at 0 and keep the launcher's values.
    """
    if VARLEN:
        q_start = tl.load(CuSeqQ + off_b)
        k_start = tl.load(CuSeqK + off_b)
        seqlen_q = tl.load(CuSeqQ + off_b + 1) - q_start
        seqlen_k = tl.load(CuSeqK + off_b + 1) - k_start
        diag = seqlen_k - seqlen_q
    else:
        q_start = off_b * 0  # a tensor, so callers can widen it to int64
        k_start = off_b * 0
    return q_start, k_start, seqlen_q, seqlen_k, diag


@triton.jit
def _floor_to(x, BLOCK: tl.constexpr):
    # Callers clamp x >= 0 first, where integer division truncates the way floor does.
    return (x // BLOCK) * BLOCK


@triton.jit
def key_range(m_start, seqlen_k, diag, win_left, win_right,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, LOCAL: tl.constexpr, WIN_BLOCK: tl.constexpr = 1):
    """Key tiles for the query tile ``[m_start, m_start + BLOCK_M)``.

    Returns ``(lo, full_lo, full_hi, hi)``: tiles in ``[full_lo, full_hi)`` need no mask, those in
    ``[lo, full_lo)`` and ``[full_hi, hi)`` do. All but ``hi`` are multiples of ``BLOCK_N``.
    """
    even_hi = _floor_to(seqlen_k, BLOCK_N)  # tiles past this one hang over the end of the keys
    if LOCAL:
        m_last = m_start + BLOCK_M - 1
        lo = _floor_to(tl.maximum(band_lower(m_start + diag, win_left, WIN_BLOCK), 0), BLOCK_N)
        hi = tl.minimum(tl.maximum(band_upper(m_last + diag, win_right, WIN_BLOCK), 0), seqlen_k)
        # A key tile is fully visible when the last row passes its left edge and the first row its right.
        full_lo = _floor_to(tl.maximum(band_lower(m_last + diag, win_left, WIN_BLOCK) + BLOCK_N - 1, 0), BLOCK_N)
        full_hi = _floor_to(tl.maximum(band_upper(m_start + diag, win_right, WIN_BLOCK), 0), BLOCK_N)
        full_lo = tl.minimum(tl.maximum(full_lo, lo), even_hi)
        full_hi = tl.maximum(tl.minimum(full_hi, even_hi), full_lo)
        hi = tl.maximum(hi, full_hi)
    else:
        lo = 0
        full_lo = 0
        full_hi = even_hi
        hi = seqlen_k
    return lo, full_lo, full_hi, hi


@triton.jit
def query_range(n_start, seqlen_q, diag, win_left, win_right,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, LOCAL: tl.constexpr, WIN_BLOCK: tl.constexpr = 1):
    """Query tiles that see the key tile ``[n_start, n_start + BLOCK_N)``, split as in ``key_range``.

    Rows past ``seqlen_q`` need no mask in the backward (their lse is +inf, so p = 0), hence only the band
    decides which tiles are masked here.
    """
    if LOCAL:
        n_last = n_start + BLOCK_N - 1
        # Row i sees key j iff j // g - win_right <= (i + diag) // g <= j // g + win_left (g = WIN_BLOCK).
        lo = _floor_to(tl.maximum(first_row(n_start, win_right, WIN_BLOCK) - diag, 0), BLOCK_M)
        hi = tl.minimum(tl.maximum(block_upper(n_last, win_left, WIN_BLOCK) - diag, 0), seqlen_q)
        full_lo = _floor_to(tl.maximum(first_row(n_last, win_right, WIN_BLOCK) - diag + BLOCK_M - 1, 0), BLOCK_M)
        full_hi = _floor_to(tl.maximum(block_upper(n_start, win_left, WIN_BLOCK) - diag, 0), BLOCK_M)
        full_lo = tl.minimum(tl.maximum(full_lo, lo), tl.maximum(hi, lo))
        full_hi = tl.maximum(tl.minimum(full_hi, hi), full_lo)
        hi = tl.maximum(hi, full_hi)
    else:
        lo = 0
        full_lo = 0
        full_hi = seqlen_q
        hi = seqlen_q
    return lo, full_lo, full_hi, hi


def window_bounds(seqlen_q: int, seqlen_k: int, causal: bool, window_size: Tuple[int, int],
                  window_block: int = 1, diag: int = 0) -> Tuple[bool, int, int, int]:
    """``(local, left, right, WIN_BLOCK)`` for the kernels (see ops/masks.py); unbounded sides become a span no
    index difference reaches. Causal folds into ``right = 0`` for token windows; on block windows it stays
    token-level, signalled by a negative ``WIN_BLOCK``."""
    left, right = int(window_size[0]), int(window_size[1])
    win_block = window_block
    if causal and window_block == 1:
        right = 0
    elif causal:
        win_block = -window_block
    local = left >= 0 or right >= 0 or causal
    unbounded = (seqlen_q + seqlen_k + abs(diag)) // window_block + 2
    return local, (left if left >= 0 else unbounded), (right if right >= 0 else unbounded), win_block
