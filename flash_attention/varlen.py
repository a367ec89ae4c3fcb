"""Variable-length attention: sequences of different lengths packed along one token axis (no padding).

``flash_attn_varlen_func`` follows Dao-AILab's FlashAttention 2: q is ``(total_q, nheads, headdim)`` holding
every sequence's tokens one after another, ``cu_seqlens_q`` (int32, ``(batch + 1,)``) says where each starts, and
likewise for k/v. Each sequence attends only to its own keys, with every option of ``flash_attn_func`` applied
per sequence (causal and windows are bottom-right aligned per sequence). The kernels are the fixed-length ones
(ops/forward.py, ops/backward.py) with ``VARLEN`` set: they read each sequence's bounds from ``cu_seqlens``.
``unpad_input``/``pad_input`` (flash_attention/padding.py) convert to and from a padded batch.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple, Union

import torch

from . import cpu as _cpu
from . import library as _library
from .features import Features
from .interface import _attention_probs
from .ops.scores import dropout_mask, dropout_row_stride
from .validation import check_alibi, check_options, check_softcap, check_tensor, check_varlen

__all__ = ["flash_attn_varlen_func", "flash_attn_varlen_kvpacked_func", "flash_attn_varlen_qkvpacked_func"]

Result = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def sequence_dropout_keep(q: torch.Tensor, k: torch.Tensor, f: Features, kernels: bool) -> List[torch.Tensor]:
    """The exact keep pattern of each packed sequence, ``(1, nheads, seqlen_q_b, seqlen_k_b)`` bool (tests only)."""
    nheads, max_k, keeps = q.shape[1], f.max_seqlen_k, []
    for _, rows, keys, fb in _cpu.sequences(f):
        lq, lk = rows.stop - rows.start, keys.stop - keys.start
        if kernels:  # the kernels' counters: offset + (h * total_q + row) * stride + key // 8
            stride = dropout_row_stride(max_k)
            keeps.append(dropout_mask(1, nheads, lq, lk, f.seed, f.offset + rows.start * stride, f.dropout_p,
                                      q.device, head_stride=q.shape[0] * stride, row_stride=stride))
        else:
            keeps.append(_cpu.dropout_keep(fb, 1, nheads, lq, lk).to(q.device))
    return keeps


def _varlen_probs(q: torch.Tensor, k: torch.Tensor, lse: torch.Tensor, f: Features, kernels: bool) -> torch.Tensor:
    """``S_dmask`` padded to ``(batch, nheads, max_seqlen_q, max_seqlen_k)`` (zeros outside each sequence), with
    the entries dropout removed negated. O(seqlen^2): for tests only."""
    batch, nheads = f.cu_seqlens_q.numel() - 1, q.shape[1]
    probs = q.new_zeros(batch, nheads, f.max_seqlen_q, f.max_seqlen_k)
    keeps = sequence_dropout_keep(q, k, f, kernels) if f.dropout_p > 0 else None
    for b, rows, keys, fb in _cpu.sequences(f):
        qb, kb = q[rows][None], k[keys][None]
        p = _attention_probs(qb, kb, lse[:, rows][None], dataclasses.replace(fb, dropout_p=0.0), kernels)
        if keeps is not None:
            p = torch.where(keeps[b], p, -p)
        probs[b, :, :qb.shape[1], :kb.shape[1]] = p[0]
    return probs


def flash_attn_varlen_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    max_seqlen_q: int,
    max_seqlen_k: int,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
) -> Result:
    """Attention over packed sequences of different lengths.

    Args:
        q: ``(total_q, nheads, headdim)``: the query tokens of every sequence, one sequence after another.
        k, v: ``(total_k, nheads_k, headdim)``; ``nheads`` a multiple of ``nheads_k`` (GQA/MQA).
        cu_seqlens_q, cu_seqlens_k: int32 ``(batch + 1,)`` cumulative lengths: sequence ``b`` owns query rows
            ``cu_seqlens_q[b]:cu_seqlens_q[b + 1]`` and key rows ``cu_seqlens_k[b]:cu_seqlens_k[b + 1]``.
        max_seqlen_q, max_seqlen_k: upper bounds of the sequence lengths (they size the kernel grid).
        dropout_p, softmax_scale, causal, window_size, softcap: as in ``flash_attn_func``, per sequence (the
            causal diagonal is bottom-right aligned within each sequence).
        alibi_slopes: float32 ``(nheads,)`` or ``(batch, nheads)``.
        deterministic: True (or ``torch.use_deterministic_algorithms(True)``) makes the backward bit-identical
            run to run: dQ comes from its own kernel instead of float32 reductions (slower on Hopper). False
            (default) lets the backward pick the fastest dQ strategy, which on Hopper adds dQ through TMA
            reductions whose order varies (the last bits of dQ may differ).
        return_attn_probs: also return lse, float32 ``(nheads, total_q)``, and ``S_dmask`` padded to
            ``(batch, nheads, max_seqlen_q, max_seqlen_k)`` (O(seqlen^2): for tests only).

    Returns ``out`` ``(total_q, nheads, headdim)``. Sequences of length 0 are allowed; a query that sees no key
    gives 0 (lse -inf). The checks of ``cu_seqlens`` values (start at 0, non-decreasing, end at the token count,
    within ``max_seqlen``) read them on the host; they are skipped while compiling or capturing a CUDA graph.
    """
    batch = check_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    scale, window = check_options(softmax_scale, window_size, dropout_p, q.shape[-1])
    check_softcap(softcap)
    check_alibi(alibi_slopes, batch, q.shape[1], q.device)
    f = Features(scale, bool(causal), window, float(softcap), alibi_slopes, dropout_p=float(dropout_p),
                 cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, max_seqlen_q=int(max_seqlen_q),
                 max_seqlen_k=int(max_seqlen_k), deterministic=bool(deterministic))
    rng = _library.new_rng_state(f.dropout_p)
    out, lse = _library.attention_op(q, k, v, f, rng)
    if not return_attn_probs:
        return out
    with torch.no_grad():
        seed, offset = rng.tolist()
        probs = _varlen_probs(q, k, lse, dataclasses.replace(f, seed=seed, offset=offset), _library.use_kernels(q))
    return out, lse.to(torch.float32), probs


def flash_attn_varlen_qkvpacked_func(
    qkv: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
) -> Result:
    """``flash_attn_varlen_func`` on a packed ``qkv`` of shape ``(total, 3, nheads, headdim)`` (strided views, no
    copies; the gradient arrives packed the same way)."""
    check_tensor("qkv", qkv, 4, "(total, 3, nheads, headdim)")
    if qkv.shape[1] != 3:
        raise ValueError(f"qkv must have shape (total, 3, nheads, headdim), got {tuple(qkv.shape)}")
    q, k, v = qkv.unbind(dim=1)
    return flash_attn_varlen_func(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, dropout_p, softmax_scale,
                                  causal, window_size, softcap, alibi_slopes, deterministic, return_attn_probs)


def flash_attn_varlen_kvpacked_func(
    q: torch.Tensor,
    kv: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    max_seqlen_q: int,
    max_seqlen_k: int,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
) -> Result:
    """``flash_attn_varlen_func`` with a packed ``kv`` of shape ``(total_k, 2, nheads_k, headdim)``."""
    check_tensor("kv", kv, 4, "(total_k, 2, nheads_k, headdim)")
    if kv.shape[1] != 2:
        raise ValueError(f"kv must have shape (total_k, 2, nheads_k, headdim), got {tuple(kv.shape)}")
    k, v = kv.unbind(dim=1)
    return flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p,
                                  softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
                                  return_attn_probs)
