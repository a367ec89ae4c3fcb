"""Bad input and edge cases: each error names its argument; edge shapes and special values give the right answer.

Both implementations (the kernels under the interpreter and the CPU path) through the public functions. GPU-only
properties (batch x heads above 65535, tensors over 2^31 elements, memory, streams) are in
``tests/st/test_gpu_reliability.py``.
"""

import math

import pytest
import torch

from flash_attention import FlashAttention, attention, flash_attn_func, flash_attn_with_kvcache
from flash_attention.reference import attention_ref
from flash_attention.testing import AttnCase, check_api, compare, default_slack


def _qkv(b=1, sq=8, sk=8, h=4, hk=2, d=16, dtype=torch.float16, device="cpu"):
    return (torch.randn(b, sq, h, d, dtype=dtype, device=device), torch.randn(b, sk, hk, d, dtype=dtype, device=device),
            torch.randn(b, sk, hk, d, dtype=dtype, device=device))


# --- errors: one per kind of bad input (the core shape/dtype errors are in test_api.py, varlen's in test_varlen.py,
# the KV cache's in test_kvcache.py) ----------------------------------------------------------------------------

def test_tensors_on_different_devices():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="k must be on the same device as q"):
        flash_attn_func(q, k.to("meta"), v)
    with pytest.raises(ValueError, match="alibi_slopes must be on"):
        flash_attn_func(q, k, v, alibi_slopes=torch.rand(4, device="meta"))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(attn_bias=torch.randn(1, 4, 8, 9)), ValueError, r"attn_bias must broadcast to .* = \(1, 4, 8, 8\)"),
    (dict(attn_bias=torch.ones(1, 4, 8, 8, dtype=torch.int32)), TypeError, "attn_bias must be a floating-point"),
    (dict(attn_mask=torch.ones(1, 3, 8, 8, dtype=torch.bool)), ValueError, "attn_mask must broadcast"),
    (dict(attn_mask=torch.ones(1, 4, 8, 8)), TypeError, "attn_mask must be a bool tensor"),
    (dict(alibi_slopes=torch.rand(4, dtype=torch.float64)), TypeError, "alibi_slopes must be float32"),
    (dict(alibi_slopes=torch.rand(2, 4)), ValueError, r"alibi_slopes must have shape \(nheads,\)"),
    (dict(window_size=(0, -3)), ValueError, "window_size right must be -1"),
    (dict(window_size=(1.5, 0)), TypeError, "window_size left must be an int"),
    (dict(softcap=-0.5), ValueError, "softcap must be a float >= 0"),
    (dict(dropout_p=float("nan")), ValueError, "dropout_p"),
    (dict(window_block=3), ValueError, "window_block must be a power of two"),
])
def test_feature_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        attention(*_qkv(), **kwargs)


def test_layer_errors():
    q = torch.randn(1, 4, 8, 16)
    with pytest.raises(ValueError, match=r"query must be a \[batch, heads, seq, head_dim\]"):
        FlashAttention(16)(q[0], q, q)
    with pytest.raises(ValueError, match="dropout_rate must be in"):
        FlashAttention(16, dropout_rate=1.0)


# --- edge cases -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sq,sk", [(1, 1), (1, 300), (300, 1), (2, 129), (127, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_extreme_lengths(backend, sq, sk, causal):
    """seqlen 1, one query against many keys (decode-like), many queries against one key; forward and grads."""
    check_api(flash_attn_func, AttnCase(2, sq, sk, 4, 2, 32, causal=causal), torch.float16, backend)


def test_noncontiguous_views(backend):
    """Transposed storage, and slices along the sequence (stride 2) and heads: no copy needed, right answer."""
    big = torch.randn(2, 6, 40, 32, dtype=torch.float16, device=backend)  # (batch, heads, seq, headdim) storage
    q = big.transpose(1, 2)[:, ::2, 1:5]  # (2, 20, 4, 32) with strides in every dimension
    k = big.transpose(1, 2)[:, 1::2, 0:2]
    v = big.flip(2).transpose(1, 2)[:, :20, 4:6].contiguous()
    assert not q.is_contiguous() and not k.is_contiguous()
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    out = flash_attn_func(*leaves, causal=True)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, leaves, dout)
    ref_leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    low_leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    ref, _ = attention_ref(*ref_leaves, 1 / math.sqrt(32), True)
    low, _ = attention_ref(*low_leaves, 1 / math.sqrt(32), True, upcast=False)
    compare("out", out, ref, low, default_slack(torch.float16))
    for name, g, r, lo in zip("qkv", grads, torch.autograd.grad(ref, ref_leaves, dout.double()),
                              torch.autograd.grad(low, low_leaves, dout)):
        compare(f"d{name}", g, r, lo, default_slack(torch.float16))


