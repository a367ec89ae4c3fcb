"""A block of keys placed anywhere relative to a block of queries (``Features.diag``): ring attention's building
block. Kernels (interpreter) and CPU path against the float64 reference, forward and backward."""

import math

import pytest
import torch

from flash_attention.features import Features
from flash_attention.library import run_backward, run_forward
from flash_attention.reference import attention_ref
from flash_attention.testing import compare, default_slack

CASES = [
    # (seqlen_q, seqlen_k, diag, causal, window)
    (24, 40, 40, True, (-1, -1)),  # keys entirely in the past: all visible
    (24, 40, 10, True, (-1, -1)),  # partly visible
    (24, 40, -30, True, (-1, -1)),  # keys entirely in the future: rows see nothing
    (32, 32, 64, False, (20, 0)),  # window reaches only the end of the block
    (32, 48, -8, False, (4, 12)),
]


@pytest.mark.parametrize("seqlen_q,seqlen_k,diag,causal,window", CASES)
@pytest.mark.parametrize("alibi", [False, True])
def test_diag_offset(backend, seqlen_q, seqlen_k, diag, causal, window, alibi):
    device, dtype = backend, torch.float16
    q = torch.randn(2, seqlen_q, 4, 32, device=device, dtype=dtype)
    k = torch.randn(2, seqlen_k, 2, 32, device=device, dtype=dtype)
    v = torch.randn(2, seqlen_k, 2, 32, device=device, dtype=dtype)
    dout = torch.randn_like(q)
    slopes = torch.rand(4, device=device) * 0.3 if alibi else None
    scale = 1 / math.sqrt(32)
    f = Features(scale, causal, window, alibi_slopes=slopes, diag=diag)
    out, lse = run_forward(q, k, v, f)
    dq, dk, dv, _ = run_backward(dout, q, k, v, out, lse, f)

    def ref(upcast):
        leaves = [t.detach().to(torch.float64 if upcast else dtype).requires_grad_() for t in (q, k, v)]
        o, l = attention_ref(*leaves, scale, causal, window, upcast=upcast, alibi_slopes=slopes, diag=diag)
        return [o, l, *torch.autograd.grad(o, leaves, dout.to(o.dtype))]

    hi, lo = ref(True), ref(False)
    slack = default_slack(dtype)
    compare("out", out, hi[0], lo[0], slack)
    finite = torch.isfinite(hi[1])
    assert torch.equal(torch.isneginf(lse.float()), ~finite)
    assert torch.allclose(lse.float()[finite], hi[1][finite], atol=1e-3)
    for name, ours, r64, rlow in zip(("dq", "dk", "dv"), (dq, dk, dv), hi[2:], lo[2:]):
        compare(name, ours, r64, rlow, slack)
