"""Multi-process correctness checks of ring attention and the sharded layer (gloo on CPUs, NCCL on GPUs).

Every rank builds the same full inputs from a fixed seed, runs its shard, gathers the results, and compares them
with the float64 reference under the accuracy criterion of ``flash_attention.testing`` (at most twice the error
of the same computation in the input precision), and with the single-device call. Used by ``tests/ut/test_ring.py``
(``torch.multiprocessing`` spawn, gloo) and ``benchmarks/bench_ring.py`` (torchrun, NCCL).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

from ..features import Features
from ..library import new_rng_state, use_kernels
from ..reference import attention_ref
from ..testing import compare, default_slack, grad_magnitude
from .layout import gather_sequence, shard_sequence
from .ring import ring_dropout_keep, ring_flash_attn_func, simulate_ring, simulate_ring_backward


@dataclass(frozen=True)
class RingCase:
    batch: int = 2
    seqlen: int = 64
    nheads: int = 4
    nheads_k: int = 2
    head_dim: int = 16
    dtype: str = "float32"
    causal: bool = False
    window: Tuple[int, int] = (-1, -1)
    alibi: bool = False
    softcap: float = 0.0
    dropout_p: float = 0.0
    layout: str = "contiguous"

    def label(self) -> str:
        parts = [self.layout, self.dtype, f"b{self.batch}-s{self.seqlen}-h{self.nheads}_{self.nheads_k}-d{self.head_dim}"]
        parts += ["causal"] if self.causal else []
        parts += [f"w{self.window[0]}_{self.window[1]}"] if self.window != (-1, -1) else []
        parts += ["alibi"] if self.alibi else []
        parts += [f"softcap{self.softcap}"] if self.softcap else []
        parts += [f"dropout{self.dropout_p}"] if self.dropout_p else []
        return "-".join(parts)


def _inputs(case: RingCase, device: torch.device):
    g = torch.Generator().manual_seed(1234)
    dtype = getattr(torch, case.dtype)
    mk = lambda h: torch.randn(case.batch, case.seqlen, h, case.head_dim, generator=g).to(device, dtype)  # noqa: E731
    q, k, v, dout = mk(case.nheads), mk(case.nheads_k), mk(case.nheads_k), mk(case.nheads)
    slopes = (torch.rand(case.nheads, generator=g) * 0.3).to(device) if case.alibi else None
    return q, k, v, dout, slopes


def check_ring_case(case: RingCase, device: torch.device, group=None) -> Dict[str, float]:
    """Run one case on every rank of ``group``; raise AssertionError on rank-local failure; return the errors."""
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    q, k, v, dout, slopes = _inputs(case, device)
    shard = lambda t: shard_sequence(t, rank, world, case.layout).detach().clone()  # noqa: E731
    leaves = [shard(t).requires_grad_() for t in (q, k, v)]
    torch.manual_seed(99)
    out, lse = ring_flash_attn_func(*leaves, group=group, causal=case.causal, window_size=case.window,
                                    alibi_slopes=slopes, dropout_p=case.dropout_p, softcap=case.softcap,
                                    layout=case.layout, return_attn_probs=True)
    out.backward(shard(dout))
    gathered = [gather_sequence(t.detach(), group, case.layout) for t in (out, *[x.grad for x in leaves])]
    lse_full = gather_sequence(lse.transpose(1, 2).contiguous(), group, case.layout).transpose(1, 2)

    scale = 1.0 / math.sqrt(case.head_dim)
    keep = None
    if case.dropout_p > 0:
        torch.manual_seed(99)
        seed, offset = (int(x) for x in new_rng_state(case.dropout_p).tolist())
        f = Features(scale, case.causal, case.window, case.softcap, slopes, dropout_p=case.dropout_p, seed=seed,
                     offset=offset)
        keep = ring_dropout_keep(case.batch, case.nheads, case.seqlen // world, world, case.layout, f, device,
                                 use_kernels(q))

    def ref(upcast: bool) -> List[torch.Tensor]:
        ls = [t.detach().to(torch.float64 if upcast else t.dtype).requires_grad_() for t in (q, k, v)]
        o, l = attention_ref(*ls, scale, case.causal, case.window, upcast=upcast, alibi_slopes=slopes,
                             softcap=case.softcap, dropout_p=case.dropout_p, dropout_keep=keep)
        return [o, l, *torch.autograd.grad(o, ls, dout.to(o.dtype))]

    hi, lo = ref(True), ref(False)
    slack = default_slack(q.dtype)
    errors = {}
    for name, ours, r64, rlow in zip(("out", "dq", "dk", "dv"), gathered, [hi[0]] + hi[2:], [lo[0]] + lo[2:]):
        errors[name] = compare(f"{case.label()} {name}", ours, r64, rlow, slack)["max"]
    finite = torch.isfinite(hi[1])
    assert torch.equal(torch.isneginf(lse_full), ~finite), f"{case.label()}: lse -inf pattern differs"
    errors["lse"] = (lse_full[finite].double() - hi[1][finite]).abs().max().item() if finite.any() else 0.0
    assert errors["lse"] < 1e-3, f"{case.label()}: lse error {errors['lse']}"
    return errors


def check_simulated_ring(world: int, layout: str, causal: bool, window: Tuple[int, int], alibi: bool,
                         softcap: float, dropout: float, dtype: torch.dtype, device, batch: int = 2,
                         seqlen_per_rank: int = 16, nheads: int = 4, nheads_k: int = 2, head_dim: int = 16) -> None:
    """Every rank's chunk pairs computed in one process (``simulate_ring``) and merged through lse, against the
    float64 reference of the full sequence: forward, lse and gradients."""
    from .layout import unshard_sequence

    seqlen = seqlen_per_rank * world
    q = torch.randn(batch, seqlen, nheads, head_dim, device=device, dtype=dtype)
    k = torch.randn(batch, seqlen, nheads_k, head_dim, device=device, dtype=dtype)
    v = torch.randn(batch, seqlen, nheads_k, head_dim, device=device, dtype=dtype)
    dout = torch.randn_like(q)
    slopes = torch.rand(nheads, device=device) * 0.3 if alibi else None
    scale = 1 / math.sqrt(head_dim)
    f = Features(scale, causal, window, softcap, slopes, dropout_p=dropout, seed=5, offset=123)
    shard = lambda t: [shard_sequence(t, r, world, layout).contiguous() for r in range(world)]  # noqa: E731
    outs, lses = simulate_ring(shard(q), shard(k), shard(v), f, layout)
    grads = simulate_ring_backward(shard(dout), shard(q), shard(k), shard(v), outs, lses, f, layout)
    keep = (ring_dropout_keep(batch, nheads, seqlen_per_rank, world, layout, f, device, use_kernels(q))
            if dropout else None)

    def ref(upcast: bool) -> List[torch.Tensor]:
        leaves = [t.detach().to(torch.float64 if upcast else dtype).requires_grad_() for t in (q, k, v)]
        o, l = attention_ref(*leaves, scale, causal, window, upcast=upcast, softcap=softcap, alibi_slopes=slopes,
                             dropout_p=dropout, dropout_keep=keep)
        return [o, l, *torch.autograd.grad(o, leaves, dout.to(o.dtype))]

    hi, lo = ref(True), ref(False)
    slack = default_slack(dtype)
    out = unshard_sequence(outs, layout)
    compare("out", out, hi[0], lo[0], slack)
    mag = grad_magnitude(dout, hi[0])
    for name, parts, r64, rlow in zip(("dq", "dk", "dv"), grads, hi[2:], lo[2:]):
        compare(name, unshard_sequence(parts, layout), r64, rlow, slack, mag if name != "dv" else 1.0)
    lse = unshard_sequence([x.transpose(1, 2) for x in lses], layout).transpose(1, 2)
    finite = torch.isfinite(hi[1])
    assert torch.equal(torch.isneginf(lse), ~finite), "lse: -inf rows differ from the reference"
    assert torch.allclose(lse[finite].double(), hi[1][finite].double(), atol=1e-3)


def default_cases(world_size: int) -> List[RingCase]:
    """Both layouts x causal or not, with GQA throughout, plus window, ALiBi, softcap, dropout and bf16 cases."""
    seqlen = 16 * world_size  # zigzag chunks of 8 tokens
    cases = [RingCase(seqlen=seqlen, causal=c, layout=lay) for lay in ("contiguous", "zigzag") for c in (False, True)]
    cases += [
        RingCase(seqlen=seqlen, causal=True, window=(11, 0), alibi=True, layout="zigzag"),
        RingCase(seqlen=seqlen, window=(5, 9), softcap=5.0, layout="contiguous"),
        RingCase(seqlen=seqlen, causal=True, dropout_p=0.2, layout="zigzag"),
        RingCase(seqlen=seqlen, causal=True, dtype="bfloat16", layout="zigzag"),
    ]
    return cases


@dataclass
class LayerCase:
    dp: int = 1
    mp: int = 1
    cp: int = 1
    causal: bool = True
    alibi: bool = False
    dtensor: bool = False
    extra: Dict[str, object] = field(default_factory=dict)


def check_layer_case(case: LayerCase, device: torch.device) -> float:
    """The seed layer with ``dp x mp x cp`` over the default group against the same layer on the full tensors."""
    from torch.distributed.device_mesh import init_device_mesh

    from ..nn.layer.flash_attention import FlashAttention

    batch, nheads, seqlen, head_dim = 2 * case.dp, 2 * case.mp, 16 * case.cp, 16
    g = torch.Generator().manual_seed(7)
    q, k, v, dout = (torch.randn(batch, nheads, seqlen, head_dim, generator=g).to(device) for _ in range(4))
    mask = torch.triu(torch.ones(1, seqlen, seqlen, device=device), diagonal=1) if case.causal else None
    full = FlashAttention(head_dim, alibi=case.alibi)
    expected = full(q, k, v, mask)
    mesh = init_device_mesh(device.type, (case.dp, case.mp, case.cp), mesh_dim_names=("dp", "mp", "cp"))
    layer = FlashAttention(head_dim, dp=case.dp, mp=case.mp, cp=case.cp, alibi=case.alibi, device_mesh=mesh,
                           **case.extra)
    d, m, c = (mesh.get_local_rank(n) for n in ("dp", "mp", "cp"))
    bl, hl = batch // case.dp, nheads // case.mp

    def local(t: torch.Tensor) -> torch.Tensor:
        t = t[d * bl:(d + 1) * bl, m * hl:(m + 1) * hl]
        return shard_sequence(t, c, case.cp, layer.cp_layout, dim=2).contiguous()

    if case.dtensor:
        from torch.distributed.tensor import DTensor, Shard

        place = [Shard(0), Shard(1), Shard(2)]
        ins = [DTensor.from_local(t[d * bl:(d + 1) * bl, m * hl:(m + 1) * hl].narrow(
            2, c * (seqlen // case.cp), seqlen // case.cp).contiguous(), mesh, place) for t in (q, k, v)]
        out = layer(*ins, mask)
        assert isinstance(out, DTensor) and tuple(out.shape) == tuple(q.shape), "DTensor in, DTensor out"
        got = out.full_tensor()
        err = (got - expected).abs().max().item()
    else:
        out = layer(local(q), local(k), local(v), mask)
        want = local(expected)
        err = (out - want).abs().max().item()
    assert err < 1e-4, f"layer {case}: max error {err} against the unsharded layer"
    return err


def run_checks(rank: int, world_size: int, init_method: str, backend: str = "gloo",
               cases: Optional[Sequence[object]] = None) -> None:
    """Process entry point (``torch.multiprocessing.spawn`` passes ``rank`` first)."""
    if backend == "gloo":
        # single-machine tests: bind to loopback, so a host name that does not resolve cannot break them
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    try:
        for case in (cases if cases is not None else default_cases(world_size)):
            if isinstance(case, LayerCase):
                check_layer_case(case, device)
            else:
                check_ring_case(case, device)
    finally:
        dist.destroy_process_group()