def test_nan_only_where_the_math_says(backend):
    """A NaN in query row i poisons row i only; a NaN key j under a causal mask poisons only rows that see it."""
    q, k, v = _qkv(sq=40, sk=40, device=backend)
    q[0, 7, 1, 3] = float("nan")
    out = flash_attn_func(q, k, v)
    rows_nan = torch.isnan(out).any(dim=-1)  # (batch, seq, heads)
    expected = torch.zeros_like(rows_nan)
    expected[0, 7, 1] = True
    assert torch.equal(rows_nan, expected)

    q, k, v = _qkv(sq=40, sk=40, device=backend)
    k[0, 25, 0, 5] = float("nan")  # kv head 0 serves query heads 0 and 1
    out = flash_attn_func(q, k, v, causal=True)
    rows_nan = torch.isnan(out).any(dim=-1)
    assert rows_nan[0, 25:, :2].all() and not rows_nan[0, :25].any() and not rows_nan[0, :, 2:].any()


def test_infinite_key_gives_nan_like_the_math(backend):
    """+inf in a key makes its scores +-inf: softmax is NaN where the reference is, finite elsewhere."""
    q, k, v = _qkv(sq=16, sk=16, device=backend)
    k[0, 3, 1] = float("inf")
    out = flash_attn_func(q, k, v, causal=True)
    ref, _ = attention_ref(q.double(), k.double(), v.double(), 1 / 4, True)
    assert torch.equal(torch.isnan(out), torch.isnan(ref))


def test_very_large_scores_do_not_overflow_fp16(backend):
    """Scores around 1e4 (far past fp16's exp range) still give the exact softmax, in range."""
    q, k, v = _qkv(sq=33, sk=47, d=64, device=backend)
    q, k = q * 12, k * 12  # |q.k| * scale up to ~1e4
    out = flash_attn_func(q, k, v)
    assert torch.isfinite(out).all()
    ref, _ = attention_ref(q.double(), k.double(), v.double(), 1 / 8, False)
    low, _ = attention_ref(q, k, v, 1 / 8, False, upcast=False)
    compare("out", out, ref, low, default_slack(torch.float16))


def test_rows_that_see_no_key(backend):
    """Window and mask patterns that leave rows empty: out 0, lse -inf, gradients 0, never NaN."""
    q, k, v = (t.requires_grad_() for t in _qkv(sq=12, sk=12, device=backend))
    mask = torch.ones(1, 1, 12, 12, dtype=torch.bool, device=backend)
    mask[..., 4, :] = False
    out, lse, _ = attention(q, k, v, attn_mask=mask, return_attn_probs=True)
    assert torch.all(out[:, 4] == 0) and torch.isneginf(lse[:, :, 4]).all()
    dq, dk, dv = torch.autograd.grad(out.float().sum(), (q, k, v))
    assert torch.all(dq[:, 4] == 0) and all(torch.isfinite(g).all() for g in (dq, dk, dv))
    # bottom-right alignment: query i sits at key position i - 9, so with a (0, 0) window rows 0..8 see nothing
    out, lse, _ = flash_attn_func(q, k[:, :3], v[:, :3], window_size=(0, 0), return_attn_probs=True)
    assert torch.all(out[:, :9] == 0) and torch.isneginf(lse[:, :, :9]).all() and not torch.isnan(out).any()
    assert torch.allclose(out[:, 9:].float(), v[:, :3].repeat_interleave(2, dim=2).float())


def test_kvcache_empty_batch():
    q = torch.randn(0, 1, 4, 16, dtype=torch.float16)
    cache = torch.randn(0, 8, 2, 16, dtype=torch.float16)
    out = flash_attn_with_kvcache(q, cache, cache.clone(), cache_seqlens=0)
    assert out.shape == q.shape
