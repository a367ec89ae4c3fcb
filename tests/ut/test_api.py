"""Public API: packed variants, return values, validation errors, backends and edge shapes."""

import pytest
import torch

from flash_attention import flash_attn_func, flash_attn_kvpacked_func, flash_attn_qkvpacked_func, use_backend
from flash_attention.reference import attention_ref
from flash_attention.testing import AttnCase, check_api





@pytest.mark.parametrize("causal", [False, True])
def test_api_autograd(backend, causal):
    check_api(flash_attn_func, AttnCase(2, 40, 56, 4, 2, 32, causal), torch.float16, backend)


def test_qkvpacked_matches_unpacked(backend):
    qkv = torch.randn(2, 37, 3, 4, 32, dtype=torch.float16, device=backend, requires_grad=True)
    out = flash_attn_qkvpacked_func(qkv, causal=True)
    (dqkv,) = torch.autograd.grad(out.float().square().sum(), qkv)
    q, k, v = (qkv.detach()[:, :, i].clone().requires_grad_() for i in range(3))
    out2 = flash_attn_func(q, k, v, causal=True)
    grads = torch.autograd.grad(out2.float().square().sum(), (q, k, v))
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(dqkv, torch.stack(grads, dim=2))


def test_kvpacked_matches_unpacked(backend):
    q = torch.randn(2, 29, 4, 32, dtype=torch.float16, device=backend, requires_grad=True)
    kv = torch.randn(2, 41, 2, 2, 32, dtype=torch.float16, device=backend, requires_grad=True)
    out = flash_attn_kvpacked_func(q, kv)
    dq, dkv = torch.autograd.grad(out.float().sum(), (q, kv))
    k, v = (kv.detach()[:, :, i].clone().requires_grad_() for i in range(2))
    q2 = q.detach().clone().requires_grad_()
    out2 = flash_attn_func(q2, k, v)
    dq2, dk2, dv2 = torch.autograd.grad(out2.float().sum(), (q2, k, v))
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(dq, dq2)
    torch.testing.assert_close(dkv, torch.stack((dk2, dv2), dim=2))


def test_return_attn_probs(backend):
    q, k, v = (torch.randn(1, n, 2, 16, dtype=torch.float16, device=backend) for n in (9, 7, 7))
    out, lse, probs = flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    ref_out, ref_lse = attention_ref(q, k, v, causal=True)
    assert lse.dtype == torch.float32 and lse.shape == (1, 2, 9)
    assert probs.shape == (1, 2, 9, 7)
    assert torch.isneginf(lse[..., :2]).all() and torch.all(out[:, :2] == 0)
    torch.testing.assert_close(lse[..., 2:].cpu(), ref_lse[..., 2:].cpu(), atol=1e-3, rtol=1e-3)
    rows = probs.float().sum(-1)
    torch.testing.assert_close(rows[..., 2:], torch.ones_like(rows[..., 2:]), atol=1e-2, rtol=0)


def test_fully_masked_rows_give_zero_and_finite_grads(backend):
    q = torch.randn(1, 10, 2, 16, dtype=torch.float16, device=backend, requires_grad=True)
    k = torch.randn(1, 4, 2, 16, dtype=torch.float16, device=backend, requires_grad=True)
    v = torch.randn(1, 4, 2, 16, dtype=torch.float16, device=backend, requires_grad=True)
    out = flash_attn_func(q, k, v, causal=True)
    grads = torch.autograd.grad(out.float().sum(), (q, k, v))
    assert torch.all(out[:, :6] == 0)
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.all(grads[0][:, :6] == 0)


def test_sum_backward_with_expanded_grad(backend):
    """out.sum() hands the backward a gradient with zero strides; it must still work."""
    q, k, v = (torch.randn(1, 20, 2, 16, dtype=torch.float16, device=backend, requires_grad=True) for _ in range(3))
    flash_attn_func(q, k, v).sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize("shape_q,shape_kv", [((0, 8, 2, 16), (0, 8, 2, 16)), ((2, 0, 2, 16), (2, 8, 2, 16)),
                                              ((2, 8, 2, 16), (2, 0, 2, 16))])
def test_empty(backend, shape_q, shape_kv):
    q = torch.randn(shape_q, dtype=torch.float16, device=backend, requires_grad=True)
    k = torch.randn(shape_kv, dtype=torch.float16, device=backend, requires_grad=True)
    v = torch.randn(shape_kv, dtype=torch.float16, device=backend, requires_grad=True)
    out, lse, _ = flash_attn_func(q, k, v, return_attn_probs=True)
    assert out.shape == q.shape and torch.all(out == 0)
    assert torch.isneginf(lse).all()
    out.float().sum().backward()
    assert k.grad.shape == k.shape and torch.all(k.grad == 0)


# --- validation -------------------------------------------------------------------------------------------

def _qkv(**over):
    t = dict(q=torch.randn(1, 8, 4, 16, dtype=torch.float16), k=torch.randn(1, 8, 2, 16, dtype=torch.float16),
             v=torch.randn(1, 8, 2, 16, dtype=torch.float16))
    t.update(over)
    return t["q"], t["k"], t["v"]


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(q=torch.randn(8, 4, 16)), ValueError, "q must have 4 dimensions"),
    (dict(k=torch.randn(1, 8, 2, 16, dtype=torch.float32)), TypeError, "k must have the same dtype"),
    (dict(q=torch.ones(1, 8, 4, 16, dtype=torch.int32)), TypeError, "q must have dtype"),
    (dict(v=torch.randn(1, 9, 2, 16, dtype=torch.float16)), ValueError, "v must have shape"),
    (dict(k=torch.randn(2, 8, 2, 16, dtype=torch.float16)), ValueError, "batch"),
    (dict(q=torch.randn(1, 8, 4, 12, dtype=torch.float16)), ValueError, "headdim"),
    (dict(q=torch.randn(1, 8, 3, 16, dtype=torch.float16)), ValueError, "multiple of nheads_k"),
    (dict(q=torch.randn(1, 8, 4, 32, dtype=torch.float16)[..., ::2]), ValueError, "contiguous last dimension"),
    (dict(q=[1, 2, 3]), TypeError, "q must be a torch.Tensor"),
])
def test_validation_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        flash_attn_func(*_qkv(**kwargs))


def test_head_dim_too_large():
    q = torch.randn(1, 4, 2, 264, dtype=torch.float16)
    with pytest.raises(ValueError, match="headdim must be a multiple of 8 between 8 and 256"):
        flash_attn_func(q, q, q)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(window_size=(-2, 0)), ValueError, "window_size left"),
    (dict(window_size=(1, 2, 3)), ValueError, "window_size must be a pair"),
    (dict(softmax_scale=-1.0), ValueError, "softmax_scale"),
    (dict(softmax_scale="x"), TypeError, "softmax_scale"),
    (dict(dropout_p=1.0), ValueError, "dropout_p"),
    (dict(dropout_p=-0.1), ValueError, "dropout_p"),
])
def test_option_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        flash_attn_func(*_qkv(), **kwargs)


def test_packed_shape_errors():
    with pytest.raises(ValueError, match="qkv must have shape"):
        flash_attn_qkvpacked_func(torch.randn(1, 8, 2, 4, 16, dtype=torch.float16))
    with pytest.raises(ValueError, match="kv must have shape"):
        flash_attn_kvpacked_func(torch.randn(1, 8, 4, 16, dtype=torch.float16),
                                 torch.randn(1, 8, 3, 2, 16, dtype=torch.float16))


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        with use_backend("cuda-magic"):
            pass
