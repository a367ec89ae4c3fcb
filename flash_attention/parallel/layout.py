"""Where each rank's tokens sit in the global sequence, and helpers to shard and unshard along it.

Two layouts of a sequence of ``S`` tokens over ``W`` ranks:

* ``"contiguous"``: rank ``r`` holds tokens ``[r * S/W, (r + 1) * S/W)``.
* ``"zigzag"``: the sequence is cut into ``2W`` equal chunks and rank ``r`` holds chunks ``r`` and ``2W - 1 - r``.
  Under a causal mask every rank then owns one early and one late chunk, so each does the same amount of work
  (with the contiguous layout the last rank does ``2W - 1`` times the first one's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch

LAYOUTS = ("contiguous", "zigzag")


@dataclass(frozen=True)
class Chunk:
    """``length`` tokens stored at ``local_start`` of a rank's shard, sitting at ``global_start`` in the sequence."""

    local_start: int
    global_start: int
    length: int
    index: int  # the chunk's rank in the global order (unique ids for the dropout streams)


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def chunks_of(rank: int, world_size: int, local_len: int, layout: str) -> List[Chunk]:
    """The chunks of rank ``rank``'s shard of ``local_len`` tokens."""
    check_layout(layout)
    if layout == "contiguous":
        return [Chunk(0, rank * local_len, local_len, rank)]
    if local_len % 2:
        raise ValueError(f"the zigzag layout needs an even number of tokens per rank, got {local_len}")
    half = local_len // 2
    late = 2 * world_size - 1 - rank
    return [Chunk(0, rank * half, half, rank), Chunk(half, late * half, half, late)]


def num_chunks(world_size: int, layout: str) -> int:
    return world_size if layout == "contiguous" else 2 * world_size


def shard_sequence(x: torch.Tensor, rank: int, world_size: int, layout: str = "zigzag", dim: int = 1) -> torch.Tensor:
    """Rank ``rank``'s shard of the full tensor ``x`` along ``dim`` (a view for contiguous, a copy for zigzag)."""
    check_layout(layout)
    seqlen = x.shape[dim]
    parts = num_chunks(world_size, layout)
    if seqlen % parts:
        raise ValueError(f"sequence length {seqlen} must be divisible by {parts} for the {layout} layout over "
                         f"{world_size} ranks")
    if layout == "contiguous":
        return x.narrow(dim, rank * (seqlen // world_size), seqlen // world_size)
    chunk = seqlen // parts
    late = 2 * world_size - 1 - rank
    return torch.cat([x.narrow(dim, rank * chunk, chunk), x.narrow(dim, late * chunk, chunk)], dim=dim)


def unshard_sequence(shards: List[torch.Tensor], layout: str = "zigzag", dim: int = 1) -> torch.Tensor:
    """The full tensor from every rank's shard, in rank order (the inverse of ``shard_sequence``)."""
    check_layout(layout)
    if layout == "contiguous":
        return torch.cat(shards, dim=dim)
    world_size = len(shards)
    halves = [s.chunk(2, dim=dim) for s in shards]
    order = [halves[r][0] for r in range(world_size)] + [halves[r][1] for r in reversed(range(world_size))]
    return torch.cat(order, dim=dim)


def gather_sequence(x: torch.Tensor, group: Optional["torch.distributed.ProcessGroup"] = None,
                    layout: str = "zigzag", dim: int = 1) -> torch.Tensor:
    """All-gather the shards of a process group and reassemble the full tensor on every rank."""
    import torch.distributed as dist

    shards = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
    dist.all_gather(shards, x.contiguous(), group=group)
    return unshard_sequence(shards, layout, dim)
