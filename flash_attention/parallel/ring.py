"""Context-parallel (ring) attention over ``torch.distributed``.

Each of the ``W`` ranks of a process group holds a shard of the sequence (``layout.py``: contiguous, or zigzag to
balance causal work). The key/value shards travel round the ring: at step ``s`` rank ``r`` holds the keys of rank
``(r - s) mod W``, computes its queries against them with the ordinary kernels (``Features.diag`` places the key
block at its true position relative to the query block, so causal masks, windows and ALiBi see global
positions), and merges the partial outputs through their log-sum-exp. The exchange of the next block
(``batch_isend_irecv``) is posted before the local computation and waited after it, so transfer and compute
overlap (NCCL runs the transfer on its own stream).

The backward needs only the final output and lse of each query row (``library.run_backward``): at step ``s`` each
rank computes its contribution to the gradients of the key block it holds; those partial dK/dV (float32) travel
round the ring with the block and come home after ``W`` hops.

Dropout: every (query chunk, key chunk) pair draws from its own Philox stream (the offset is shifted by the pair's
index), so the pattern is reproducible for a given seed and no two pairs share random numbers; it differs from
the single-device pattern, which is a different sample of the same distribution.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

import torch

from .. import library as _library
from ..features import Features
from ..ops.scores import dropout_row_stride
from ..validation import check_alibi, check_options, check_qkv, check_softcap
from .layout import Chunk, check_layout, chunks_of, num_chunks

Tensor = torch.Tensor


def pair_visible(qc: Chunk, kc: Chunk, causal: bool, window: Tuple[int, int]) -> bool:
    """Whether any query of chunk ``qc`` may see any key of chunk ``kc`` (global positions)."""
    q_first, q_last = qc.global_start, qc.global_start + qc.length - 1
    k_first, k_last = kc.global_start, kc.global_start + kc.length - 1
    left, right = window
    if causal:
        right = 0 if right < 0 else min(right, 0)
    if right >= 0 and k_first > q_last + right:
        return False
    if left >= 0 and k_last < q_first - left:
        return False
    return True


def pair_features(f: Features, qc: Chunk, kc: Chunk, n_chunks: int, batch: int, nheads: int) -> Features:
    """The options of one (query chunk, key chunk) call: the key block's offset, and a private dropout stream."""
    g = f
    if f.dropout_p > 0:
        span = batch * nheads * qc.length * dropout_row_stride(kc.length)
        g = dataclasses.replace(f, offset=f.offset + (qc.index * n_chunks + kc.index) * span)
    return dataclasses.replace(g, diag=qc.global_start - kc.global_start)


def merge_partial(out_acc: Tensor, lse_acc: Tensor, out: Tensor, lse: Tensor, rows: slice) -> None:
    """Fold one partial ``(out, lse)`` over rows ``rows`` into the float32 accumulators, in place.

    ``o = (o_a e^{l_a} + o_b e^{l_b}) / (e^{l_a} + e^{l_b})`` and ``l = log(e^{l_a} + e^{l_b})``; rows that saw no key
    in either part keep output 0 and lse -inf.
    """
    la = lse_acc[:, :, rows]
    lb = lse.to(lse_acc.dtype)
    new = torch.logaddexp(la, lb)
    safe = torch.where(torch.isneginf(new), torch.zeros_like(new), new)
    wa = torch.exp(la - safe).transpose(1, 2).unsqueeze(-1)
    wb = torch.exp(lb - safe).transpose(1, 2).unsqueeze(-1)
    out_acc[:, rows] = out_acc[:, rows] * wa + out.to(out_acc.dtype) * wb
    lse_acc[:, :, rows] = new


def _acc_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def visible_pairs(q_chunks: Sequence[Chunk], k_chunks: Sequence[Chunk], f: Features, n_chunks: int, batch: int,
                  nheads: int):
    """``(query rows, key rows, Features)`` of every chunk pair of one step that some query may attend."""
    for qc in q_chunks:
        for kc in k_chunks:
            if pair_visible(qc, kc, f.causal, f.window_size):
                yield (slice(qc.local_start, qc.local_start + qc.length),
                       slice(kc.local_start, kc.local_start + kc.length),
                       pair_features(f, qc, kc, n_chunks, batch, nheads))


