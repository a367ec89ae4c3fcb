"""torch.compile(fullgraph=True) through our attention on the GPU (the Triton kernels behind the custom ops)."""

import pytest
import torch

from flash_attention import flash_attn_func

pytestmark = pytest.mark.gpu


class Block(torch.nn.Module):
    def __init__(self, dim=512, heads=8, kv_heads=2, dropout_p=0.0):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim, self.dropout_p = heads, kv_heads, dim // heads, dropout_p
        self.q = torch.nn.Linear(dim, dim)
        self.kv = torch.nn.Linear(dim, 2 * kv_heads * self.head_dim)
        self.o = torch.nn.Linear(dim, dim)

    def forward(self, x):
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.heads, self.head_dim)
        k, v = self.kv(x).view(b, s, 2, self.kv_heads, self.head_dim).unbind(2)
        y = flash_attn_func(q, k, v, dropout_p=self.dropout_p, causal=True)
        return self.o(y.reshape(b, s, -1))


@pytest.mark.parametrize("dropout_p", [0.0, 0.1])
def test_compile_fullgraph_cuda(dropout_p):
    torch.manual_seed(0)
    model = Block(dropout_p=dropout_p).cuda().to(torch.bfloat16)
    x = torch.randn(2, 1024, 512, device="cuda", dtype=torch.bfloat16)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    grads = torch.autograd.grad(out.float().square().sum(), list(model.parameters()))
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
    if dropout_p == 0.0:
        eager = model(x)
        torch.testing.assert_close(out, eager, atol=2e-2, rtol=2e-2)
