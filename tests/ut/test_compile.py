"""torch.library custom ops: opcheck, and torch.compile(fullgraph=True) through our attention (CPU path)."""

import pytest
import torch

from flash_attention import use_backend
from flash_attention.testing import TinyAttentionBlock
from flash_attention.library import backward_op, forward_op, new_rng_state


@pytest.fixture(autouse=True)
def _torch_backend():
    with use_backend("torch"):
        yield


def _forward_args(dropout_p=0.0, bias=None, causal=True):
    q = torch.randn(2, 24, 4, 16, requires_grad=True)
    k, v = (torch.randn(2, 32, 2, 16, requires_grad=True) for _ in range(2))
    return (q, k, v, None, bias, None, new_rng_state(dropout_p), None, None, 0.25, causal, -1, -1, 0.0, dropout_p, 1,
            "auto", 0, 0, False)


@pytest.mark.parametrize("dropout_p", [0.0, 0.2])
def test_opcheck_forward(dropout_p):
    torch.library.opcheck(forward_op, _forward_args(dropout_p))


def test_opcheck_forward_with_bias_grad():
    bias = torch.randn(1, 4, 24, 32, requires_grad=True)
    torch.library.opcheck(forward_op, _forward_args(bias=bias, causal=False))


def test_opcheck_backward():
    args = _forward_args()
    q, k, v = (t.detach() for t in args[:3])
    out, lse = forward_op(q, k, v, *args[3:])
    dout = torch.randn_like(out)
    torch.library.opcheck(backward_op, (dout, q, k, v, out, lse, *args[3:], False))


Block = TinyAttentionBlock


def test_compile_fullgraph_matches_eager():
    torch.manual_seed(0)
    model = Block()
    x = torch.randn(2, 40, 64)
    compiled = torch.compile(model, fullgraph=True)
    eager_out = model(x)
    out = compiled(x)
    torch.testing.assert_close(out, eager_out, atol=1e-5, rtol=1e-5)
    eager_grads = torch.autograd.grad(eager_out.square().sum(), list(model.parameters()))
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    for a, b in zip(grads, eager_grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_compile_fullgraph_with_dropout():
    torch.manual_seed(0)
    model = Block(dropout_p=0.1)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(torch.randn(2, 40, 64))
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)


def test_compile_seed_layer_with_causal_tile():
    """The seed layer compiles with fullgraph=True, its causal tile included (used as a full mask then)."""
    import numpy as np

    from flash_attention import FlashAttention

    layer = FlashAttention(16, prev_block_num=1, next_block_num=0, tiling_stgy_name="sparse64")
    q, k, v = (torch.randn(2, 2, 100, 16) for _ in range(3))
    mask = torch.from_numpy(np.triu(np.ones((1, 100, 100), dtype=np.float32), k=1))
    eager = layer(q, k, v, mask)
    compiled = torch.compile(layer, fullgraph=True)(q, k, v, mask)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