def forward_block(q: Tensor, k: Tensor, v: Tensor, out_acc: Tensor, lse_acc: Tensor, q_chunks: Sequence[Chunk],
                  k_chunks: Sequence[Chunk], f: Features, n_chunks: int) -> None:
    """Accumulate the queries of this rank against one key block (every visible chunk pair)."""
    for rows, keys, g in visible_pairs(q_chunks, k_chunks, f, n_chunks, q.shape[0], q.shape[2]):
        out, lse = _library.run_forward(q[:, rows], k[:, keys], v[:, keys], g)
        merge_partial(out_acc, lse_acc, out, lse, rows)


def backward_block(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dq_acc: Tensor,
                   dkv_part: Tensor, q_chunks: Sequence[Chunk], k_chunks: Sequence[Chunk], f: Features,
                   n_chunks: int) -> None:
    """Add this rank's contribution for one key block: to ``dq_acc`` and to ``dkv_part`` = (dK, dV) of the block."""
    for rows, keys, g in visible_pairs(q_chunks, k_chunks, f, n_chunks, q.shape[0], q.shape[2]):
        # lse rows of one chunk are a strided slice; the kernels read lse as dense (batch, nheads, seqlen_q)
        # (a copy of O(batch x heads x chunk) floats)
        dq, dk, dv, _ = _library.run_backward(dout[:, rows], q[:, rows], k[:, keys], v[:, keys], out[:, rows],
                                              lse[:, :, rows].contiguous(), g)
        dq_acc[:, rows] += dq
        dkv_part[0][:, keys] += dk
        dkv_part[1][:, keys] += dv


class RingComm:
    """Send to the next rank and receive from the previous one, asynchronously (a no-op ring of one)."""

    def __init__(self, group=None) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.group = group
        if dist.is_available() and dist.is_initialized():
            self.world_size = dist.get_world_size(group)
            self.rank = dist.get_rank(group)
            self.next = dist.get_global_rank(group, (self.rank + 1) % self.world_size) if group is not None else \
                (self.rank + 1) % self.world_size
            self.prev = dist.get_global_rank(group, (self.rank - 1) % self.world_size) if group is not None else \
                (self.rank - 1) % self.world_size
        else:
            self.world_size, self.rank = 1, 0

    def exchange(self, t: Tensor) -> Tuple[Tensor, list]:
        """Post ``t`` to the next rank and a receive of the same shape from the previous one; wait with ``wait``."""
        if self.world_size == 1:
            return t, []
        recv = torch.empty_like(t)
        ops = [self.dist.P2POp(self.dist.isend, t, self.next, self.group),
               self.dist.P2POp(self.dist.irecv, recv, self.prev, self.group)]
        return recv, self.dist.batch_isend_irecv(ops)

    @staticmethod
    def wait(reqs: list) -> None:
        for r in reqs:
            r.wait()


def ring_forward(q: Tensor, k: Tensor, v: Tensor, f: Features, comm: RingComm, layout: str
                 ) -> Tuple[Tensor, Tensor]:
    """``(out, lse)`` of this rank's queries against the whole (ring-distributed) sequence."""
    world, rank = comm.world_size, comm.rank
    q_chunks = chunks_of(rank, world, q.shape[1], layout)
    n_chunks = num_chunks(world, layout)
    acc = _acc_dtype(q)
    out_acc = torch.zeros(q.shape, device=q.device, dtype=acc)
    lse_acc = torch.full((q.shape[0], q.shape[2], q.shape[1]), float("-inf"), device=q.device, dtype=acc)
    kv = torch.stack((k, v)) if world > 1 else None
    for step in range(world):
        src = (rank - step) % world
        reqs: list = []
        if step + 1 < world:
            kv_next, reqs = comm.exchange(kv)
        blk_k, blk_v = (k, v) if step == 0 else (kv[0], kv[1])
        forward_block(q, blk_k, blk_v, out_acc, lse_acc, q_chunks, chunks_of(src, world, k.shape[1], layout), f,
                      n_chunks)
        comm.wait(reqs)
        if step + 1 < world:
            kv = kv_next
    return out_acc.to(q.dtype), lse_acc.to(_library._lse_dtype(q))


