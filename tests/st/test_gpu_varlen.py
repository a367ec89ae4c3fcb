"""GPU suite for variable-length attention: real sizes, float16 and bfloat16, features alone and combined."""

import pytest
import torch

from flash_attention import flash_attn_func, flash_attn_varlen_func
from flash_attention.testing import check_varlen, cu_seqlens

pytestmark = pytest.mark.gpu
DTYPES = [torch.float16, torch.bfloat16]
LENS_Q = [1000, 1, 513, 2047, 0, 128, 64]
LENS_K = [1537, 7, 513, 2047, 300, 0, 64]

CASES = {
    "plain": dict(),
    "causal": dict(causal=True),
    "window": dict(window_size=(256, 64)),
    "causal_window_alibi": dict(causal=True, window_size=(300, 0), alibi="batch"),
    "softcap_alibi": dict(softcap=30.0, alibi="heads"),
    "dropout": dict(dropout_p=0.2, causal=True),
    "all": dict(causal=True, window_size=(400, -1), alibi="heads", softcap=2.0, dropout_p=0.1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("name", list(CASES))
def test_varlen(name, head_dim, dtype):
    check_varlen(LENS_Q, LENS_K, 8, 2, head_dim, dtype, "cuda", **CASES[name])


@pytest.mark.parametrize("head_dim", [32, 96, 256])
def test_varlen_head_dims(head_dim):
    check_varlen([300, 77], [301, 500], 4, 4, head_dim, torch.bfloat16, "cuda", causal=True)


def test_varlen_matches_fixed_length_bitwise():
    """Equal-length packed sequences give exactly flash_attn_func's output (same tiles, same order)."""
    b, s, h, d = 4, 1024, 8, 128
    q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    cu = cu_seqlens([s] * b, "cuda")
    packed = flash_attn_varlen_func(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1), cu, cu, s, s, causal=True)
    assert torch.equal(packed.view(b, s, h, d), flash_attn_func(q, k, v, causal=True))
