"""How q/k/v and lse are laid out for the kernels: fixed-length batches or packed variable-length sequences.

Fixed length: q ``(batch, seqlen_q, nheads, headdim)``, lse ``(batch, nheads, seqlen_q)``. Variable length: q
``(total_q, nheads, headdim)`` with sequence ``b`` in rows ``cu_seqlens_q[b]:cu_seqlens_q[b + 1]``, lse
``(nheads, total_q)``. The kernels see both through the same three strides (batch, token, head) -- the batch
stride is 0 for packed sequences, whose start comes from ``cu_seqlens`` instead -- and through lse row strides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from ..features import Features


@dataclass(frozen=True)
class Layout:
    batch: int
    seqlen_q: int  # the longest sequence for varlen: the grid covers it, shorter ones exit early
    seqlen_k: int
    nheads: int
    nheads_k: int
    head_dim: int
    total_q: int
    varlen: bool
    cu_seqlens: Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]

    def strides(self, t: torch.Tensor) -> Tuple[int, int, int]:
        """(batch, token, head) strides of q/k/v/out or their gradients."""
        st = t.stride()
        return (0, st[0], st[1]) if self.varlen else st[:3]

    @property
    def lse_shape(self) -> Tuple[int, ...]:
        return (self.nheads, self.total_q) if self.varlen else (self.batch, self.nheads, self.seqlen_q)

    @property
    def lse_strides(self) -> Tuple[int, int]:
        """(batch, head) strides of a contiguous lse; the row within a head is ``q_start + i``."""
        return (0, self.total_q) if self.varlen else (self.nheads * self.seqlen_q, self.seqlen_q)

    def cu_args(self, dummy: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.cu_seqlens if self.varlen else (dummy, dummy)

    @property
    def empty(self) -> bool:
        return self.batch == 0 or self.nheads == 0 or self.seqlen_q == 0 or self.total_q == 0


def layout(q: torch.Tensor, k: torch.Tensor, f: Features) -> Layout:
    if f.varlen:
        total_q, nheads, head_dim = q.shape
        return Layout(f.cu_seqlens_q.numel() - 1, int(f.max_seqlen_q), int(f.max_seqlen_k), nheads, k.shape[1],
                      head_dim, total_q, True, (f.cu_seqlens_q, f.cu_seqlens_k))
    batch, seqlen_q, nheads, head_dim = q.shape
    return Layout(batch, seqlen_q, k.shape[1], nheads, k.shape[2], head_dim, batch * seqlen_q, False,
                  (None, None))