def ring_backward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, f: Features,
                  comm: RingComm, layout: str) -> Tuple[Tensor, Tensor, Tensor]:
    """``(dq, dk, dv)`` of this rank's shards; partial dK/dV travel round the ring with their key block."""
    world, rank = comm.world_size, comm.rank
    if dout.stride(-1) != 1:
        dout = dout.contiguous()
    q_chunks = chunks_of(rank, world, q.shape[1], layout)
    n_chunks = num_chunks(world, layout)
    acc = _acc_dtype(q)
    dq_acc = torch.zeros(q.shape, device=q.device, dtype=acc)
    kv = torch.stack((k, v)) if world > 1 else None
    dkv: Optional[Tensor] = None
    dkv_reqs: list = []
    for step in range(world):
        src = (rank - step) % world
        kv_reqs: list = []
        if step + 1 < world:
            kv_next, kv_reqs = comm.exchange(kv)
        blk_k, blk_v = (k, v) if step == 0 else (kv[0], kv[1])
        part = torch.zeros((2,) + tuple(k.shape), device=k.device, dtype=acc)
        backward_block(dout, q, blk_k, blk_v, out, lse, dq_acc, part, q_chunks,
                       chunks_of(src, world, k.shape[1], layout), f, n_chunks)
        comm.wait(dkv_reqs)  # the block's accumulator from the previous rank (overlapped with the work above)
        dkv = part if dkv is None else dkv + part
        dkv, dkv_reqs = comm.exchange(dkv)
        comm.wait(kv_reqs)
        if step + 1 < world:
            kv = kv_next
    comm.wait(dkv_reqs)  # after W hops the accumulator of our own block is home
    return dq_acc.to(q.dtype), dkv[0].to(k.dtype), dkv[1].to(v.dtype)


class _RingAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, f: Features, comm: RingComm, layout: str):
        out, lse = ring_forward(q, k, v, f, comm, layout)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.f, ctx.comm, ctx.layout = f, comm, layout
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, dout, _dlse):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = ring_backward(dout, q, k, v, out, lse, ctx.f, ctx.comm, ctx.layout)
        return dq, dk, dv, None, None, None


def ring_flash_attn_func(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    group=None,
    causal: bool = False,
    softmax_scale: Optional[float] = None,
    window_size: Tuple[int, int] = (-1, -1),
    alibi_slopes: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    softcap: float = 0.0,
    layout: str = "contiguous",
    return_attn_probs: bool = False,
    deterministic: bool = False,
):
    """Attention over a sequence sharded across the ranks of ``group`` (context parallelism).

    Args:
        q, k, v: this rank's shards, ``(batch, seqlen_local, nheads, headdim)`` / ``(batch, seqlen_local, nheads_k,
            headdim)``; every rank holds the same number of tokens, laid out by ``layout``.
        group: the process group of the ring (default: the whole world). Without an initialised process group
            the call is ordinary attention on one device.
        causal, softmax_scale, window_size, alibi_slopes, dropout_p, softcap: as in ``flash_attn_func``, in global
            positions (query ``i`` and key ``j`` are tokens of the whole sequence; causal is ``j <= i``).
        layout: ``"contiguous"`` or ``"zigzag"`` (rank ``r`` holds chunks ``r`` and ``2W-1-r``); shard with
            ``shard_sequence`` and reassemble with ``gather_sequence``.
        return_attn_probs: also return the lse ``(batch, nheads, seqlen_local)`` (float32) of this rank's rows.
        deterministic: as in ``flash_attn_func`` (each block's backward keeps dQ in its own kernel; the ring adds
            the blocks' gradients in a fixed order either way).

    Returns:
        This rank's output shard ``(batch, seqlen_local, nheads, headdim)`` (and its lse). Differentiable: the
        backward runs the ring again and returns the gradients of this rank's q, k and v shards.
    """
    check_qkv(q, k, v)
    check_layout(layout)
    if q.shape[1] != k.shape[1]:
        raise ValueError(f"q and k/v shards must hold the same tokens, got seqlen {q.shape[1]} and {k.shape[1]}")
    scale, window = check_options(softmax_scale, window_size, dropout_p, q.shape[-1])
    check_softcap(softcap)
    check_alibi(alibi_slopes, q.shape[0], q.shape[2], q.device)
    comm = RingComm(group)
    rng = _library.new_rng_state(float(dropout_p))
    seed, offset = (int(x) for x in rng.tolist())
    f = Features(scale, bool(causal), window, float(softcap), alibi_slopes, dropout_p=float(dropout_p), seed=seed,
                 offset=offset, deterministic=bool(deterministic))
    out, lse = _RingAttention.apply(q, k, v, f, comm, layout)
    return (out, lse.float()) if return_attn_probs else out


