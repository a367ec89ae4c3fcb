"""Public functional API, following Dao-AILab's FlashAttention 2 so its users can switch by one import.

CUDA tensors run the Triton kernels of ``flash_attention.ops``; CPU tensors run the chunked PyTorch path of
``flash_attention.cpu``; both behind the ``torch.library`` custom ops of ``flash_attention.library``, so
``torch.compile`` traces through. ``use_backend("triton")`` forces the kernels on CPU tensors too, which works under
Triton's interpreter (``TRITON_INTERPRET=1``) and is how the CPU test suite checks the kernels themselves.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator, Optional, Tuple, Union

import torch

from . import cpu as _cpu
from . import library as _library
from .features import Features
from .ops.scores import dropout_mask
from .reference import attention_scores
from .validation import check_features, check_options, check_qkv, check_tensor

__all__ = [
    "attention",
    "flash_attn_func",
    "flash_attn_kvpacked_func",
    "flash_attn_qkvpacked_func",
    "use_backend",
]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Select the implementation inside a ``with`` block: "auto" (kernels on CUDA, PyTorch on CPU),
    "triton" (kernels everywhere; CPU tensors need ``TRITON_INTERPRET=1``) or "torch" (the chunked path)."""
    if name not in _library._BACKENDS:
        raise ValueError(f"backend must be one of {_library._BACKENDS}, got {name!r}")
    previous, _library._Backend.name = _library._Backend.name, name
    try:
        yield
    finally:
        _library._Backend.name = previous


def _dropout_keep(q: torch.Tensor, k: torch.Tensor, f: Features, kernels: bool) -> torch.Tensor:
    """The exact keep pattern a call used, ``(batch, nheads, seqlen_q, seqlen_k)`` bool (tests only)."""
    batch, seqlen_q, nheads, _ = q.shape
    seqlen_k = k.shape[1]
    if not kernels:
        return _cpu.dropout_keep(f, batch, nheads, seqlen_q, seqlen_k).to(q.device)
    return dropout_mask(batch, nheads, seqlen_q, seqlen_k, f.seed, f.offset, f.dropout_p, q.device)


def _attention_probs(q, k, lse, f: Features, kernels: bool) -> torch.Tensor:
    """``S_dmask``: probabilities ``(batch, nheads, seqlen_q, seqlen_k)`` rebuilt from lse, with the entries
    dropout removed negated (FlashAttention's convention). O(seqlen^2) memory: for tests only."""
    scores, _, _ = attention_scores(q, k, f.softmax_scale, f.causal, f.window_size, f.softcap, f.alibi_slopes,
                                    f.attn_bias, f.attn_mask, torch.float32, window_block=f.window_block)
    lse_use = torch.where(torch.isneginf(lse), torch.full_like(lse, float("inf")), lse)
    p = torch.exp(scores - lse_use.unsqueeze(-1))
    if f.dropout_p > 0:
        p = torch.where(_dropout_keep(q, k, f, kernels), p, -p)
    return p.to(q.dtype)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    attn_bias: Optional[torch.Tensor] = None,
    attn_mask: Optional[torch.Tensor] = None,
    return_attn_probs: bool = False,
    window_block: int = 1,
    tiling: str = "auto",
    deterministic: bool = False,
):
    """Every option in one call (``flash_attn_func`` and the seed's layer are thin wrappers over it).

    ``window_block`` (a power of two) makes ``window_size`` count blocks of that many keys instead of keys:
    the seed layer's local block-sparse attention. ``deterministic`` is as in ``flash_attn_func``.
    """
    check_qkv(q, k, v)
    scale, window = check_options(softmax_scale, window_size, dropout_p, q.shape[-1])
    check_features(q, k, softcap, alibi_slopes, attn_bias, attn_mask)
    if window_block < 1 or window_block & (window_block - 1):
        raise ValueError(f"window_block must be a power of two >= 1, got {window_block}")
    if window_block > 1 and q.shape[1] != k.shape[1]:
        raise ValueError("block-granular windows need seqlen_q == seqlen_k, got "
                         f"{q.shape[1]} and {k.shape[1]}")
    f = Features(scale, bool(causal), window, float(softcap), alibi_slopes, attn_bias, attn_mask, float(dropout_p),
                 window_block=int(window_block), tiling=tiling, deterministic=bool(deterministic))
    rng = _library.new_rng_state(f.dropout_p)
    out, lse = _library.attention_op(q, k, v, f, rng)
    if not return_attn_probs:
        return out
    with torch.no_grad():
        seed, offset = rng.tolist()
        probs = _attention_probs(q, k, lse, dataclasses.replace(f, seed=seed, offset=offset), _library.use_kernels(q))
    return out, lse.to(torch.float32), probs


