"""Rotary position embedding applied to the new tokens of a KV-cache step (q and the appended k).

``cos``/``sin`` are ``(seqlen_ro, rotary_dim / 2)``; the first ``rotary_dim`` channels of each head rotate, the
rest pass through. Interleaved (GPT-J) rotates channel pairs ``(2i, 2i + 1)``; non-interleaved (GPT-NeoX) rotates
``(i, i + rotary_dim / 2)``. Only the new tokens are touched, so plain PyTorch costs little next to the attention.
"""

from __future__ import annotations

import torch


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                 interleaved: bool) -> torch.Tensor:
    """Rotate ``x`` ``(batch, seqlen, heads, headdim)`` at integer ``positions`` ``(batch, seqlen)``; returns a new
    tensor in x's dtype (computed in float32)."""
    half = cos.shape[1]
    rot = 2 * half
    c = cos[positions].float().unsqueeze(2)  # (batch, seqlen, 1, half)
    s = sin[positions].float().unsqueeze(2)
    xr = x[..., :rot].float()
    if interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
        rotated = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)
    else:
        x1, x2 = xr[..., :half], xr[..., half:]
        rotated = torch.cat((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1)
    return torch.cat((rotated.to(x.dtype), x[..., rot:]), dim=-1)
