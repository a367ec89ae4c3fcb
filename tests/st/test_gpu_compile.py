"""torch.compile(fullgraph=True) through our attention on the GPU (the Triton kernels behind the custom ops)."""

import pytest
import torch

from flash_attention.testing import TinyAttentionBlock

pytestmark = pytest.mark.gpu


Block = TinyAttentionBlock


@pytest.mark.parametrize("dropout_p", [0.0, 0.1])
def test_compile_fullgraph_cuda(dropout_p):
    torch.manual_seed(0)
    model = Block(dim=512, heads=8, kv_heads=2, dropout_p=dropout_p).cuda().to(torch.bfloat16)
    x = torch.randn(2, 1024, 512, device="cuda", dtype=torch.bfloat16)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    grads = torch.autograd.grad(out.float().square().sum(), list(model.parameters()))
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
    if dropout_p == 0.0:
        eager = model(x)
        torch.testing.assert_close(out, eager, atol=2e-2, rtol=2e-2)