def simulate_ring(qs: List[Tensor], ks: List[Tensor], vs: List[Tensor], f: Features, layout: str
                  ) -> Tuple[List[Tensor], List[Tensor]]:
    """Every rank's ``(out, lse)`` computed in one process (tests; the math of ``ring_forward`` without transport)."""
    world = len(qs)
    n_chunks = num_chunks(world, layout)
    outs, lses = [], []
    for rank, q in enumerate(qs):
        acc = _acc_dtype(q)
        out_acc = torch.zeros(q.shape, device=q.device, dtype=acc)
        lse_acc = torch.full((q.shape[0], q.shape[2], q.shape[1]), float("-inf"), device=q.device, dtype=acc)
        q_chunks = chunks_of(rank, world, q.shape[1], layout)
        for src in range(world):
            forward_block(q, ks[src], vs[src], out_acc, lse_acc, q_chunks,
                          chunks_of(src, world, ks[src].shape[1], layout), f, n_chunks)
        outs.append(out_acc.to(q.dtype))
        lses.append(lse_acc.to(_library._lse_dtype(q)))
    return outs, lses


def simulate_ring_backward(douts: List[Tensor], qs: List[Tensor], ks: List[Tensor], vs: List[Tensor],
                           outs: List[Tensor], lses: List[Tensor], f: Features, layout: str):
    """Every rank's ``(dq, dk, dv)`` computed in one process (tests)."""
    world = len(qs)
    n_chunks = num_chunks(world, layout)
    acc = _acc_dtype(qs[0])
    dqs = [torch.zeros(q.shape, device=q.device, dtype=acc) for q in qs]
    dkvs = [torch.zeros((2,) + tuple(k.shape), device=k.device, dtype=acc) for k in ks]
    for rank in range(world):
        q_chunks = chunks_of(rank, world, qs[rank].shape[1], layout)
        for src in range(world):
            backward_block(douts[rank], qs[rank], ks[src], vs[src], outs[rank], lses[rank], dqs[rank], dkvs[src],
                           q_chunks, chunks_of(src, world, ks[src].shape[1], layout), f, n_chunks)
    return ([dq.to(q.dtype) for dq, q in zip(dqs, qs)], [d[0].to(k.dtype) for d, k in zip(dkvs, ks)],
            [d[1].to(v.dtype) for d, v in zip(dkvs, vs)])


def ring_dropout_keep(batch: int, nheads: int, seqlen_local: int, world_size: int, layout: str, f: Features,
                      device, kernels: bool) -> Tensor:
    """The global keep pattern ``(batch, nheads, S, S)`` of a ring call with ``f``'s seed and offset: each visible
    (query chunk, key chunk) pair's own stream placed at its global position (tests; O(S^2))."""
    from ..interface import _dropout_keep

    seqlen = seqlen_local * world_size
    keep = torch.ones(batch, nheads, seqlen, seqlen, dtype=torch.bool, device=device)
    n_chunks = num_chunks(world_size, layout)
    for rank in range(world_size):
        for src in range(world_size):
            for qc in chunks_of(rank, world_size, seqlen_local, layout):
                for kc in chunks_of(src, world_size, seqlen_local, layout):
                    g = pair_features(f, qc, kc, n_chunks, batch, nheads)
                    qe = torch.empty(batch, qc.length, nheads, 8, device=device)
                    ke = torch.empty(batch, kc.length, 1, 8, device=device)
                    keep[:, :, qc.global_start:qc.global_start + qc.length,
                         kc.global_start:kc.global_start + kc.length] = _dropout_keep(qe, ke, g, kernels)
    return keep
