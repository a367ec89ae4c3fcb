"""Inference with a KV cache: ``flash_attn_with_kvcache``, following Dao-AILab's FlashAttention 2.

One call appends the new keys/values (if given) to the cache in place, applies rotary embeddings to q and the new
k (if cos/sin are given), and attends q to every valid cached key with the split-KV kernel of ops/decode.py
(contiguous or paged cache, GQA packed into one tile per kv head). CPU tensors take a PyTorch path with the same
semantics. Inference only: no autograd.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from . import cpu as _cpu
from . import library as _library
from .features import Features
from .ops.append import append_kv
from .ops.decode import decode_forward
from .rotary import apply_rotary
from .validation import (
    CPU_DTYPES,
    GPU_DTYPES,
    MAX_HEAD_DIM,
    check_alibi,
    check_options,
    check_softcap,
    check_tensor,
    data_checks_allowed,
)

__all__ = ["flash_attn_with_kvcache"]


def _check_index(name: str, t: Optional[torch.Tensor], shape: Tuple[int, ...], layout: str,
                 device: torch.device) -> None:
    if t is None:
        return
    check_tensor(name, t, len(shape), layout)
    if t.dtype != torch.int32:
        raise TypeError(f"{name} must be int32, got {t.dtype}")
    if t.device != device:
        raise ValueError(f"{name} must be on the same device as q ({device}), got {t.device}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {layout} = {shape}, got {tuple(t.shape)}")


def _validate(q, k_cache, v_cache, k, v, rotary_cos, rotary_sin, cache_seqlens, cache_batch_idx, cache_leftpad,
              block_table, num_splits) -> torch.Tensor:
    """Shapes, dtypes and devices; returns cache_seqlens as an int32 ``(batch,)`` tensor."""
    check_tensor("q", q, 4, "(batch, seqlen_q, nheads, headdim)")
    allowed = GPU_DTYPES if q.device.type == "cuda" else CPU_DTYPES
    if q.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(f"q must have dtype in ({names}) on {q.device.type}, got {q.dtype}")
    paged = block_table is not None
    layout = ("(num_blocks, page_block_size, nheads_k, headdim)" if paged
              else "(batch_cache, seqlen_cache, nheads_k, headdim)")
    for name, t in (("k_cache", k_cache), ("v_cache", v_cache)):
        check_tensor(name, t, 4, layout)
        if t.dtype != q.dtype:
            raise TypeError(f"{name} must have the same dtype as q ({q.dtype}), got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name} must be on the same device as q ({q.device}), got {t.device}")
    if v_cache.shape != k_cache.shape:
        raise ValueError(f"v_cache must have the shape of k_cache {tuple(k_cache.shape)}, got {tuple(v_cache.shape)}")
    batch, _, nheads, head_dim = q.shape
    nheads_k = k_cache.shape[2]
    if k_cache.shape[3] != head_dim:
        raise ValueError(f"k_cache and v_cache must have headdim {head_dim} like q, got {k_cache.shape[3]}")
    if head_dim % 8 != 0 or not 8 <= head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"headdim must be a multiple of 8 between 8 and {MAX_HEAD_DIM}, got {head_dim}")
    if nheads_k == 0 or nheads % nheads_k != 0:
        raise ValueError(f"nheads of q ({nheads}) must be a multiple of nheads_k of the cache ({nheads_k})")
    if (k is None) != (v is None):
        raise ValueError("k and v must be given together (the new tokens to append) or both be None")
    if k is not None:
        for name, t in (("k", k), ("v", v)):
            check_tensor(name, t, 4, "(batch, seqlen_new, nheads_k, headdim)")
            if t.dtype != q.dtype or t.device != q.device:
                raise TypeError(f"{name} must have q's dtype and device ({q.dtype}, {q.device}), got "
                                f"{t.dtype}, {t.device}")
            if t.shape[0] != batch or t.shape[2:] != k_cache.shape[2:] or t.shape != k.shape:
                raise ValueError(f"{name} must have shape (batch, seqlen_new, nheads_k, headdim) = "
                                 f"({batch}, *, {nheads_k}, {head_dim}) like k, got {tuple(t.shape)}")
    for name, t in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache), ("k", k), ("v", v)):
        if t is not None and t.numel() > 0 and t.stride(-1) != 1:
            raise ValueError(f"{name} must have a contiguous last dimension (stride 1), got strides {t.stride()}")
    if (rotary_cos is None) != (rotary_sin is None):
        raise ValueError("rotary_cos and rotary_sin must be given together")
    if rotary_cos is not None:
        for name, t in (("rotary_cos", rotary_cos), ("rotary_sin", rotary_sin)):
            check_tensor(name, t, 2, "(seqlen_ro, rotary_dim / 2)")
            if t.device != q.device:
                raise ValueError(f"{name} must be on the same device as q ({q.device}), got {t.device}")
        if rotary_sin.shape != rotary_cos.shape or 2 * rotary_cos.shape[1] > head_dim:
            raise ValueError(f"rotary_cos and rotary_sin must share a shape (seqlen_ro, rotary_dim / 2) with "
                             f"rotary_dim <= headdim ({head_dim}), got {tuple(rotary_cos.shape)} and "
                             f"{tuple(rotary_sin.shape)}")
    if isinstance(cache_seqlens, bool) or not isinstance(cache_seqlens, (int, torch.Tensor)):
        raise TypeError(f"cache_seqlens must be an int or an int32 tensor (batch,), got {type(cache_seqlens).__name__}")
    if isinstance(cache_seqlens, int):
        if cache_seqlens < 0:
            raise ValueError(f"cache_seqlens must be >= 0, got {cache_seqlens}")
        cache_seqlens = torch.full((batch,), cache_seqlens, dtype=torch.int32, device=q.device)
    _check_index("cache_seqlens", cache_seqlens, (batch,), "(batch,)", q.device)
    if paged:
        check_tensor("block_table", block_table, 2, "(batch, max_num_blocks_per_seq)")
        _check_index("block_table", block_table, (batch, block_table.shape[1]), "(batch, max_num_blocks_per_seq)",
                     q.device)
        if cache_batch_idx is not None or cache_leftpad is not None:
            raise ValueError("cache_batch_idx and cache_leftpad are not supported with a paged cache (block_table)")
    _check_index("cache_batch_idx", cache_batch_idx, (batch,), "(batch,)", q.device)
    _check_index("cache_leftpad", cache_leftpad, (batch,), "(batch,)", q.device)
    if isinstance(num_splits, bool) or not isinstance(num_splits, int) or num_splits < 0:
        raise ValueError(f"num_splits must be an int >= 0 (0 = heuristic), got {num_splits!r}")
    return cache_seqlens


def _check_values(k_cache, cache_seqlens, seqlen_new, cache_batch_idx, cache_leftpad, block_table, seqlen_q,
                  rotary_cos, causal_or_local) -> None:
    """Checks that read index values (one host sync): nothing may point outside the cache or the rotary table."""
    capacity = k_cache.shape[1] * (block_table.shape[1] if block_table is not None else 1)
    ends = cache_seqlens.long() + seqlen_new
    if (cache_seqlens < 0).any():
        raise ValueError(f"cache_seqlens must be >= 0, got {cache_seqlens.tolist()}")
    if (ends > capacity).any():
        raise ValueError(f"cache_seqlens + seqlen_new must fit the cache ({capacity} slots per sequence), got "
                         f"{ends.tolist()}")
    if cache_batch_idx is not None and ((cache_batch_idx < 0) | (cache_batch_idx >= k_cache.shape[0])).any():
        raise ValueError(f"cache_batch_idx must index the cache's batch (0..{k_cache.shape[0] - 1}), got "
                         f"{cache_batch_idx.tolist()}")
    start = torch.zeros_like(ends)
    if cache_leftpad is not None:
        if ((cache_leftpad < 0) | (cache_leftpad.long() > cache_seqlens.long())).any():
            raise ValueError(f"cache_leftpad must lie in [0, cache_seqlens], got {cache_leftpad.tolist()}")
        start = cache_leftpad.long()
    if block_table is not None:
        page = k_cache.shape[1]
        used = torch.arange(block_table.shape[1], device=block_table.device)[None] < (ends[:, None] + page - 1) // page
        bad = used & ((block_table < 0) | (block_table >= k_cache.shape[0]))
        if bad.any():
            b, i = (int(x) for x in bad.nonzero()[0])
            raise ValueError(f"block_table[{b}, {i}] = {int(block_table[b, i])} is outside the cache's "
                             f"{k_cache.shape[0]} blocks")
    if rotary_cos is not None:
        # New keys take positions filled .. filled + seqlen_new - 1; q takes filled + i (causal/local) or filled.
        filled = cache_seqlens.long() - start
        span = max(seqlen_new, seqlen_q if causal_or_local else 1)
        last = int((filled + span - 1).max().item())
        if last >= rotary_cos.shape[0]:
            raise ValueError(f"rotary_cos/rotary_sin have {rotary_cos.shape[0]} positions, position {last} is needed")


def _append(cache: torch.Tensor, new: torch.Tensor, cache_seqlens: torch.Tensor, cache_batch_idx, block_table
            ) -> None:
    """Write ``new`` ``(batch, seqlen_new, nheads_k, headdim)`` at positions ``cache_seqlens + i``, in place."""
    batch, n = new.shape[:2]
    pos = cache_seqlens.long()[:, None] + torch.arange(n, device=new.device)[None]  # (batch, n)
    if block_table is not None:
        page = cache.shape[1]
        rows = block_table.long().gather(1, pos // page)
        cache.index_put_((rows.flatten(), (pos % page).flatten()), new.flatten(0, 1))
    else:
        rows = (cache_batch_idx.long() if cache_batch_idx is not None
                else torch.arange(batch, device=new.device))[:, None].expand(batch, n)
        cache.index_put_((rows.flatten(), pos.flatten()), new.flatten(0, 1))


def _gather(cache: torch.Tensor, b: int, start: int, end: int, cache_batch_idx, block_table) -> torch.Tensor:
    """Keys ``[start, end)`` of sequence ``b`` as a dense ``(1, end - start, nheads_k, headdim)`` tensor."""
    if block_table is not None:
        page = cache.shape[1]
        idx = torch.arange(start, end, device=cache.device)
        return cache[block_table[b].long()[idx // page], idx % page][None]
    row = int(cache_batch_idx[b]) if cache_batch_idx is not None else b
    return cache[row, start:end][None]


def _cpu_attention(q, k_cache, v_cache, seqlens_k, f: Features, cache_leftpad, cache_batch_idx, block_table):
    """The same attention in PyTorch, one sequence at a time (CPU tensors)."""
    out = torch.empty_like(q)
    lse = torch.empty(q.shape[0], q.shape[2], q.shape[1], dtype=torch.float32)
    for b in range(q.shape[0]):
        start = int(cache_leftpad[b]) if cache_leftpad is not None else 0
        end = int(seqlens_k[b])
        kb = _gather(k_cache, b, start, end, cache_batch_idx, block_table)
        vb = _gather(v_cache, b, start, end, cache_batch_idx, block_table)
        slopes = f.alibi_slopes
        fb = f if slopes is None or slopes.dim() == 1 else Features(
            f.softmax_scale, f.causal, f.window_size, f.softcap, slopes[b])
        o, l = _cpu.attention_forward_cpu(q[b:b + 1], kb, vb, fb)
        out[b], lse[b] = o[0], l[0].float()
    return out, lse


def _kvcache_impl(
    q: Tensor, k_cache: Tensor, v_cache: Tensor, k: Optional[Tensor], v: Optional[Tensor],
    rotary_cos: Optional[Tensor], rotary_sin: Optional[Tensor], cache_seqlens: Tensor,
    cache_batch_idx: Optional[Tensor], cache_leftpad: Optional[Tensor], block_table: Optional[Tensor],
    alibi_slopes: Optional[Tensor], softmax_scale: float, causal: bool, window_left: int, window_right: int,
    softcap: float, rotary_interleaved: bool, num_splits: int,
) -> Tuple[Tensor, Tensor]:
    """Rotary, append and attention on validated inputs; returns ``(out, lse)``."""
    window = (window_left, window_right)
    causal_or_local = causal or window != (-1, -1)
    seqlen_new = k.shape[1] if k is not None else 0
    with torch.no_grad():
        if rotary_cos is not None:
            filled = cache_seqlens - (cache_leftpad if cache_leftpad is not None else 0)  # tokens before the new
            steps = torch.arange(q.shape[1], device=q.device)[None]
            q_pos = filled.long()[:, None] + (steps if causal_or_local else 0 * steps)
            q = apply_rotary(q, rotary_cos, rotary_sin, q_pos, rotary_interleaved)
            if k is not None:
                k_pos = filled.long()[:, None] + torch.arange(seqlen_new, device=q.device)[None]
                k = apply_rotary(k, rotary_cos, rotary_sin, k_pos, rotary_interleaved)
        f = Features(softmax_scale, causal, window, softcap, alibi_slopes)
        kernels = _library.use_kernels(q)
        if k is not None and kernels:
            append_kv(k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, block_table)
        elif k is not None:
            _append(k_cache, k, cache_seqlens, cache_batch_idx, block_table)
            _append(v_cache, v, cache_seqlens, cache_batch_idx, block_table)
        if kernels:
            # Every device op counts in a decode step (a few microseconds each): the kernel adds seqlen_new itself.
            capacity = k_cache.shape[1] * (block_table.shape[1] if block_table is not None else 1)
            return decode_forward(q, k_cache, v_cache, cache_seqlens, f, capacity, cache_leftpad, cache_batch_idx,
                                  block_table, num_splits, seqlen_new)
        return _cpu_attention(q, k_cache, v_cache, cache_seqlens + seqlen_new, f, cache_leftpad, cache_batch_idx,
                              block_table)


kvcache_op = torch.library.custom_op("flash_attention::kvcache", mutates_args=("k_cache", "v_cache"))(
    _kvcache_impl)


@kvcache_op.register_fake
def _(q, *args) -> Tuple[Tensor, Tensor]:
    return torch.empty_like(q), q.new_empty((q.shape[0], q.shape[2], q.shape[1]), dtype=torch.float32)


def flash_attn_with_kvcache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: Optional[torch.Tensor] = None,
    v: Optional[torch.Tensor] = None,
    rotary_cos: Optional[torch.Tensor] = None,
    rotary_sin: Optional[torch.Tensor] = None,
    cache_seqlens: Optional[Union[int, torch.Tensor]] = None,
    cache_batch_idx: Optional[torch.Tensor] = None,
    cache_leftpad: Optional[torch.Tensor] = None,
    block_table: Optional[torch.Tensor] = None,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    rotary_interleaved: bool = True,
    alibi_slopes: Optional[torch.Tensor] = None,
    num_splits: int = 0,
    return_softmax_lse: bool = False,
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Attend ``q`` to a KV cache, appending new keys/values first; for incremental decoding.

    Args:
        q: ``(batch, seqlen_q, nheads, headdim)``: the new query tokens (usually seqlen_q = 1).
        k_cache, v_cache: ``(batch_cache, seqlen_cache, nheads_k, headdim)``, or with ``block_table`` a paged
            cache ``(num_blocks, page_block_size, nheads_k, headdim)`` (any page size). Updated in place when k/v
            are given.
        k, v: optional new tokens ``(batch, seqlen_new, nheads_k, headdim)``, written at positions
            ``cache_seqlens .. cache_seqlens + seqlen_new - 1`` before attending (rotary applied to k first).
        rotary_cos, rotary_sin: optional ``(seqlen_ro, rotary_dim / 2)``; rotate the first ``rotary_dim``
            channels of q and of the new k (interleaved pairs or, with ``rotary_interleaved=False``, halves). New
            k token ``i`` sits at position ``cache_seqlens - cache_leftpad + i``; q tokens likewise when causal or
            windowed, otherwise all at ``cache_seqlens - cache_leftpad``.
        cache_seqlens: int or int32 ``(batch,)``: the number of cache slots already filled (an index into the
            cache, leftpad included); None means 0.
        cache_batch_idx: int32 ``(batch,)``: which cache row each batch entry uses (default ``arange(batch)``).
        cache_leftpad: int32 ``(batch,)``: valid keys start there (left-padded prompts); positions count from it.
        block_table: int32 ``(batch, max_num_blocks_per_seq)``: the cache pages of each sequence.
        softmax_scale, causal, window_size, softcap, alibi_slopes: as in ``flash_attn_func``; causal/window are
            aligned bottom-right: query token ``i`` sits at key position ``seqlen_k - seqlen_q + i``.
        num_splits: how many programs share one row tile's keys (split-KV); 0 picks by heuristic, 1 disables.
        return_softmax_lse: also return lse, float32 ``(batch, nheads, seqlen_q)``.

    Indices are checked on the host (one sync) unless a CUDA graph is being captured or torch.compile traces:
    out-of-range ``block_table`` entries or positions past the cache's end raise ``ValueError``. The kernel's
    loads stay within each sequence's valid keys in any case.
    """
    if cache_seqlens is None:
        cache_seqlens = 0
    cache_seqlens = _validate(q, k_cache, v_cache, k, v, rotary_cos, rotary_sin, cache_seqlens, cache_batch_idx,
                              cache_leftpad, block_table, num_splits)
    scale, window = check_options(softmax_scale, window_size, 0.0, q.shape[-1])
    check_softcap(softcap)
    check_alibi(alibi_slopes, q.shape[0], q.shape[2], q.device)
    seqlen_new = k.shape[1] if k is not None else 0
    causal_or_local = bool(causal) or tuple(window) != (-1, -1)
    if data_checks_allowed():
        _check_values(k_cache, cache_seqlens, seqlen_new, cache_batch_idx, cache_leftpad, block_table, q.shape[1],
                      rotary_cos, causal_or_local)
    left, right = window
    args = (q, k_cache, v_cache, k, v, rotary_cos, rotary_sin, cache_seqlens, cache_batch_idx, cache_leftpad,
            block_table, alibi_slopes, scale, bool(causal), int(left), int(right), float(softcap),
            bool(rotary_interleaved), int(num_splits))
    # Eager calls skip the custom-op dispatcher (host time matters in decoding); compiled graphs need the op.
    out, lse = kvcache_op(*args) if torch.compiler.is_compiling() else _kvcache_impl(*args)
    return (out, lse) if return_softmax_lse else out
