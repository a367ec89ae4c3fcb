"""The options that define an attention call besides q, k and v, shared by every implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch


@dataclass(frozen=True)
class Features:
    """Validated attention options, as the CPU path and the kernel launchers receive them.

    ``window_size`` has causal not yet folded in; ``window_block > 1`` makes the window block-granular (the seed
    layer's local block-sparse attention). ``seed``/``offset`` key the dropout RNG. ``deterministic`` makes the
    backward bit-identical run to run: no dQ strategy whose float32 additions happen in a varying order.
    """

    softmax_scale: float
    causal: bool = False
    window_size: Tuple[int, int] = (-1, -1)
    softcap: float = 0.0
    alibi_slopes: Optional[torch.Tensor] = None
    attn_bias: Optional[torch.Tensor] = None
    attn_mask: Optional[torch.Tensor] = None
    dropout_p: float = 0.0
    seed: int = 0
    offset: int = 0
    window_block: int = 1
    tiling: str = "auto"  # a name in ops.configs.TILING_STRATEGIES overrides the tuned kernel configs
    # Query row i sits at key position i + diag; None = seqlen_k - seqlen_q (bottom-right, FlashAttention 2).
    # Ring attention sets it to place a block of keys anywhere relative to a block of queries.
    diag: Optional[int] = None
    # Variable-length batches (flash_attn_varlen_func): q/k/v are (total, heads, headdim) with the sequences
    # packed; cu_seqlens_* are int32 (batch + 1,) offsets and max_seqlen_* bound every sequence's length.
    cu_seqlens_q: Optional[torch.Tensor] = None
    cu_seqlens_k: Optional[torch.Tensor] = None
    max_seqlen_q: int = 0
    max_seqlen_k: int = 0
    # Backward only: pins dQ to the split kernel (exclusive writes) instead of atomic/TMA float32 reductions.
    deterministic: bool = False

    @property
    def varlen(self) -> bool:
        return self.cu_seqlens_q is not None

    def diagonal(self, seqlen_q: int, seqlen_k: int) -> int:
        """The key position of query row 0."""
        return seqlen_k - seqlen_q if self.diag is None else int(self.diag)
