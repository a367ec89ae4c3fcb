"""The Triton kernels themselves (forward, dK/dV, dQ) against the float64 reference.

Without a GPU they run under Triton's interpreter on CPU tensors, at small shapes, in float16 and float32
(the 3.6 interpreter multiplies bfloat16 bit patterns in tl.dot, so bfloat16 is covered by tests/st on the GPU).
Interpreter tiles are 32x16, so these lengths cross many tile and ragged-edge boundaries.
"""

import pytest
import torch

from flash_attention.testing import AttnCase, cases_product, check_case

SEQLENS = [(1, 1), (17, 17), (113, 255), (255, 113), (64, 64), (1, 100), (100, 1)]


@pytest.mark.parametrize("case", cases_product(SEQLENS), ids=str)
def test_seqlens_causal(case, kernel_device):
    check_case(case, torch.float16, kernel_device)


@pytest.mark.parametrize("head_dim", [8, 16, 24, 40, 64, 72, 96, 128, 136, 200, 256])
@pytest.mark.parametrize("causal", [False, True])
def test_head_dims(head_dim, causal, kernel_device):
    check_case(AttnCase(1, 47, 61, 2, 1, head_dim, causal), torch.float16, kernel_device)


@pytest.mark.parametrize("heads", [(4, 4), (4, 2), (4, 1), (6, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_gqa(heads, causal, kernel_device):
    check_case(AttnCase(2, 50, 70, heads[0], heads[1], 32, causal), torch.float16, kernel_device)


@pytest.mark.parametrize("case", cases_product([(33, 33), (70, 50), (50, 70)], head_dims=(32,)), ids=str)
def test_float32(case, kernel_device):
    check_case(case, torch.float32, kernel_device)


@pytest.mark.parametrize("case", cases_product([(40, 40), (20, 90), (90, 20)], causals=(False,), head_dims=(32,),
                                               windows=[(8, 0), (0, 8), (16, 16), (-1, 5), (5, -1), (0, 0)]), ids=str)
def test_window(case, kernel_device):
    check_case(case, torch.float16, kernel_device)


@pytest.mark.parametrize("causal", [False, True])
def test_strided_views(causal, kernel_device):
    """q/k/v as transposes of (batch, heads, seqlen, headdim) storage: no copies, same answer."""
    check_case(AttnCase(2, 45, 77, 4, 2, 32, causal), torch.float16, kernel_device, layout="bhsd")


def test_softmax_scale(kernel_device):
    check_case(AttnCase(1, 30, 30, 2, 2, 32, True), torch.float16, kernel_device, softmax_scale=0.5)


def test_deterministic_backward(kernel_device):
    """With ``deterministic`` dK/dV and dQ have exclusive writers: two runs agree bit for bit."""
    from flash_attention.features import Features
    from flash_attention.ops import attention_backward, attention_forward
    from flash_attention.testing import random_inputs

    case = AttnCase(1, 70, 70, 4, 2, 32, True)
    q, k, v, do = random_inputs(case, torch.float16, kernel_device)
    f = Features(32 ** -0.5, causal=True, deterministic=True)
    out, lse = attention_forward(q, k, v, f)
    first = attention_backward(do, q, k, v, out, lse, f)[:3]
    second = attention_backward(do, q, k, v, out, lse, f)[:3]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


DQ_MODE_CASES = [AttnCase(2, 45, 77, 4, 2, 32, False), AttnCase(1, 70, 50, 3, 1, 40, True),
                   AttnCase(1, 50, 70, 2, 2, 16, False, window_size=(9, 4), softcap=20.0, alibi="heads"),
                   AttnCase(2, 33, 33, 2, 1, 64, True, mask="rows"), AttnCase(1, 1, 90, 2, 2, 32, False)]


@pytest.mark.parametrize("case", DQ_MODE_CASES, ids=str)
def test_dq_atomic(case, kernel_device):
    """dQ added from the dK/dV kernel (float32 atomic adds) instead of its own kernel: same criterion."""
    check_case(case, torch.float16, kernel_device, dq_mode="atomic")


@pytest.mark.parametrize("case", DQ_MODE_CASES, ids=str)
def test_bwd_fused(case, kernel_device):
    """dQ and dK/dV programs in one launch: same criterion."""
    check_case(case, torch.float16, kernel_device, dq_mode="fused")


def test_dq_atomic_varlen_dropout(kernel_device):
    """Packed sequences (a tile's tail rows belong to the next sequence: they must add zeros) and dropout:
    the atomic dQ matches the split kernel's to rounding."""
    from unittest import mock

    from flash_attention.features import Features
    from flash_attention.ops import attention_backward, attention_forward, configs

    torch.manual_seed(0)
    lens_q, lens_k = [5, 37, 0, 20], [9, 30, 4, 20]
    cu_q = torch.tensor([0, 5, 42, 42, 62], dtype=torch.int32, device=kernel_device)
    cu_k = torch.tensor([0, 9, 39, 43, 63], dtype=torch.int32, device=kernel_device)
    q = torch.randn(sum(lens_q), 4, 24, device=kernel_device)
    k, v = (torch.randn(sum(lens_k), 2, 24, device=kernel_device) for _ in range(2))
    do = torch.randn_like(q)
    for causal, p in ((False, 0.0), (True, 0.3)):
        f = Features(24 ** -0.5, causal, dropout_p=p, seed=7, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k,
                     max_seqlen_q=max(lens_q), max_seqlen_k=max(lens_k))
        out, lse = attention_forward(q, k, v, f)
        split = attention_backward(do, q, k, v, out, lse, f, dq_mode="split")
        atomic = attention_backward(do, q, k, v, out, lse, f, dq_mode="atomic")
        torch.testing.assert_close(atomic[0], split[0], rtol=1e-5, atol=1e-5)
        with mock.patch.object(configs, "DQ_CONVERT_KERNEL", True):  # packed rows through the conversion kernel
            assert torch.equal(attention_backward(do, q, k, v, out, lse, f, dq_mode="atomic")[0], atomic[0])
        assert torch.equal(atomic[1], split[1]) and torch.equal(atomic[2], split[2])
        # The fused launch runs the split programs themselves: dK/dV bit-identical, dQ too up to its tile
        # shape (the dQ programs take the dK/dV programs' warps, which may change the GPU's summation order).
        fused = attention_backward(do, q, k, v, out, lse, f, dq_mode="fused")
        torch.testing.assert_close(fused[0], split[0], rtol=1e-5, atol=1e-5)
        assert torch.equal(fused[1], split[1]) and torch.equal(fused[2], split[2])


def test_dq_mode_rejects_unknown(kernel_device):
    from flash_attention.features import Features
    from flash_attention.ops import attention_backward

    q = torch.randn(1, 4, 1, 16, device=kernel_device)
    lse = torch.zeros(1, 1, 4, device=kernel_device)
    with pytest.raises(ValueError, match="dq_mode"):
        attention_backward(q, q, q, q, q, lse, Features(0.25), dq_mode="atomics")


# The forward's TMA descriptor loads (ops/forward.py, kv_descriptors): forced on, over ragged lengths, GQA, windows,
# head dims that pad the box, score modifications, masks and strided (batch, heads, seqlen, headdim) storage.
TMA_CASES = (
    cases_product([(113, 255), (255, 113), (64, 64), (1, 100)], heads=((4, 2),), head_dims=(32,))
    + [AttnCase(1, 47, 61, 2, 1, 40, True), AttnCase(2, 40, 90, 4, 4, 32, False, (16, 0)),
       AttnCase(2, 50, 70, 4, 2, 32, True, softcap=5.0, alibi="heads"),
       AttnCase(2, 50, 70, 4, 2, 32, False, mask="rows"), AttnCase(2, 50, 70, 4, 2, 32, True, bias="broadcast")]
)


@pytest.fixture
def tma_on(monkeypatch):
    from flash_attention.ops import configs

    monkeypatch.setattr(configs, "FWD_TMA", True)


@pytest.mark.parametrize("case", TMA_CASES, ids=str)
def test_forward_tma(case, kernel_device, tma_on):
    check_case(case, torch.float16, kernel_device, backward=False)


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_forward_tma_matches_pointer_loads(layout, kernel_device, monkeypatch):
    """Same tiles, same arithmetic: the descriptor path must give the pointer path's bits."""
    from flash_attention.features import Features
    from flash_attention.ops import configs
    from flash_attention.ops.forward import attention_forward, kv_descriptors
    from flash_attention.testing import random_inputs

    case = AttnCase(2, 70, 100, 4, 2, 32, True)
    q, k, v, _ = random_inputs(case, torch.float16, kernel_device, layout)
    f = Features(case.head_dim ** -0.5, True)
    monkeypatch.setattr(configs, "FWD_TMA", True)
    assert kv_descriptors(k, v, False, True, 16, 32)[0] is not None
    got, got_lse = attention_forward(q, k, v, f)
    monkeypatch.setattr(configs, "FWD_TMA", False)
    assert kv_descriptors(k, v, False, True, 16, 32) == (None, None)
    exp, exp_lse = attention_forward(q, k, v, f)
    assert torch.equal(got, exp) and torch.equal(got_lse, exp_lse)


def test_forward_tma_declines_what_the_copy_engine_cannot_take(kernel_device, monkeypatch):
    """Broadcast (stride 0) heads and packed sequences keep pointer loads; the default uses TMA only for banded
    head_dim 128."""
    from flash_attention.ops import configs
    from flash_attention.ops.forward import kv_descriptors

    k = torch.randn(2, 64, 1, 32, dtype=torch.float16, device=kernel_device).expand(2, 64, 4, 32)
    monkeypatch.setattr(configs, "FWD_TMA", True)
    assert kv_descriptors(k, k, False, True, 16, 32) == (None, None)
    kc = k.contiguous()
    assert kv_descriptors(kc, kc, True, True, 16, 32) == (None, None)
    monkeypatch.setattr(configs, "FWD_TMA", None)
    assert configs.forward_tma(128, 128, True)
    assert not any(configs.forward_tma(*a) for a in ((128, 128, False), (64, 64, True), (96, 128, True)))


# The backward's TMA descriptor loads (Q/dO in the dK/dV programs, K/V in the dQ programs), forced on: the same
# cases as the forward's, checked against the float64 reference, forward and backward.
@pytest.mark.parametrize("case", TMA_CASES, ids=str)
def test_backward_tma(case, kernel_device, monkeypatch):
    from flash_attention.ops import configs

    monkeypatch.setattr(configs, "BWD_TMA", True)
    check_case(case, torch.float16, kernel_device)


@pytest.mark.parametrize("dq_mode", ["split", "fused", "atomic"])
@pytest.mark.parametrize("layout,causal,window", [("bshd", True, (-1, -1)), ("bhsd", False, (-1, -1)),
                                                  ("bshd", False, (20, 5))])
def test_backward_tma_matches_pointer_loads(dq_mode, layout, causal, window, kernel_device, monkeypatch):
    """Ragged lengths on both sides (the descriptors read zeros past the end, as the masked loads do), GQA: the
    descriptor path must give the pointer path's bits in every dQ mode."""
    from flash_attention.features import Features
    from flash_attention.ops import attention_backward, attention_forward, configs
    from flash_attention.testing import random_inputs

    case = AttnCase(2, 70, 45, 4, 2, 32, causal, window)
    q, k, v, do = random_inputs(case, torch.float16, kernel_device, layout)
    f = Features(case.head_dim ** -0.5, causal, window)
    out, lse = attention_forward(q, k, v, f)
    grads = {}
    for tma in (True, False):
        monkeypatch.setattr(configs, "BWD_TMA", tma)
        grads[tma] = attention_backward(do, q, k, v, out, lse, f, dq_mode=dq_mode)[:3]
    monkeypatch.setattr(configs, "BWD_TMA", None)  # the default: head_dim 128 only (where it measured faster)
    assert configs.backward_tma(128, 128, causal) and not configs.backward_tma(64, 64, causal)
    for got, exp in zip(grads[True], grads[False]):
        if dq_mode == "atomic":  # the order of the float32 adds into dQ varies
            torch.testing.assert_close(got, exp, rtol=1e-3, atol=1e-3)
        else:
            assert torch.equal(got, exp)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("shape", [(2, 100, 3, 64), (1, 7, 2, 128), (2, 65, 2, 80), (1, 1, 1, 256)], ids=str)
def test_dq_convert_kernel(shape, dtype, kernel_device):
    """ops/dq_convert.py: the float32 ``(batch, nheads, seqlen, head_dim)`` accumulator into a dQ laid out as
    ``(batch, seqlen, nheads, head_dim)`` (ragged row counts, head_dim not a power of 2), every element written
    once and nothing around it (bf16 rounding is checked on the GPU: the interpreter truncates)."""
    from flash_attention.ops.dq_convert import dq_convert

    batch, seqlen, nheads, head_dim = shape
    torch.manual_seed(0)
    acc = torch.randn(batch, nheads, seqlen, head_dim, device=kernel_device)
    buf = torch.full((batch * seqlen * nheads * head_dim + 8,), float("nan"), dtype=dtype, device=kernel_device)
    dq = buf[4:-4].view(batch, seqlen, nheads, head_dim)
    dq_convert(acc, dq.transpose(1, 2))
    assert torch.equal(dq, acc.transpose(1, 2).to(dtype))
    assert buf[:4].isnan().all() and buf[-4:].isnan().all()
    # With the softmax scale applied on the way (the Gluon backward's unscaled shares).
    dq_convert(acc, dq.transpose(1, 2), scale=0.125)
    assert torch.equal(dq, (acc * 0.125).transpose(1, 2).to(dtype))


@pytest.mark.parametrize("case", DQ_MODE_CASES[:2] + [AttnCase(2, 33, 33, 2, 1, 64, True)], ids=str)
def test_dq_atomic_with_convert_kernel(case, kernel_device):
    """``configs.DQ_CONVERT_KERNEL`` forced on: the atomic mode's float32 dQ goes through the conversion kernel and
    gives the same dQ as ``copy_`` (bit for bit: both round the same float32 sums), and dK/dV are untouched."""
    from unittest import mock

    from flash_attention.features import Features
    from flash_attention.ops import configs, dq_convert
    from flash_attention.ops.backward import attention_backward
    from flash_attention.ops.forward import attention_forward
    from flash_attention.testing import random_inputs

    q, k, v, do = random_inputs(case, torch.float16, kernel_device)
    f = Features(case.head_dim ** -0.5, causal=case.causal)
    out, lse = attention_forward(q, k, v, f)
    with mock.patch.object(configs, "DQ_CONVERT_KERNEL", False):
        ref = attention_backward(do, q, k, v, out, lse, f, dq_mode="atomic")[:3]
    with mock.patch.object(configs, "DQ_CONVERT_KERNEL", True), \
            mock.patch.object(dq_convert, "dq_convert_args", wraps=dq_convert.dq_convert_args) as spy:
        got = attention_backward(do, q, k, v, out, lse, f, dq_mode="atomic")[:3]
    assert spy.call_count == 1
    assert all(torch.equal(a, b) for a, b in zip(got, ref))
