"""Attention on CPU tensors in plain PyTorch, with the kernels' semantics and their memory shape.

Keys are processed in chunks with the same online softmax as the GPU kernels, so memory is
O(batch x heads x seqlen_q x chunk) rather than O(seqlen^2), and the backward recomputes each chunk's
probabilities from the saved log-sum-exp. Half-precision inputs are computed in float32, float64 in float64.
The score of each chunk (softcap, ALiBi, bias, masks) comes from ``reference.attention_scores``, the one
definition of those features. Dropout draws each chunk's keep mask from a generator seeded by (seed, offset,
chunk start), so the backward regenerates exactly the forward's pattern.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Optional, Tuple

import torch

from .features import Features
from .reference import attention_scores

# Elements of one score chunk (batch x heads x seqlen_q x chunk); 2**24 float32 values = 64 MiB.
_CHUNK_ELEMENTS = 1 << 24


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _chunk_size(batch: int, nheads: int, seqlen_q: int, seqlen_k: int) -> int:
    rows = max(1, batch * nheads * seqlen_q)
    return max(16, min(max(seqlen_k, 1), _CHUNK_ELEMENTS // rows))


def _scores(q, k, f: Features, start: int, end: int, seqlen_k: int, dtype):
    return attention_scores(q, k[:, start:end], f.softmax_scale, f.causal, f.window_size, f.softcap,
                            f.alibi_slopes, f.attn_bias, f.attn_mask, dtype, start, seqlen_k, f.window_block, f.diag)


def _repeat_kv(x: torch.Tensor, nheads: int) -> torch.Tensor:
    """(batch, n, nheads_k, d) -> (batch, nheads, n, d); a chunk-sized copy, never the whole sequence."""
    hk = x.shape[2]
    x = x.permute(0, 2, 1, 3)
    return x.repeat_interleave(nheads // hk, dim=1) if hk != nheads else x


def _sum_groups(x: torch.Tensor, nheads_k: int) -> torch.Tensor:
    """(batch, nheads, n, d) -> (batch, n, nheads_k, d), summing the query heads of each GQA group."""
    b, h, n, d = x.shape
    return x.reshape(b, nheads_k, h // nheads_k, n, d).sum(dim=2).permute(0, 2, 1, 3)


def _like(template: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` in a tensor laid out like ``template`` (as the kernels' outputs are: ``empty_like``)."""
    return torch.empty_like(template).copy_(values)


def dropout_keep_chunk(f: Features, start: int, shape) -> torch.Tensor:
    """The keep mask of one key chunk: a function of (seed, offset, chunk start) only."""
    g = torch.Generator()
    g.manual_seed((f.seed * 0x9E3779B97F4A7C15 + f.offset + start) % (1 << 63))
    return torch.rand(shape, generator=g, dtype=torch.float32) >= f.dropout_p


def dropout_keep(f: Features, batch: int, nheads: int, seqlen_q: int, seqlen_k: int) -> torch.Tensor:
    """The whole ``(batch, nheads, seqlen_q, seqlen_k)`` keep mask the chunks use (O(seqlen^2): for tests)."""
    chunk = _chunk_size(batch, nheads, seqlen_q, seqlen_k)
    parts = [dropout_keep_chunk(f, s, (batch, nheads, seqlen_q, min(s + chunk, seqlen_k) - s))
             for s in range(0, seqlen_k, chunk)]
    return torch.cat(parts, dim=-1) if parts else torch.ones(batch, nheads, seqlen_q, 0, dtype=torch.bool)


def sequences(f: Features) -> Iterator[Tuple[int, slice, slice, Features]]:
    """Each packed sequence of a varlen call: ``(b, query rows, key rows, its own fixed-length Features)``.

    ALiBi slopes given per batch entry become that sequence's row; dropout gets a distinct stream per sequence.
    """
    cu_q, cu_k = f.cu_seqlens_q.tolist(), f.cu_seqlens_k.tolist()
    for b in range(len(cu_q) - 1):
        slopes = f.alibi_slopes
        if slopes is not None and slopes.dim() == 2:
            slopes = slopes[b]
        fb = dataclasses.replace(f, cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0,
                                 alibi_slopes=slopes, offset=f.offset + (b + 1) * 0x9E3779B1)
        yield b, slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1]), fb


def _varlen_forward(q, k, v, f: Features):
    out = torch.empty_like(q)
    lse = torch.empty(q.shape[1], q.shape[0], dtype=torch.promote_types(_compute_dtype(q.dtype), torch.float32))
    for _, rows, keys, fb in sequences(f):
        o, l = attention_forward_cpu(q[rows][None], k[keys][None], v[keys][None], fb)
        out[rows], lse[:, rows] = o[0], l[0]
    return out, lse


def _varlen_backward(dout, q, k, v, out, lse, f: Features):
    dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
    for _, rows, keys, fb in sequences(f):
        g = attention_backward_cpu(dout[rows][None], q[rows][None], k[keys][None], v[keys][None], out[rows][None],
                                   lse[:, rows][None], fb)
        dq[rows], dk[keys], dv[keys] = g[0][0], g[1][0], g[2][0]
    return dq, dk, dv, None


