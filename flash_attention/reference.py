"""Plain attention: the ground truth the kernels, the CPU path and the benchmarks are checked against.

Everything here materialises the full ``(batch, nheads, seqlen_q, seqlen_k)`` score matrix, so it is meant
for tests and small sizes only. By default it computes in float64 (``upcast=True``); with ``upcast=False``
it computes in the inputs' own dtype, which is how the tests measure "the error PyTorch makes in the same
low precision" that our kernels are allowed to match.

Layout follows FlashAttention: q ``(batch, seqlen_q, nheads, headdim)``, k/v ``(batch, seqlen_k, nheads_k,
headdim)``; GQA/MQA when ``nheads_k`` divides ``nheads``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch

__all__ = ["attention_ref", "attention_scores", "alibi_bias", "visibility_mask", "normalize_window",
           "varlen_attention_ref", "rotary_ref", "kvcache_attention_ref"]


def normalize_window(causal: bool, window_size: Tuple[int, int]) -> Tuple[int, int]:
    """Return ``(left, right)`` with causal folded in (right=0); -1 still means unbounded."""
    left, right = int(window_size[0]), int(window_size[1])
    if causal:
        right = 0
    return left, right


def visibility_mask(
    seqlen_q: int,
    seqlen_k: int,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    device: torch.device | str = "cpu",
    key_start: int = 0,
    key_end: Optional[int] = None,
    window_block: int = 1,
    diag: Optional[int] = None,
) -> torch.Tensor:
    """Boolean ``(seqlen_q, key_end - key_start)``: True where query i may attend key j.

    The diagonal is aligned to the bottom right, as in FlashAttention 2: query i sits at key position
    ``i + seqlen_k - seqlen_q`` and sees keys ``[pos - left, pos + right]`` (-1 = unbounded side).
    ``key_start``/``key_end`` select a slice of the key axis (the CPU path works in key chunks). ``diag``
    overrides ``seqlen_k - seqlen_q`` as the key position of query 0 (ring attention's blocks).

    ``window_block > 1`` makes the window block-granular (the seed layer's local block-sparse attention): with
    ``g = window_block``, query position ``pos`` sees keys of blocks ``pos // g - left .. pos // g + right``.
    """
    # On block windows causality stays token-level (the seed's causal mask intersected with its block band).
    left, right = normalize_window(causal and window_block == 1, window_size)
    key_end = seqlen_k if key_end is None else key_end
    i = torch.arange(seqlen_q, device=device)[:, None]
    j = torch.arange(key_start, key_end, device=device)[None, :]
    pos = i + (seqlen_k - seqlen_q if diag is None else diag)
    ok = torch.ones(seqlen_q, key_end - key_start, dtype=torch.bool, device=device)
    g = window_block
    qb = torch.div(pos, g, rounding_mode="floor")
    if right >= 0:
        ok &= j < (qb + right + 1) * g
    if left >= 0:
        ok &= j >= (qb - left) * g
    if causal and window_block > 1:
        ok &= j <= pos
    return ok


def alibi_bias(
    alibi_slopes: torch.Tensor, batch: int, nheads: int, seqlen_q: int, seqlen_k: int, dtype=torch.float64,
    key_start: int = 0, key_end: Optional[int] = None, diag: Optional[int] = None,
) -> torch.Tensor:
    """ALiBi score bias ``-slope * |i + diag - j|``, ``(batch, nheads, seqlen_q, key_end - key_start)``;
    ``diag`` defaults to ``seqlen_k - seqlen_q``."""
    key_end = seqlen_k if key_end is None else key_end
    slopes = alibi_slopes.to(dtype)
    slopes = slopes.expand(batch, nheads) if slopes.dim() == 2 else slopes[None, :].expand(batch, nheads)
    i = torch.arange(seqlen_q, device=slopes.device)[:, None]
    j = torch.arange(key_start, key_end, device=slopes.device)[None, :]
    diag = seqlen_k - seqlen_q if diag is None else diag
    dist = (i + diag - j).abs().to(dtype)
    return -slopes[:, :, None, None] * dist


def attention_scores(
    q: torch.Tensor,
    k: torch.Tensor,
    softmax_scale: float,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    attn_bias: Optional[torch.Tensor] = None,
    attn_mask: Optional[torch.Tensor] = None,
    dtype: torch.dtype = torch.float64,
    key_start: int = 0,
    seqlen_k: Optional[int] = None,
    window_block: int = 1,
    diag: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """The score matrix ``(batch, nheads, seqlen_q, n_keys)`` with every feature applied, in ``dtype``.

    ``k`` may be a slice of the keys starting at ``key_start`` of a sequence of ``seqlen_k`` keys (the CPU path
    works in chunks); ``attn_bias``/``attn_mask`` are given for the whole sequence. Returns ``(scores, visible,
    tanh)``: scores are -inf where not visible; ``tanh`` is the softcap's tanh (for its derivative) or None.
    """
    batch, seqlen_q, nheads, _ = q.shape
    n_keys, nheads_k = k.shape[1], k.shape[2]
    seqlen_k = n_keys if seqlen_k is None else seqlen_k
    key_end = key_start + n_keys
    kc = k.to(dtype)
    if nheads_k != nheads:
        kc = kc.repeat_interleave(nheads // nheads_k, dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q.to(dtype), kc) * softmax_scale
    tanh = None
    if softcap > 0:
        tanh = torch.tanh(scores / softcap)
        scores = softcap * tanh
    if alibi_slopes is not None:
        scores = scores + alibi_bias(alibi_slopes, batch, nheads, seqlen_q, seqlen_k, dtype, key_start, key_end,
                                     diag)
    if attn_bias is not None:
        bias = attn_bias.expand(batch, nheads, seqlen_q, seqlen_k)[..., key_start:key_end]
        scores = scores + bias.to(dtype)
    visible = visibility_mask(seqlen_q, seqlen_k, causal, window_size, q.device, key_start, key_end, window_block,
                              diag)
    visible = visible.expand(batch, nheads, seqlen_q, n_keys)
    if attn_mask is not None:
        visible = visible & attn_mask.expand(batch, nheads, seqlen_q, seqlen_k)[..., key_start:key_end].to(torch.bool)
    return scores.masked_fill(~visible, float("-inf")), visible, tanh


def attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    upcast: bool = True,
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    attn_bias: Optional[torch.Tensor] = None,
    attn_mask: Optional[torch.Tensor] = None,
    dropout_p: float = 0.0,
    dropout_keep: Optional[torch.Tensor] = None,
    window_block: int = 1,
    diag: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Attention computed the plain way; returns ``(out, lse)``.

    Scores are ``s = q k^T * scale``, then ``softcap * tanh(s / softcap)`` when ``softcap > 0``, plus the ALiBi
    bias and ``attn_bias``; keys outside the causal/window band or where ``attn_mask`` is False are excluded.
    With ``dropout_keep`` (boolean ``(batch, nheads, seqlen_q, seqlen_k)``, True = kept) the probabilities are
    multiplied by ``keep / (1 - dropout_p)`` after the softmax (lse is that of the undropped softmax).

    ``out`` has q's layout; it is float64 when ``upcast``, else q's dtype. ``lse`` is float32 ``(batch,
    nheads, seqlen_q)`` in natural log. A query row that sees no key gives output 0 and lse -inf.
    """
    headdim = q.shape[-1]
    nheads, nheads_k = q.shape[2], k.shape[2]
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(headdim)
    cdtype = torch.float64 if upcast else q.dtype
    scores, visible, _ = attention_scores(q, k, scale, causal, window_size, softcap, alibi_slopes, attn_bias,
                                          attn_mask, cdtype, window_block=window_block, diag=diag)
    vc = v.to(cdtype)
    if nheads_k != nheads:
        vc = vc.repeat_interleave(nheads // nheads_k, dim=2)
    sees_any = visible.any(dim=-1, keepdim=True)
    # A row that sees no key would give softmax NaN (and NaN gradients); FlashAttention defines its output
    # as 0 and its lse as -inf. Give such rows finite dummy scores, then zero them.
    scores = scores.masked_fill(~sees_any, 0.0)
    lse = torch.logsumexp(scores.to(torch.float64 if upcast else torch.float32), dim=-1)
    lse = lse.masked_fill(~sees_any[..., 0], float("-inf"))
    probs = torch.softmax(scores, dim=-1).masked_fill(~sees_any, 0.0)
    if dropout_keep is not None:
        probs = probs * dropout_keep.to(probs.dtype) / (1.0 - dropout_p)
    out = torch.einsum("bhqk,bkhd->bqhd", probs, vc)
    return out.to(q.dtype if not upcast else cdtype), lse.to(torch.float32)


def varlen_attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    alibi_slopes: Optional[torch.Tensor] = None,
    dropout_keep: Optional[Sequence[torch.Tensor]] = None,
    **kwargs,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``attention_ref`` on each packed sequence of ``(total, heads, headdim)`` q/k/v; returns ``(out, lse)`` with
    out ``(total_q, nheads, headdim)`` and lse ``(nheads, total_q)``. ``alibi_slopes`` may be ``(batch, nheads)``;
    ``dropout_keep`` is one ``(1, nheads, seqlen_q_b, seqlen_k_b)`` mask per sequence; other keywords go to
    ``attention_ref`` unchanged."""
    cu_q, cu_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    outs, lses = [], []
    for b in range(len(cu_q) - 1):
        slopes = alibi_slopes[b] if alibi_slopes is not None and alibi_slopes.dim() == 2 else alibi_slopes
        keep = dropout_keep[b] if dropout_keep is not None else None
        o, l = attention_ref(q[cu_q[b]:cu_q[b + 1]][None], k[cu_k[b]:cu_k[b + 1]][None],
                             v[cu_k[b]:cu_k[b + 1]][None], alibi_slopes=slopes, dropout_keep=keep, **kwargs)
        outs.append(o[0])
        lses.append(l[0])
    if not outs:
        dtype = torch.float64 if kwargs.get("upcast", True) else q.dtype
        return q.new_zeros(q.shape, dtype=dtype), torch.zeros(q.shape[1], 0, dtype=torch.float32, device=q.device)
    return torch.cat(outs, dim=0), torch.cat(lses, dim=1)


def rotary_ref(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
               interleaved: bool) -> torch.Tensor:
    """Rotary embedding as a complex multiplication, in float64: ``x`` ``(batch, seqlen, heads, headdim)``,
    ``cos``/``sin`` ``(seqlen_ro, rotary_dim / 2)``, integer ``positions`` ``(batch, seqlen)``. The first
    ``rotary_dim`` channels pair up as ``(2i, 2i + 1)`` (interleaved) or ``(i, i + rotary_dim / 2)``."""
    half = cos.shape[1]
    x64 = x.to(torch.float64)
    rot = x64[..., :2 * half]
    if interleaved:
        z = torch.view_as_complex(rot.unflatten(-1, (half, 2)).contiguous())
    else:
        z = torch.complex(rot[..., :half], rot[..., half:])
    turn = torch.complex(cos.to(torch.float64)[positions], sin.to(torch.float64)[positions])[:, :, None]
    z = z * turn
    if interleaved:
        rotated = torch.view_as_real(z).flatten(-2)
    else:
        rotated = torch.cat((z.real, z.imag), dim=-1)
    return torch.cat((rotated, x64[..., 2 * half:]), dim=-1)


def kvcache_attention_ref(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    seqlens_k: Sequence[int],
    cache_leftpad: Optional[Sequence[int]] = None,
    alibi_slopes: Optional[torch.Tensor] = None,
    **kwargs,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``attention_ref`` of each batch entry's queries against its keys ``[leftpad_b, seqlens_k[b])``.

    ``k_cache``/``v_cache`` are the logical per-entry caches ``(batch, seqlen_cache, nheads_k, headdim)`` (callers
    resolve paging and ``cache_batch_idx`` first). Returns ``out`` ``(batch, seqlen_q, nheads, headdim)`` and
    ``lse`` ``(batch, nheads, seqlen_q)``; other keywords go to ``attention_ref`` (bottom-right alignment).
    """
    outs, lses = [], []
    for b in range(q.shape[0]):
        start = int(cache_leftpad[b]) if cache_leftpad is not None else 0
        end = int(seqlens_k[b])
        slopes = alibi_slopes[b] if alibi_slopes is not None and alibi_slopes.dim() == 2 else alibi_slopes
        o, l = attention_ref(q[b:b + 1], k_cache[b:b + 1, start:end], v_cache[b:b + 1, start:end],
                             alibi_slopes=slopes, **kwargs)
        outs.append(o)
        lses.append(l)
    return torch.cat(outs), torch.cat(lses)
