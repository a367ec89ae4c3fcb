"""``deterministic``: the public flag reaches the backward's Features, which then pins dQ to the split kernel.

On Hopper the default backward may add dQ through TMA reductions whose order varies run to run; the CPU
interpreter cannot show that, so these tests check the plumbing: the flag travels from every entry point (eager
and through the compiled custom ops) down to ``attention_backward``, and there skips the device's default mode.
"""

from unittest import mock

import pytest
import torch

import flash_attention.cpu as cpu_path
import flash_attention.library as library
import flash_attention.ops.backward as backward
from flash_attention import use_backend
from flash_attention.features import Features
from flash_attention.interface import flash_attn_func, flash_attn_kvpacked_func, flash_attn_qkvpacked_func
from flash_attention.varlen import flash_attn_varlen_func

BATCH, SEQLEN, HEADS, HEAD_DIM = 1, 32, 2, 32


def _qkv(device: str, dtype: torch.dtype = torch.float16):
    return [torch.randn(BATCH, SEQLEN, HEADS, HEAD_DIM, device=device, dtype=dtype, requires_grad=True)
            for _ in range(3)]


def _backward_features(spy: mock.MagicMock) -> Features:
    assert spy.call_count == 1
    f = spy.call_args.args[6]  # attention_backward(dout, q, k, v, out, lse, f, ...)
    assert isinstance(f, Features)
    return f


def _plain(q, k, v, **kw):
    return flash_attn_func(q, k, v, causal=True, **kw)


def _qkvpacked(q, k, v, **kw):
    return flash_attn_qkvpacked_func(torch.stack((q, k, v), dim=2), causal=True, **kw)


def _kvpacked(q, k, v, **kw):
    return flash_attn_kvpacked_func(q, torch.stack((k, v), dim=2), causal=True, **kw)


def _varlen(q, k, v, **kw):
    cu = torch.tensor([0, 12, SEQLEN], dtype=torch.int32, device=q.device)
    return flash_attn_varlen_func(q[0], k[0], v[0], cu, cu, 20, 20, causal=True, **kw)


def _seed_layer(q, k, v, deterministic=None):
    from flash_attention import FlashAttention

    kw = {} if deterministic is None else {"deterministic": deterministic}
    layer = FlashAttention(HEAD_DIM, **kw)
    causal = torch.ones(1, SEQLEN, SEQLEN, device=q.device).triu(1)  # the seed's mask: 1 = masked
    return layer(*(t.transpose(1, 2) for t in (q, k, v)), attention_mask=causal)


def _ring(q, k, v, **kw):
    from flash_attention.parallel import ring_flash_attn_func

    return ring_flash_attn_func(q, k, v, causal=True, **kw)  # no process group: one rank


@pytest.mark.parametrize("entry", [_plain, _qkvpacked, _kvpacked, _varlen, _seed_layer, _ring],
                         ids=lambda fn: fn.__name__[1:])
@pytest.mark.parametrize("deterministic", [None, False, True])
def test_flag_reaches_attention_backward(entry, deterministic, kernel_device):
    q, k, v = _qkv(kernel_device)
    kw = {} if deterministic is None else {"deterministic": deterministic}
    spy = mock.MagicMock(wraps=backward.attention_backward)
    with use_backend("triton"), mock.patch.object(library, "attention_backward", spy):
        entry(q, k, v, **kw).float().square().sum().backward()
    assert _backward_features(spy).deterministic is bool(deterministic)
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize("deterministic", [False, True])
def test_deterministic_skips_default_dq_mode(deterministic, kernel_device):
    """Deterministic: dQ_mode "split" without asking the device's default (on Hopper possibly TMA reductions)."""
    q, k, v = _qkv(kernel_device)
    spy = mock.MagicMock(wraps=backward.default_dq_mode)
    with use_backend("triton"), mock.patch.object(backward, "default_dq_mode", spy):
        flash_attn_func(q, k, v, causal=True, deterministic=deterministic).float().sum().backward()
    assert spy.called is not deterministic


def test_torch_deterministic_switch_skips_default_dq_mode(kernel_device):
    """``torch.use_deterministic_algorithms(True)`` pins dQ to its own kernel as the flag does."""
    q, k, v = _qkv(kernel_device)
    spy = mock.MagicMock(wraps=backward.default_dq_mode)
    previous = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        with use_backend("triton"), mock.patch.object(backward, "default_dq_mode", spy):
            flash_attn_func(q, k, v, causal=True).float().sum().backward()
    finally:
        torch.use_deterministic_algorithms(previous)
    assert not spy.called


def test_deterministic_runs_agree_bitwise(kernel_device):
    q, k, v = _qkv(kernel_device)
    grads = []
    with use_backend("triton"):
        for _ in range(2):
            out = flash_attn_func(q, k, v, causal=True, deterministic=True)
            grads.append(torch.autograd.grad(out.float().square().sum(), (q, k, v)))
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_compiled_custom_ops_carry_flag():
    """Under torch.compile the flag is an argument of the forward and backward custom ops (CPU path; aot_eager
    traces the same fake ops and autograd formula as inductor, without its code generation)."""
    torch._dynamo.reset()
    q, k, v = (t.detach().float().requires_grad_() for t in _qkv("cpu"))
    spy = mock.MagicMock(wraps=cpu_path.attention_backward_cpu)

    def fn(q, k, v):
        return flash_attn_func(q, k, v, causal=True, deterministic=True)

    with use_backend("torch"), mock.patch.object(cpu_path, "attention_backward_cpu", spy):
        out = torch.compile(fn, fullgraph=True, backend="aot_eager")(q, k, v)
        out.square().sum().backward()
    assert _backward_features(spy).deterministic is True
    expected = flash_attn_func(*(t.detach() for t in (q, k, v)), causal=True)
    torch.testing.assert_close(out.detach(), expected)


def test_opcheck_backward_deterministic():
    q, k, v = (t.detach().float() for t in _qkv("cpu"))
    args = (None, None, None, library.new_rng_state(0.0), None, None, HEAD_DIM ** -0.5, True, -1, -1, 0.0, 0.0, 1,
            "auto", 0, 0, True)
    with use_backend("torch"):
        torch.library.opcheck(library.forward_op, (q, k, v, *args))
        out, lse = library.forward_op(q, k, v, *args)
        torch.library.opcheck(library.backward_op, (torch.randn_like(out), q, k, v, out, lse, *args, False))