def attention_forward_cpu(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f: Features
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Chunked forward; returns ``(out, lse)`` like the Triton kernels (lse in natural log).

    lse is float32, or float64 for float64 inputs so that the backward of a float64 call stays float64-exact.
    Packed variable-length batches run sequence by sequence.
    """
    if f.varlen:
        return _varlen_forward(q, k, v, f)
    batch, seqlen_q, nheads, head_dim = q.shape
    seqlen_k = k.shape[1]
    ct = _compute_dtype(q.dtype)
    m = torch.full((batch, nheads, seqlen_q), float("-inf"), dtype=ct)
    l = torch.zeros_like(m)
    acc = torch.zeros(batch, nheads, seqlen_q, head_dim, dtype=ct)
    chunk = _chunk_size(batch, nheads, seqlen_q, seqlen_k)
    for start in range(0, seqlen_k, chunk):
        end = min(start + chunk, seqlen_k)
        s, _, _ = _scores(q, k, f, start, end, seqlen_k, ct)
        m_new = torch.maximum(m, s.amax(dim=-1))
        # Rows with nothing visible so far keep m = -inf; subtract 0 there so exp gives 0, not NaN.
        m_use = torch.where(torch.isneginf(m_new), torch.zeros_like(m_new), m_new)
        p = torch.exp(s - m_use.unsqueeze(-1))
        alpha = torch.exp(m - m_use)
        l = l * alpha + p.sum(dim=-1)
        if f.dropout_p > 0:
            p = p * dropout_keep_chunk(f, start, p.shape)
        acc = acc * alpha.unsqueeze(-1) + torch.matmul(p, _repeat_kv(v[:, start:end].to(ct), nheads))
        m = m_new
    empty = l == 0
    l_safe = torch.where(empty, torch.ones_like(l), l)
    out = acc / l_safe.unsqueeze(-1) / (1.0 - f.dropout_p)
    lse = torch.where(empty, torch.full_like(l, float("-inf")), m + torch.log(l_safe))
    return _like(q, out.permute(0, 2, 1, 3)), lse.to(torch.promote_types(ct, torch.float32))


def attention_backward_cpu(
    dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
    f: Features, bias_grad: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Chunked backward from the saved lse; returns ``(dq, dk, dv, dbias)`` (dbias full-size, or None)."""
    if f.varlen:
        return _varlen_backward(dout, q, k, v, out, lse, f)
    batch, seqlen_q, nheads, head_dim = q.shape
    seqlen_k, nheads_k = k.shape[1], k.shape[2]
    ct = _compute_dtype(q.dtype)
    qf = q.to(ct).permute(0, 2, 1, 3)
    dof = dout.to(ct).permute(0, 2, 1, 3)
    delta = (dof * out.to(ct).permute(0, 2, 1, 3)).sum(dim=-1, keepdim=True)
    # A row that saw no key has lse = -inf; +inf makes its probabilities 0 instead of NaN.
    lse_f = lse.to(ct).unsqueeze(-1)
    lse_f = torch.where(torch.isneginf(lse_f), torch.full_like(lse_f, float("inf")), lse_f)
    dq = torch.zeros_like(qf)
    dk = torch.zeros(batch, seqlen_k, nheads_k, head_dim, dtype=ct)
    dv = torch.zeros(batch, seqlen_k, nheads_k, head_dim, dtype=ct)
    dbias = torch.zeros(batch, nheads, seqlen_q, seqlen_k, dtype=torch.float32) if bias_grad else None
    chunk = _chunk_size(batch, nheads, seqlen_q, seqlen_k)
    for start in range(0, seqlen_k, chunk):
        end = min(start + chunk, seqlen_k)
        kc, vc = _repeat_kv(k[:, start:end].to(ct), nheads), _repeat_kv(v[:, start:end].to(ct), nheads)
        s, _, tanh = _scores(q, k, f, start, end, seqlen_k, ct)
        p = torch.exp(s - lse_f)
        dp = torch.matmul(dof, vc.transpose(-1, -2))
        p_used = p
        if f.dropout_p > 0:
            z = dropout_keep_chunk(f, start, p.shape).to(ct) / (1.0 - f.dropout_p)
            p_used, dp = p * z, dp * z
        dv[:, start:end] = _sum_groups(torch.matmul(p_used.transpose(-1, -2), dof), nheads_k)
        ds = p * (dp - delta)
        if dbias is not None:
            dbias[..., start:end] = ds
        if tanh is not None:
            ds = ds * (1 - tanh * tanh)
        dq += torch.matmul(ds, kc) * f.softmax_scale
        dk[:, start:end] = _sum_groups(torch.matmul(ds.transpose(-1, -2), qf) * f.softmax_scale, nheads_k)
    return _like(q, dq.permute(0, 2, 1, 3)), _like(k, dk), _like(v, dv), dbias
