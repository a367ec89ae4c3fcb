"""Convert between a padded batch and the packed layout of the varlen functions.

``unpad_input`` keeps the tokens a boolean ``attention_mask`` marks as real and returns the int32 ``cu_seqlens``
the varlen functions take; ``pad_input`` scatters packed rows back into a zero-padded batch. Both are plain
PyTorch indexing (differentiable, any device).
"""

from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["pad_input", "unpad_input"]


def unpad_input(hidden_states: torch.Tensor, attention_mask: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Pack the real tokens of a padded batch.

    Args:
        hidden_states: ``(batch, seqlen, ...)``.
        attention_mask: ``(batch, seqlen)``, bool or 0/1 integers; True/1 marks a real token. Real tokens need not
            be contiguous (left padding works too); their order within each row is kept.

    Returns ``(packed (total, ...), indices (total,) int64 into the flattened batch x seqlen axis,
    cu_seqlens (batch + 1,) int32, max_seqlen (int), seqlens (batch,) int32)``.
    """
    if attention_mask.dim() != 2 or tuple(attention_mask.shape) != tuple(hidden_states.shape[:2]):
        raise ValueError(f"attention_mask must have shape (batch, seqlen) = {tuple(hidden_states.shape[:2])}, "
                         f"got {tuple(attention_mask.shape)}")
    mask = attention_mask.bool()
    seqlens = mask.sum(dim=-1, dtype=torch.int32)
    indices = torch.nonzero(mask.flatten(), as_tuple=False).flatten()
    cu_seqlens = torch.zeros(seqlens.numel() + 1, dtype=torch.int32, device=seqlens.device)
    torch.cumsum(seqlens, dim=0, dtype=torch.int32, out=cu_seqlens[1:])
    max_seqlen = int(seqlens.max()) if seqlens.numel() else 0
    packed = hidden_states.reshape(-1, *hidden_states.shape[2:])[indices]
    return packed, indices, cu_seqlens, max_seqlen, seqlens


def pad_input(hidden_states: torch.Tensor, indices: torch.Tensor, batch: int, seqlen: int) -> torch.Tensor:
    """Scatter packed rows ``(total, ...)`` back to ``(batch, seqlen, ...)``, zeros at padding positions."""
    if hidden_states.shape[0] != indices.numel():
        raise ValueError(f"hidden_states must have one row per index ({indices.numel()}), got "
                         f"{hidden_states.shape[0]}")
    out = hidden_states.new_zeros(batch * seqlen, *hidden_states.shape[1:])
    out = out.index_put((indices,), hidden_states)  # out of place, so autograd flows to hidden_states
    return out.reshape(batch, seqlen, *hidden_states.shape[1:])
