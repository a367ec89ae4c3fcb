"""Attention on CPU tensors in plain PyTorch, with the kernels' semantics and their memory shape.

Keys are processed in chunks with the same online softmax as the GPU kernels, so memory is
O(batch x heads x seqlen_q x chunk) rather than O(seqlen^2), and the backward recomputes each chunk's
probabilities from the saved log-sum-exp. Half-precision inputs are computed in float32, float64 in float64.
GQA is handled by viewing the query heads as ``(nheads_k, group)`` so K/V are never repeated in memory.
"""

from __future__ import annotations

from typing import Tuple

import torch

from .reference import visibility_mask

# Elements of one score chunk (batch x heads x seqlen_q x chunk); 2**24 float32 values = 64 MiB.
_CHUNK_ELEMENTS = 1 << 24


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _chunk_size(batch: int, nheads: int, seqlen_q: int, seqlen_k: int) -> int:
    rows = max(1, batch * nheads * seqlen_q)
    return max(16, min(max(seqlen_k, 1), _CHUNK_ELEMENTS // rows))


def _split_heads(x: torch.Tensor, nheads_k: int, dtype: torch.dtype) -> torch.Tensor:
    """(batch, seqlen, nheads, d) -> (batch, nheads_k, group, seqlen, d) in the compute dtype."""
    b, s, h, d = x.shape
    return x.to(dtype).permute(0, 2, 1, 3).reshape(b, nheads_k, h // nheads_k, s, d)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, nheads_k, group, seqlen, d) -> (batch, seqlen, nheads, d)."""
    b, hk, g, s, d = x.shape
    return x.reshape(b, hk * g, s, d).permute(0, 2, 1, 3)


def _chunk_mask(seqlen_q, seqlen_k, causal, window_size, start, end, device):
    if not causal and tuple(window_size) == (-1, -1):
        return None
    return visibility_mask(seqlen_q, seqlen_k, causal, window_size, device, start, end)


def attention_forward_cpu(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    softmax_scale: float,
    causal: bool,
    window_size: Tuple[int, int] = (-1, -1),
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Chunked forward; returns ``(out, lse)`` like the Triton kernels (lse in natural log).

    lse is float32, or float64 for float64 inputs so that the backward of a float64 call stays float64-exact.
    """
    batch, seqlen_q, nheads, _ = q.shape
    seqlen_k, nheads_k = k.shape[1], k.shape[2]
    ct = _compute_dtype(q.dtype)
    qf = _split_heads(q, nheads_k, ct)
    kf = k.to(ct).permute(0, 2, 1, 3).unsqueeze(2)  # (b, hk, 1, sk, d): broadcasts over the group
    vf = v.to(ct).permute(0, 2, 1, 3).unsqueeze(2)
    m = torch.full(qf.shape[:-1], float("-inf"), dtype=ct)
    l = torch.zeros(qf.shape[:-1], dtype=ct)
    acc = torch.zeros_like(qf)
    chunk = _chunk_size(batch, nheads, seqlen_q, seqlen_k)
    for start in range(0, seqlen_k, chunk):
        end = min(start + chunk, seqlen_k)
        s = torch.matmul(qf, kf[..., start:end, :].transpose(-1, -2)) * softmax_scale
        mask = _chunk_mask(seqlen_q, seqlen_k, causal, window_size, start, end, q.device)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1))
        # Rows with nothing visible so far keep m = -inf; subtract 0 there so exp gives 0, not NaN.
        m_use = torch.where(torch.isinf(m_new) & (m_new < 0), torch.zeros_like(m_new), m_new)
        p = torch.exp(s - m_use.unsqueeze(-1))
        alpha = torch.exp(m - m_use)
        l = l * alpha + p.sum(dim=-1)
        acc = acc * alpha.unsqueeze(-1) + torch.matmul(p, vf[..., start:end, :])
        m = m_new
    empty = l == 0
    l_safe = torch.where(empty, torch.ones_like(l), l)
    out = acc / l_safe.unsqueeze(-1)
    lse = torch.where(empty, torch.full_like(l, float("-inf")), m + torch.log(l_safe))
    out = _merge_heads(out).to(q.dtype)
    return out, lse.reshape(batch, nheads, seqlen_q).to(torch.promote_types(ct, torch.float32))


def attention_backward_cpu(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    softmax_scale: float,
    causal: bool,
    window_size: Tuple[int, int] = (-1, -1),
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chunked backward from the saved lse; returns ``(dq, dk, dv)`` in the input dtypes and layouts."""
    batch, seqlen_q, nheads, _ = q.shape
    seqlen_k, nheads_k = k.shape[1], k.shape[2]
    ct = _compute_dtype(q.dtype)
    qf = _split_heads(q, nheads_k, ct)
    dof = _split_heads(dout, nheads_k, ct)
    of = _split_heads(out, nheads_k, ct)
    kf = k.to(ct).permute(0, 2, 1, 3).unsqueeze(2)
    vf = v.to(ct).permute(0, 2, 1, 3).unsqueeze(2)
    delta = (dof * of).sum(dim=-1, keepdim=True)
    lse_f = lse.to(ct).reshape(qf.shape[:-1]).unsqueeze(-1)
    # A row that saw no key has lse = -inf; +inf makes its probabilities 0 instead of NaN.
    lse_f = torch.where(torch.isinf(lse_f) & (lse_f < 0), torch.full_like(lse_f, float("inf")), lse_f)
    dq = torch.zeros_like(qf)
    dk = torch.zeros(batch, nheads_k, seqlen_k, q.shape[-1], dtype=ct)
    dv = torch.zeros(batch, nheads_k, seqlen_k, v.shape[-1], dtype=ct)
    chunk = _chunk_size(batch, nheads, seqlen_q, seqlen_k)
    for start in range(0, seqlen_k, chunk):
        end = min(start + chunk, seqlen_k)
        kc, vc = kf[..., start:end, :], vf[..., start:end, :]
        s = torch.matmul(qf, kc.transpose(-1, -2)) * softmax_scale
        mask = _chunk_mask(seqlen_q, seqlen_k, causal, window_size, start, end, q.device)
        p = torch.exp(s - lse_f)
        if mask is not None:
            p = p.masked_fill(~mask, 0.0)
        dv[:, :, start:end] = torch.einsum("bhgqc,bhgqd->bhcd", p, dof)
        dp = torch.matmul(dof, vc.transpose(-1, -2))
        ds = p * (dp - delta)
        dq += torch.matmul(ds, kc) * softmax_scale
        dk[:, :, start:end] = torch.einsum("bhgqc,bhgqd->bhcd", ds, qf) * softmax_scale
    dq = _merge_heads(dq).to(q.dtype)
    dk = dk.permute(0, 2, 1, 3).to(k.dtype)
    dv = dv.permute(0, 2, 1, 3).to(v.dtype)
    return dq, dk, dv
