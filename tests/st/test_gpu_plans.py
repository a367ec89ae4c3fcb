"""GPU suite for launch plans (ops/launch.py): a call like an earlier one relaunches the recorded kernels directly.
The planned calls must give what the JIT path gives on the same inputs (bit for bit, except dQ where the fused
backward adds it in a varying order), must not be taken when a switch of ops/configs.py changed, and must tell
apart tensors a plan saw as one. Skipped without an sm_90 GPU."""

from unittest import mock

import pytest
import torch

from flash_attention import flash_attn_func
from flash_attention.features import Features
from flash_attention.ops import backward, configs, forward, forward_sm90, launch
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] != 9, reason="needs an sm_90 GPU")]


@pytest.fixture
def relaunches():
    """Counts Plan.launch calls; starts from empty plan caches."""
    forward_sm90._PLANS.clear()
    forward._TL_PLANS.clear()
    backward._PLANS.clear()
    with mock.patch.object(launch.Plan, "launch", autospec=True, side_effect=launch.Plan.launch) as m:
        yield m


def _inputs(d, causal, hk=2, s=1000, dtype=torch.bfloat16, layout="bshd"):
    shape_q, shape_k = (2, s, 8, d), (2, s + 24, hk, d)
    if layout == "bhsd":  # strided views of (batch, heads, seqlen, headdim) storage
        q = torch.randn(2, 8, s, d, device="cuda", dtype=dtype).transpose(1, 2)
        k, v = (torch.randn(2, hk, s + 24, d, device="cuda", dtype=dtype).transpose(1, 2) for _ in range(2))
    else:
        q = torch.randn(shape_q, device="cuda", dtype=dtype)
        k, v = (torch.randn(shape_k, device="cuda", dtype=dtype) for _ in range(2))
    return q, k, v, Features(d ** -0.5, causal)


def _unplanned(fn):
    with mock.patch.object(launch, "ENABLED", False):
        return fn()


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 128])
def test_forward_plan_matches_jit(d, causal, layout, relaunches):
    with mock.patch.object(configs, "FWD_GLUON", True):
        attention_forward(*_inputs(d, causal, layout=layout))  # records
        q, k, v, f = _inputs(d, causal, layout=layout)  # same shapes, other tensors
        out, lse = attention_forward(q, k, v, f)
        assert relaunches.call_count == 1
        ref_out, ref_lse = _unplanned(lambda: attention_forward(q, k, v, f))
    assert torch.equal(out, ref_out) and torch.equal(lse, ref_lse)


@pytest.mark.parametrize("fused", [True, False], ids=["fused_dq", "split_dq"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 128])
def test_backward_plan_matches_jit(d, causal, fused, relaunches):
    def call(q, k, v, f):
        out, lse = attention_forward(q, k, v, f)
        return attention_backward(torch.randn_like(q), q, k, v, out, lse, f)

    with mock.patch.object(configs, "BWD_GLUON", True), mock.patch.object(configs, "BWD_GLUON_DQ", fused):
        call(*_inputs(d, causal, s=1500))
        relaunches.reset_mock()
        q, k, v, f = _inputs(d, causal, s=1500)
        out, lse = _unplanned(lambda: attention_forward(q, k, v, f))
        do = torch.randn_like(q)
        got = attention_backward(do, q, k, v, out, lse, f)
        assert relaunches.call_count == 2  # preprocess (or the dQ kernel) and the Gluon kernel
        ref = _unplanned(lambda: attention_backward(do, q, k, v, out, lse, f))
    assert torch.equal(got[1], ref[1]) and torch.equal(got[2], ref[2])
    if fused:  # dQ summed in float32 in a varying order
        torch.testing.assert_close(got[0], ref[0], atol=2e-2, rtol=2e-2)
    else:
        assert torch.equal(got[0], ref[0])


def test_switch_change_skips_plans(relaunches):
    q, k, v, f = _inputs(128, True)
    attention_forward(q, k, v, f)
    attention_forward(q, k, v, f)
    assert relaunches.call_count == 1
    with mock.patch.object(configs, "FWD_GLUON", False), \
            mock.patch.object(forward_sm90, "attention_forward_sm90") as gluon:
        attention_forward(q, k, v, f)
    assert relaunches.call_count == 1 and gluon.call_count == 0  # the tl kernel ran
    with mock.patch.object(configs, "BWD_GLUON", True):
        out, lse = attention_forward(q, k, v, f)
        do = torch.randn_like(q)
        attention_backward(do, q, k, v, out, lse, f)
        n = relaunches.call_count
        attention_backward(do, q, k, v, out, lse, Features(f.softmax_scale, True, deterministic=True))
        assert relaunches.call_count == n  # deterministic is another key: recorded, not relaunched


def test_aliased_tensors_are_not_planned(relaunches):
    """A call with k and v the same tensor records no plan (a later call with two tensors could not be told
    apart); the later call is still right."""
    q, k, _, f = _inputs(128, False)
    attention_forward(q, k, k, f)
    attention_forward(q, k, k, f)
    assert relaunches.call_count == 0
    v = torch.randn_like(k)
    out, _ = attention_forward(q, k, v, f)
    ref, _ = _unplanned(lambda: attention_forward(q, k, v, f))
    assert torch.equal(out, ref)


def test_public_api_training_steps(relaunches):
    """flash_attn_func forward and backward, three steps on fresh tensors: every step after the first relaunches,
    and the gradients equal the JIT path's (dK/dV bit for bit)."""
    for step in range(3):
        q, k, v = (torch.randn(2, 1024, 8, 128, device="cuda", dtype=torch.float16, requires_grad=True)
                   for _ in range(3))
        do = torch.randn_like(q)
        got = torch.autograd.grad(flash_attn_func(q, k, v, causal=True), (q, k, v), do)
        ref = _unplanned(lambda: torch.autograd.grad(flash_attn_func(q, k, v, causal=True), (q, k, v), do))
        assert torch.equal(got[1], ref[1]) and torch.equal(got[2], ref[2])
        torch.testing.assert_close(got[0], ref[0], atol=2e-2, rtol=2e-2)
    assert relaunches.call_count >= 2 * 3  # forward, and backward (two launches), on steps 2 and 3


@pytest.mark.parametrize("extra", [{}, {"softcap": 30.0}, {"window_size": (200, 0)}], ids=["plain", "softcap", "window"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 96])
def test_tl_forward_plan_matches_jit(d, causal, extra, relaunches):
    """``configs.TL_FORWARD_PLANS``: the tl forward (head_dim 64 below the Gluon kernel's thresholds, 96, softcap)
    relaunches its recorded plan for a call shaped like an earlier one, bit-equal to the JIT launch; a dropout call
    is never planned (a fresh seed per call)."""
    def inputs():
        q, k, v, f = _inputs(d, causal)
        return q, k, v, Features(f.softmax_scale, causal, **extra)

    with mock.patch.object(configs, "TL_FORWARD_PLANS", True):
        attention_forward(*inputs())  # records
        q, k, v, f = inputs()
        assert not forward_sm90.supported(q, k, v, q, f)  # the tl kernel's call
        out, lse = attention_forward(q, k, v, f)
        assert relaunches.call_count == 1
        ref_out, ref_lse = _unplanned(lambda: attention_forward(q, k, v, f))
        assert forward.tl_plan_key(q, k, v, Features(f.softmax_scale, causal, dropout_p=0.1, seed=1)) is None
    assert torch.equal(out, ref_out) and torch.equal(lse, ref_lse)

