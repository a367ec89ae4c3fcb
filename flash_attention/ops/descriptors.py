"""Host-side TMA tensor descriptors for the kernels' tile loads (Hopper's bulk copy engine).

A descriptor views a (batch, seqlen, heads, headdim) tensor with a ``[1, rows, 1, block_d]`` box. The copy engine
bounds each dimension on its own: a box hanging over the end of the sequence (or past ``headdim`` when the box is
padded to a power of two) reads zeros and never crosses into the next head or batch entry, so strided layouts work
as they are (no ``.contiguous()`` copy).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch


def tma_compatible(t: torch.Tensor) -> bool:
    """What the copy engine takes: 4-D, unit stride on headdim, a 16-byte aligned base and 16-byte multiple
    strides elsewhere, and no broadcast (zero-stride) dimension."""
    size = t.element_size()
    return (t.dim() == 4 and t.stride(-1) == 1 and t.data_ptr() % 16 == 0
            and all(st > 0 and st * size % 16 == 0 for st in t.stride()[:-1]))


def tile_descriptors(tensors: Tuple[torch.Tensor, ...], rows: int, block_d: int) -> Tuple[Optional[Any], ...]:
    """One descriptor per tensor with a ``[1, rows, 1, block_d]`` box; all None (pointer loads) when any tensor
    cannot take one."""
    if not all(tma_compatible(t) for t in tensors):
        return (None,) * len(tensors)
    from triton.tools.tensor_descriptor import TensorDescriptor

    return tuple(TensorDescriptor(t, list(t.shape), list(t.stride()), [1, rows, 1, block_d]) for t in tensors)
