"""The seed's ``FlashAttention`` layer (MindSpore, Ascend 910) on PyTorch, with its constructor and inputs.

Users of the seed switch by changing the import; the differences are listed in the class docstring.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import nn

from ...interface import attention
from ...ops.configs import TILING_STRATEGIES
from ...parallel.layout import check_layout

__all__ = ["FlashAttention", "alibi_slopes"]

NO_LIMIT = 65536  # the seed's "no limit" for prev_block_num / next_block_num


def alibi_slopes(nheads: int) -> List[float]:
    """The standard ALiBi slopes: 2^(-8/n), 2^(-16/n), ... for n heads a power of two; otherwise the slopes of
    the nearest lower power of two followed by every other slope of the next power of two."""

    def power_of_two(n: int) -> List[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if nheads & (nheads - 1) == 0:
        return power_of_two(nheads)
    lower = 2 ** math.floor(math.log2(nheads))
    return power_of_two(lower) + power_of_two(2 * lower)[0::2][: nheads - lower]


class FlashAttention(nn.Module):
    """Flash Attention layer with the seed's constructor and ``[batch, heads, seq, head_dim]`` inputs.

    Args:
        head_dim: size of each head; the scores are scaled by ``1 / sqrt(head_dim)``.
        dropout_rate: dropout on the attention probabilities, applied in training mode only.
        prev_block_num / next_block_num: local block-sparse attention. With ``block`` the tiling strategy's block
            size, a query in block ``b`` attends the keys of blocks ``b - prev_block_num .. b + next_block_num``.
            This maps exactly onto the window machinery as ``window_size=(prev_block_num, next_block_num)`` counted
            in blocks of ``block`` tokens (``flash_attention.attention(..., window_block=block)``); 65536 means no
            limit on that side. Key tiles outside the band are skipped, so cost grows with the band.
        tiling_stgy_name: one of ``TILING_STRATEGIES`` (``"sparse"`` default, ``"sparse64"``, ``"small"``,
            ``"large"``): the block size above and optionally the kernels' tile shapes.
        dp, mp: data-parallel and model-parallel degrees (batch x heads sharding, as the seed shards its operator).
            With ``dp * mp * cp > 1`` the inputs are this rank's shards ``[batch/dp, heads/mp, seq/cp, head_dim]``
            (or DTensors sharded that way on ``device_mesh``) and batch/heads shards compute locally with no
            communication; ALiBi slopes are those of the rank's global heads.
        cp: context-parallel degree: the sequence is sharded over ``cp`` ranks and attention runs as ring attention
            (``flash_attention.parallel.ring_flash_attn_func``) within each cp group; ``cp_layout`` is
            ``"zigzag"`` (default, balances causal work; shard with ``parallel.shard_sequence(x, r, cp, dim=2)``)
            or ``"contiguous"`` (DTensor inputs always use contiguous shards).
        device_mesh: a ``DeviceMesh`` of shape ``(dp, mp, cp)`` (dims named ``"dp"``, ``"mp"``, ``"cp"``); by
            default one is built over the default process group, whose size must be ``dp * mp * cp``.
        have_attention_mask_batch: whether ``attention_mask`` has a batch dimension.
        alibi: add ALiBi: the standard per-head geometric slopes, unless ``alibi_mask`` is given to forward.
        high_precision: accepted for compatibility; accumulation is always float32.
        deterministic: gradients bit-identical run to run (not in the seed): as in ``flash_attn_func``, at some cost
            in backward speed on Hopper. ``torch.use_deterministic_algorithms(True)`` has the same effect.

    Forward inputs: ``query``, ``key``, ``value`` of shape ``[batch, heads, seq, head_dim]`` (float16, bfloat16 or
    float32); ``attention_mask`` with the seed's semantics, 1 = masked: a ``(1, T, T)`` upper-triangular tile
    (``np.triu(ones, k=1)``) means causal attention, a ``[batch, seq, seq]`` mask (``[seq, seq]`` when
    ``have_attention_mask_batch=False``) is a full mask; ``alibi_mask``: slopes ``(heads,)`` / ``(batch, heads)``,
    or a bias broadcastable to ``(batch, heads, seq, seq)`` such as the seed's ``[batch, heads, 1, seq]``.
    Returns ``[batch, heads, seq, head_dim]`` (a transposed view of the kernel's output; no copy).

    Differences from the seed: sequence lengths need not be multiples of 16; key/value may have fewer heads than
    query (GQA); the output of a row that sees no key is 0.
    """

    def __init__(
        self,
        head_dim: int,
        dropout_rate: float = 0.0,
        prev_block_num: int = NO_LIMIT,
        next_block_num: int = NO_LIMIT,
        tiling_stgy_name: str = "sparse",
        dp: int = 1,
        mp: int = 1,
        have_attention_mask_batch: bool = True,
        alibi: bool = False,
        high_precision: bool = False,
        cp: int = 1,
        cp_layout: str = "zigzag",
        device_mesh=None,
        deterministic: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(head_dim, int) or head_dim <= 0:
            raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
        for name, value in (("prev_block_num", prev_block_num), ("next_block_num", next_block_num)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0 ({NO_LIMIT} = no limit), got {value!r}")
        if tiling_stgy_name not in TILING_STRATEGIES:
            raise ValueError(f"tiling_stgy_name must be one of {sorted(TILING_STRATEGIES)}, got {tiling_stgy_name!r}")
        for name, value in (("dp", dp), ("mp", mp), ("cp", cp)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        check_layout(cp_layout)
        if device_mesh is not None:
            names = tuple(device_mesh.mesh_dim_names or ())
            if names != ("dp", "mp", "cp") or tuple(device_mesh.shape) != (dp, mp, cp):
                raise ValueError(f"device_mesh must have dims ('dp', 'mp', 'cp') of sizes ({dp}, {mp}, {cp}), got "
                                 f"names {names} and shape {tuple(device_mesh.shape)}")
        if cp > 1 and (prev_block_num < NO_LIMIT or next_block_num < NO_LIMIT):
            raise ValueError("local block-sparse attention (prev_block_num/next_block_num) is not supported with "
                             "cp > 1; use window sizes with flash_attention.parallel.ring_flash_attn_func")
        self.head_dim = head_dim
        self.dropout_rate = float(dropout_rate)
        self.prev_block_num = prev_block_num
        self.next_block_num = next_block_num
        self.tiling = TILING_STRATEGIES[tiling_stgy_name]
        self.dp, self.mp, self.cp = dp, mp, cp
        self.cp_layout = cp_layout
        self.device_mesh = device_mesh
        self.have_attention_mask_batch = have_attention_mask_batch
        self.alibi = alibi
        self.high_precision = high_precision
        self.deterministic = bool(deterministic)

    def extra_repr(self) -> str:
        return (f"head_dim={self.head_dim}, dropout_rate={self.dropout_rate}, prev_block_num={self.prev_block_num}, "
                f"next_block_num={self.next_block_num}, tiling_stgy_name={self.tiling.name!r}, dp={self.dp}, "
                f"mp={self.mp}, cp={self.cp}, alibi={self.alibi}"
                + (", deterministic=True" if self.deterministic else ""))

    def window(self) -> Tuple[int, int]:
        """The ``window_size`` in blocks of ``self.tiling.block`` tokens (-1 = unbounded)."""
        left = -1 if self.prev_block_num >= NO_LIMIT else self.prev_block_num
        right = -1 if self.next_block_num >= NO_LIMIT else self.next_block_num
        return left, right

    def _mask(self, mask: torch.Tensor, batch: int, seq_q: int, seq_k: int) -> Tuple[bool, Optional[torch.Tensor]]:
        """Seed mask (1 = masked) -> ``(causal, attn_mask)`` with our convention (True = may attend)."""
        # Recognising the causal tile reads the mask's values, which torch.compile cannot trace without a graph
        # break; compiled, a (1, seq, seq) tile is used as the full mask it also is (same result, slower).
        tile = mask.dim() == 3 and mask.shape[0] == 1 and mask.shape[1] == mask.shape[2]
        if tile and not torch.compiler.is_compiling():
            t = mask.shape[1]
            triu = torch.triu(torch.ones(t, t, dtype=torch.bool, device=mask.device), diagonal=1)
            if torch.equal(mask[0] != 0, triu):
                return True, None
        expected = (batch, seq_q, seq_k) if self.have_attention_mask_batch else (seq_q, seq_k)
        if tile and tuple(mask.shape[1:]) == (seq_q, seq_k):
            expected = tuple(mask.shape)  # a causal tile of the sequence's size, broadcast over the batch
        if tuple(mask.shape) != expected:
            raise ValueError(
                f"attention_mask must be a (1, T, T) upper-triangular causal tile or a full mask of shape "
                f"{'[batch, seq, seq]' if self.have_attention_mask_batch else '[seq, seq]'} = {expected}, "
                f"got {tuple(mask.shape)}")
        keep = mask == 0
        keep = keep[:, None] if self.have_attention_mask_batch else keep[None, None]
        return False, keep

    def _alibi(self, alibi_mask: Optional[torch.Tensor], q: torch.Tensor, head_offset: int = 0,
               total_heads: Optional[int] = None):
        """``(alibi_slopes, attn_bias)`` from the constructor flag and the optional ``alibi_mask``; the default
        slopes are those of heads ``head_offset ..`` of ``total_heads`` (a model-parallel shard's own heads)."""
        batch, nheads = q.shape[0], q.shape[1]
        if alibi_mask is None:
            if not self.alibi:
                return None, None
            slopes = alibi_slopes(total_heads or nheads)[head_offset:head_offset + nheads]
            return torch.tensor(slopes, dtype=torch.float32, device=q.device), None
        if alibi_mask.dim() <= 2 and tuple(alibi_mask.shape) in ((nheads,), (batch, nheads)):
            return alibi_mask.to(torch.float32), None
        return None, alibi_mask.to(q.dtype)

    def _mesh(self, device: torch.device):
        if self.device_mesh is None:
            import torch.distributed as dist
            from torch.distributed.device_mesh import init_device_mesh

            world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
            if world != self.dp * self.mp * self.cp:
                raise ValueError(f"dp * mp * cp = {self.dp * self.mp * self.cp} must equal the default process "
                                 f"group's size ({world}), or pass device_mesh")
            self.device_mesh = init_device_mesh(device.type, (self.dp, self.mp, self.cp),
                                                mesh_dim_names=("dp", "mp", "cp"))
        return self.device_mesh

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        alibi_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Attention of ``[batch, heads, seq, head_dim]`` inputs (this rank's shards when dp * mp * cp > 1)."""
        if self.dp * self.mp * self.cp == 1:
            return self._local_forward(query, key, value, attention_mask, alibi_mask)
        return self._sharded_forward(query, key, value, attention_mask, alibi_mask)

    def _sharded_forward(self, query, key, value, attention_mask, alibi_mask) -> torch.Tensor:
        from torch.distributed.tensor import DTensor, Replicate, Shard

        dtensor = isinstance(query, DTensor)
        layout = self.cp_layout
        if dtensor:
            mesh = query.device_mesh
            if self.device_mesh is not None and mesh != self.device_mesh:
                raise ValueError("query is a DTensor on another device mesh than the layer's device_mesh")
            if tuple(mesh.mesh_dim_names or ()) != ("dp", "mp", "cp") or tuple(mesh.shape) != (self.dp, self.mp,
                                                                                                 self.cp):
                raise ValueError(f"DTensor inputs must live on a (dp, mp, cp) = ({self.dp}, {self.mp}, {self.cp}) "
                                 f"mesh with dims named 'dp', 'mp', 'cp', got {mesh}")
            placements = tuple(query.placements)
            for name, t in (("key", key), ("value", value)):
                if not isinstance(t, DTensor) or tuple(t.placements) != placements or t.device_mesh != mesh:
                    raise ValueError(f"{name} must be a DTensor with query's mesh and placements {placements}")
            for dim, (degree, placement) in enumerate(zip((self.dp, self.mp, self.cp), placements)):
                ok = placement == Shard(dim) or (degree == 1 and placement == Replicate())
                if not ok:
                    raise ValueError(f"DTensor placements must be (Shard(0), Shard(1), Shard(2)) over (dp, mp, cp) "
                                     f"(Replicate() allowed on a dim of size 1), got {placements}")
            query, key, value = query.to_local(), key.to_local(), value.to_local()
            if isinstance(attention_mask, DTensor):
                attention_mask = attention_mask.full_tensor()
            layout = "contiguous"  # DTensor's Shard(2) is a contiguous split
        else:
            mesh = self._mesh(query.device)
        heads_local = query.shape[1]
        out = self._local_forward(query, key, value, attention_mask, alibi_mask,
                                  head_offset=mesh.get_local_rank("mp") * heads_local,
                                  total_heads=heads_local * self.mp,
                                  cp_group=mesh.get_group("cp") if self.cp > 1 else None, cp_layout=layout)
        if dtensor:
            return DTensor.from_local(out, mesh, placements)
        return out

    def _local_forward(self, query, key, value, attention_mask, alibi_mask, head_offset: int = 0,
                       total_heads: Optional[int] = None, cp_group=None, cp_layout: str = "zigzag") -> torch.Tensor:
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, torch.Tensor) or t.dim() != 4:
                raise ValueError(f"{name} must be a [batch, heads, seq, head_dim] tensor, got "
                                 f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
        batch, nheads, seq_q, head_dim = query.shape
        if head_dim != self.head_dim:
            raise ValueError(f"query head_dim {head_dim} differs from the layer's head_dim {self.head_dim}")
        slopes, bias = self._alibi(alibi_mask, query, head_offset, total_heads)
        dropout_p = self.dropout_rate if self.training else 0.0
        if cp_group is not None:
            from ...parallel.ring import ring_flash_attn_func

            causal = False
            if attention_mask is not None:
                t = attention_mask.shape[-1]
                triu = torch.triu(torch.ones(t, t, dtype=torch.bool, device=attention_mask.device), diagonal=1)
                if attention_mask.dim() != 3 or attention_mask.shape[0] != 1 or \
                        attention_mask.shape[1] != t or not torch.equal(attention_mask[0] != 0, triu):
                    raise ValueError("with cp > 1 attention_mask must be None or the (1, T, T) upper-triangular causal "
                                     f"tile; full masks are not supported, got shape {tuple(attention_mask.shape)}")
                causal = True
            if bias is not None:
                raise ValueError("with cp > 1 alibi_mask must be slopes (heads,) or (batch, heads), not a bias")
            out = ring_flash_attn_func(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                       group=cp_group, causal=causal, softmax_scale=1.0 / math.sqrt(self.head_dim),
                                       alibi_slopes=slopes, dropout_p=dropout_p, layout=cp_layout,
                                       deterministic=self.deterministic)
            return out.transpose(1, 2)
        causal, keep = (False, None)
        if attention_mask is not None:
            causal, keep = self._mask(attention_mask, batch, seq_q, key.shape[2])
        window = self.window()
        out = attention(
            query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
            dropout_p=dropout_p,
            softmax_scale=1.0 / math.sqrt(self.head_dim),
            causal=causal,
            window_size=window,
            alibi_slopes=slopes,
            attn_bias=bias,
            attn_mask=keep,
            window_block=self.tiling.block if window != (-1, -1) else 1,
            tiling=self.tiling.name,
            deterministic=self.deterministic,
        )
        return out.transpose(1, 2)
