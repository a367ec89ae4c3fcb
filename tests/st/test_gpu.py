"""GPU suite: the kernels at real sizes in float16 and bfloat16 against the float64 reference.

Runs on the device machine (`pytest tests/st`); skipped without CUDA. The committed logs live in tests/st/logs/.
"""

import pytest
import torch

from flash_attention import flash_attn_func, flash_attn_qkvpacked_func
from flash_attention.testing import AttnCase, cases_product, check_api, check_case

pytestmark = pytest.mark.gpu
DTYPES = [torch.float16, torch.bfloat16]
SEQLENS = [(1, 1), (17, 17), (113, 255), (255, 113), (1000, 1000), (1, 4096), (2048, 2048), (4096, 1024),
           (1024, 4096)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", cases_product(SEQLENS, heads=((8, 2),), head_dims=(64, 128)), ids=str)
def test_seqlens(case, dtype):
    check_case(case, dtype, "cuda")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("head_dim", list(range(8, 257, 8)))
def test_every_head_dim(head_dim, dtype):
    check_case(AttnCase(2, 300, 517, 4, 2, head_dim, causal=head_dim % 16 == 0), dtype, "cuda")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("heads", [(16, 16), (16, 8), (16, 4), (16, 1), (12, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_gqa(heads, causal, dtype):
    check_case(AttnCase(2, 1024, 1024, heads[0], heads[1], 128, causal), dtype, "cuda")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", cases_product([(1500, 1500), (700, 2000), (2000, 700)], causals=(False,),
                                               head_dims=(128,), windows=[(256, 0), (0, 256), (128, 128),
                                                                          (-1, 64), (64, -1), (0, 0)]), ids=str)
def test_window(case, dtype):
    check_case(case, dtype, "cuda")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_strided_views(causal, dtype):
    check_case(AttnCase(2, 1000, 1500, 8, 4, 128, causal), dtype, "cuda", layout="bhsd")


@pytest.mark.parametrize("dtype", [torch.float32], ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_float32(causal, dtype):
    check_case(AttnCase(2, 300, 400, 4, 2, 64, causal), dtype, "cuda")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_api_autograd(causal, dtype):
    check_api(flash_attn_func, AttnCase(2, 2048, 2048, 16, 4, 128, causal), dtype, "cuda")


def test_qkvpacked_long():
    qkv = torch.randn(1, 8192, 3, 16, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    out = flash_attn_qkvpacked_func(qkv, causal=True)
    out.float().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(qkv.grad).all()


def test_deterministic():
    case = AttnCase(2, 2048, 2048, 16, 4, 128, True)
    from flash_attention.testing import random_inputs

    q, k, v, do = (t.requires_grad_() for t in random_inputs(case, torch.bfloat16, "cuda"))
    grads = [torch.autograd.grad(flash_attn_func(q, k, v, causal=True), (q, k, v), do) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*grads))


@pytest.mark.parametrize("dq_mode", ["atomic", "tma", "fused"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", [AttnCase(2, 1000, 1000, 8, 2, 128, True), AttnCase(2, 255, 1113, 4, 4, 64, False),
                                  AttnCase(1, 777, 512, 6, 3, 96, True, window_size=(100, 20), softcap=30.0),
                                  AttnCase(2, 513, 513, 4, 1, 64, False, alibi="heads", mask="rows")], ids=str)
def test_dq_modes(case, dtype, dq_mode):
    """The backward's non-default dQ strategies (float32 adds from the dK/dV kernel, one fused launch): same
    criterion."""
    check_case(case, dtype, "cuda", dq_mode=dq_mode)
