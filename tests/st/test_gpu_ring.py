"""Ring attention's chunk-pair math with the GPU kernels (every rank simulated in one process), bf16/fp16, real
head dims, against the float64 reference. The multi-GPU transport runs in ``python -m flash_attention.bench_ring``
under torchrun (NCCL); the CPU suite runs it over gloo."""

import math

import pytest
import torch

from flash_attention.features import Features
from flash_attention.parallel import layout as lay
from flash_attention.parallel.ring import ring_dropout_keep, simulate_ring, simulate_ring_backward
from flash_attention.reference import attention_ref
from flash_attention.testing import compare, default_slack

pytestmark = pytest.mark.gpu

CASES = {  # world, layout, causal, window, alibi, softcap, dropout
    "contig2": (2, "contiguous", False, (-1, -1), False, 0.0, 0.0),
    "zigzag2_causal": (2, "zigzag", True, (-1, -1), False, 0.0, 0.0),
    "zigzag4_causal_alibi": (4, "zigzag", True, (-1, -1), True, 0.0, 0.0),
    "contig3_window": (3, "contiguous", True, (700, 0), False, 0.0, 0.0),
    "zigzag2_softcap_window": (2, "zigzag", False, (300, 200), False, 20.0, 0.0),
    "zigzag2_dropout": (2, "zigzag", True, (-1, -1), False, 0.0, 0.15),
}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("name", list(CASES))
def test_ring_chunk_pairs(name, head_dim, dtype):
    world, layout, causal, window, alibi, softcap, dropout = CASES[name]
    batch, seqlen, nheads, nheads_k = 2, 512 * world, 8, 2
    q = torch.randn(batch, seqlen, nheads, head_dim, device="cuda", dtype=dtype)
    k = torch.randn(batch, seqlen, nheads_k, head_dim, device="cuda", dtype=dtype)
    v = torch.randn(batch, seqlen, nheads_k, head_dim, device="cuda", dtype=dtype)
    dout = torch.randn_like(q)
    slopes = torch.rand(nheads, device="cuda") * 0.3 if alibi else None
    scale = 1 / math.sqrt(head_dim)
    f = Features(scale, causal, window, softcap, slopes, dropout_p=dropout, seed=11, offset=7)
    shard = lambda t: [lay.shard_sequence(t, r, world, layout).contiguous() for r in range(world)]  # noqa: E731
    outs, lses = simulate_ring(shard(q), shard(k), shard(v), f, layout)
    grads = simulate_ring_backward(shard(dout), shard(q), shard(k), shard(v), outs, lses, f, layout)
    keep = ring_dropout_keep(batch, nheads, seqlen // world, world, layout, f, "cuda", True) if dropout else None

    def ref(upcast):
        leaves = [t.detach().to(torch.float64 if upcast else dtype).requires_grad_() for t in (q, k, v)]
        o, l = attention_ref(*leaves, scale, causal, window, upcast=upcast, softcap=softcap, alibi_slopes=slopes,
                             dropout_p=dropout, dropout_keep=keep)
        return [o, l, *torch.autograd.grad(o, leaves, dout.to(o.dtype))]

    hi, lo = ref(True), ref(False)
    slack = default_slack(dtype)
    compare("out", lay.unshard_sequence(outs, layout), hi[0], lo[0], slack)
    for gname, parts, r64, rlow in zip(("dq", "dk", "dv"), grads, hi[2:], lo[2:]):
        compare(gname, lay.unshard_sequence(parts, layout), r64, rlow, slack)