def flash_attn_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
    *,
    attn_bias: Optional[torch.Tensor] = None,
    attn_mask: Optional[torch.Tensor] = None,
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Exact attention ``softmax(q k^T * scale) v`` without materialising the score matrix.

    Args:
        q: ``(batch, seqlen_q, nheads, headdim)``, float16/bfloat16 (float32 also accepted; float64 on CPU).
        k, v: ``(batch, seqlen_k, nheads_k, headdim)``; ``nheads`` must be a multiple of ``nheads_k``
            (GQA/MQA: query head ``h`` uses kv head ``h // (nheads // nheads_k)``).
        dropout_p: dropout probability on the attention weights (Philox in-kernel, seeded from torch's
            generator, so ``torch.manual_seed`` reproduces a run; nothing of size seqlen^2 is stored). The GPU
            kernels draw 8 bits per weight, so the probability used rounds to a multiple of 1/256 (at most 255/256;
            kept weights are scaled by ``1 / (1 - dropout_p)``), as FlashAttention 2 does; the CPU path uses
            ``dropout_p`` as given.
        softmax_scale: defaults to ``1 / sqrt(headdim)``.
        causal: query ``i`` sees key ``j`` iff ``j <= i + seqlen_k - seqlen_q`` (bottom-right aligned).
        window_size: ``(left, right)``: query ``i`` sees keys ``i + d - left .. i + d + right`` with
            ``d = seqlen_k - seqlen_q``; -1 leaves a side unbounded. Tiles outside the band are skipped.
        softcap: if > 0, scores become ``softcap * tanh(scores / softcap)`` before bias and masking.
        alibi_slopes: float32 ``(nheads,)`` or ``(batch, nheads)``; adds ``-slope * |i + d - j|``.
        deterministic: True (or ``torch.use_deterministic_algorithms(True)``) makes the backward bit-identical
            run to run: dQ comes from its own kernel instead of float32 reductions (slower on Hopper). False
            (default) lets the backward pick the fastest dQ strategy, which on Hopper adds dQ through TMA
            reductions whose order varies (the last bits of dQ may differ).
        return_attn_probs: also return ``softmax_lse`` (float32 ``(batch, nheads, seqlen_q)``, natural log)
            and ``S_dmask``, the probabilities with dropped entries negated (O(seqlen^2): for tests only).
        attn_bias: additive float bias broadcastable to ``(batch, nheads, seqlen_q, seqlen_k)``; if it
            requires grad, its gradient is computed (reduced to its own shape).
        attn_mask: bool, broadcastable like ``attn_bias``; True = may attend (as in PyTorch SDPA).

    Rows that see no key give output 0 and lse ``-inf``. Any strides are accepted as long as the last
    dimension is contiguous; no copy of q/k/v is made.
    """
    return attention(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, attn_bias,
                     attn_mask, return_attn_probs, deterministic=deterministic)


def flash_attn_qkvpacked_func(
    qkv: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
):
    """``flash_attn_func`` on a packed ``qkv`` of shape ``(batch, seqlen, 3, nheads, headdim)``.

    q, k and v are strided views into ``qkv`` (no copies); the gradient arrives packed the same way.
    """
    check_tensor("qkv", qkv, 5, "(batch, seqlen, 3, nheads, headdim)")
    if qkv.shape[2] != 3:
        raise ValueError(f"qkv must have shape (batch, seqlen, 3, nheads, headdim), got {tuple(qkv.shape)}")
    q, k, v = qkv.unbind(dim=2)
    return flash_attn_func(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes,
                           deterministic, return_attn_probs)


def flash_attn_kvpacked_func(
    q: torch.Tensor,
    kv: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
):
    """``flash_attn_func`` with a packed ``kv`` of shape ``(batch, seqlen_k, 2, nheads_k, headdim)``."""
    check_tensor("kv", kv, 5, "(batch, seqlen_k, 2, nheads_k, headdim)")
    if kv.shape[2] != 2:
        raise ValueError(f"kv must have shape (batch, seqlen_k, 2, nheads_k, headdim), got {tuple(kv.shape)}")
    k, v = kv.unbind(dim=2)
    return flash_attn_func(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes,
                           deterministic, return_attn_probs)
