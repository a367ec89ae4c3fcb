"""Variable-length attention (packed sequences): kernels under the interpreter and the CPU path against the
float64 per-sequence reference, every feature alone and in combination, packed variants, padding helpers,
validation errors and torch.compile."""

import itertools
import math

import pytest
import torch

from flash_attention import (
    flash_attn_func,
    flash_attn_varlen_func,
    flash_attn_varlen_kvpacked_func,
    flash_attn_varlen_qkvpacked_func,
    pad_input,
    unpad_input,
    use_backend,
)
from flash_attention.testing import check_varlen, cu_seqlens

# Lengths with 0, 1, odd sizes and more keys than queries (and fewer): ragged tiles everywhere.
SEQLENS = [
    ([5, 17, 0, 33], [9, 17, 4, 20]),
    ([1, 40], [1, 40]),
    ([23, 8, 31], [23, 8, 31]),
]


@pytest.mark.parametrize("seqlens_q,seqlens_k", SEQLENS)
@pytest.mark.parametrize("causal", [False, True])
def test_varlen_plain(backend, seqlens_q, seqlens_k, causal):
    check_varlen(seqlens_q, seqlens_k, 4, 2, 32, torch.float16, backend, causal=causal)


FEATURES = {
    "window": dict(window_size=(6, 3)),
    "causal_window": dict(causal=True, window_size=(7, 0)),
    "softcap": dict(softcap=2.0),
    "alibi_heads": dict(alibi="heads"),
    "alibi_batch": dict(alibi="batch", causal=True),
    "dropout": dict(dropout_p=0.25),
    "mqa_hd64": dict(),  # shapes differ, see below
}


@pytest.mark.parametrize("name", list(FEATURES))
def test_varlen_feature(backend, name):
    kw = dict(FEATURES[name])
    heads, head_dim = ((4, 1), 64) if name == "mqa_hd64" else ((4, 2), 32)
    check_varlen([13, 0, 29], [21, 6, 29], *heads, head_dim, torch.float16, backend, **kw)


COMBOS = list(itertools.product([False, True], [(-1, -1), (5, 2)], ["", "batch"], [0.0, 0.2], [0.0, 3.0]))


@pytest.mark.parametrize("causal,window,alibi,dropout_p,softcap", COMBOS)
def test_varlen_combinations(backend, causal, window, alibi, dropout_p, softcap):
    check_varlen([9, 18], [14, 18], 2, 1, 16, torch.float16, backend, causal=causal, window_size=window,
                 alibi=alibi, dropout_p=dropout_p, softcap=softcap)


def test_varlen_float32(backend):
    check_varlen([7, 19], [11, 19], 2, 2, 16, torch.float32, backend, causal=True)


def test_varlen_equals_padded_batch(backend):
    """Same answer as flash_attn_func on each sequence run alone (the packing changes nothing)."""
    lens = [6, 15, 11]
    cu = cu_seqlens(lens, backend)
    q, k, v = (torch.randn(sum(lens), 2, 16, device=backend, dtype=torch.float16) for _ in range(3))
    out = flash_attn_varlen_func(q, k, v, cu, cu, max(lens), max(lens), causal=True)
    for b in range(len(lens)):
        rows = slice(int(cu[b]), int(cu[b + 1]))
        alone = flash_attn_func(q[rows][None], k[rows][None], v[rows][None], causal=True)[0]
        torch.testing.assert_close(out[rows], alone, atol=2e-3, rtol=0)


def test_packed_variants(backend):
    lens = [5, 12]
    cu = cu_seqlens(lens, backend)
    qkv = torch.randn(sum(lens), 3, 2, 16, device=backend, dtype=torch.float16, requires_grad=True)
    out = flash_attn_varlen_qkvpacked_func(qkv, cu, max(lens), causal=True)
    q, k, v = (t.detach().requires_grad_() for t in qkv.unbind(1))
    ref = flash_attn_varlen_func(q, k, v, cu, cu, max(lens), max(lens), causal=True)
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(qkv.grad, torch.stack([q.grad, k.grad, v.grad], dim=1))
    kv = qkv.detach()[:, 1:]
    out_kv = flash_attn_varlen_kvpacked_func(qkv.detach()[:, 0], kv, cu, cu, max(lens), max(lens), causal=True)
    torch.testing.assert_close(out_kv, ref.detach())


def test_unpad_pad_roundtrip_and_masked_batch(backend):
    """unpad -> varlen -> pad equals the padded batch with a key-padding mask, on the real tokens."""
    batch, seqlen, heads, dim = 3, 20, 2, 16
    mask = torch.zeros(batch, seqlen, dtype=torch.bool)
    mask[0, :20] = True
    mask[1, :7] = True
    mask[2, 5:18] = True  # left and right padding
    mask = mask.to(backend)
    x = torch.randn(batch, seqlen, heads, dim, device=backend, dtype=torch.float16)
    packed, idx, cu, max_len, lens = unpad_input(x, mask)
    assert cu.dtype == torch.int32 and cu.tolist() == [0, 20, 27, 40] and max_len == 20
    assert lens.tolist() == [20, 7, 13]
    torch.testing.assert_close(pad_input(packed, idx, batch, seqlen), x * mask[..., None, None])
    out = pad_input(flash_attn_varlen_func(packed, packed, packed, cu, cu, max_len, max_len), idx, batch, seqlen)
    ref = flash_attn_func(x, x, x, attn_mask=mask[:, None, None, :])
    torch.testing.assert_close(out[mask], ref[mask], atol=2e-3, rtol=0)
    assert torch.all(out[~mask] == 0)


def test_empty_batch_and_tokens(backend):
    q = torch.randn(0, 2, 16, device=backend, dtype=torch.float16)
    cu = torch.zeros(1, dtype=torch.int32, device=backend)
    assert flash_attn_varlen_func(q, q, q, cu, cu, 0, 0).shape == (0, 2, 16)
    cu2 = torch.zeros(3, dtype=torch.int32, device=backend)
    out, lse, _ = flash_attn_varlen_func(q, q, q, cu2, cu2, 0, 0, return_attn_probs=True)
    assert out.shape == (0, 2, 16) and lse.shape == (2, 0)


def _inputs(device="cpu"):
    q = torch.randn(10, 4, 16, device=device)
    kv = torch.randn(12, 2, 16, device=device)
    return q, kv, kv.clone(), cu_seqlens([4, 6], device), cu_seqlens([5, 7], device)


@pytest.mark.parametrize("change,error,match", [
    (dict(q=torch.randn(2, 10, 4, 16)), ValueError, "q must have 3 dimensions"),
    (dict(k=torch.randn(12, 2, 16, dtype=torch.float64)), TypeError, "k must have the same dtype"),
    (dict(v=torch.randn(12, 3, 16)), ValueError, "v must have the shape of k"),
    (dict(k=torch.randn(12, 3, 16), v=torch.randn(12, 3, 16)), ValueError, "multiple of nheads_k"),
    (dict(k=torch.randn(16, 12, 2).transpose(0, 2).transpose(0, 1)), ValueError, "contiguous last dimension"),
    (dict(cu_q=torch.tensor([0, 4, 10])), TypeError, "cu_seqlens_q must be int32"),
    (dict(cu_k=torch.tensor([[0, 5, 12]], dtype=torch.int32)), ValueError, "cu_seqlens_k must have 1 dimensions"),
    (dict(cu_k=torch.tensor([0, 12], dtype=torch.int32)), ValueError, "same length"),
    (dict(cu_q=torch.tensor([0, 6, 4], dtype=torch.int32)), ValueError, "never decrease"),
    (dict(cu_q=torch.tensor([1, 4, 10], dtype=torch.int32)), ValueError, "start at 0"),
    (dict(cu_k=torch.tensor([0, 5, 11], dtype=torch.int32)), ValueError, "number of tokens in k"),
    (dict(max_q=5), ValueError, "below the longest"),
    (dict(max_k=7.0), TypeError, "max_seqlen_k must be an int"),
    (dict(max_k=-1), ValueError, "max_seqlen_k must be >= 0"),
    (dict(window_size=(-2, 0)), ValueError, "window_size left"),
    (dict(dropout_p=1.0), ValueError, "dropout_p"),
    (dict(alibi_slopes=torch.rand(3, 4)), ValueError, "alibi_slopes must have shape"),
    (dict(softcap=-1.0), ValueError, "softcap"),
])
def test_varlen_validation(change, error, match):
    q, k, v, cu_q, cu_k = _inputs()
    args = dict(q=q, k=k, v=v, cu_q=cu_q, cu_k=cu_k, max_q=6, max_k=7)
    opts = {}
    for name, value in change.items():
        (args if name in args else opts)[name] = value
    with pytest.raises(error, match=match):
        flash_attn_varlen_func(args["q"], args["k"], args["v"], args["cu_q"], args["cu_k"], args["max_q"],
                               args["max_k"], **opts)


def test_varlen_compile_fullgraph():
    lens = [7, 12]
    cu = cu_seqlens(lens, "cpu")
    q, k, v = (torch.randn(sum(lens), 2, 16, requires_grad=True) for _ in range(3))

    def fn(q, k, v):
        return flash_attn_varlen_func(q, k, v, cu, cu, 12, 12, causal=True, softmax_scale=1 / math.sqrt(16))

    with use_backend("torch"):
        eager = fn(q, k, v)
        compiled = torch.compile(fn, fullgraph=True)(q, k, v)
        torch.testing.assert_close(compiled, eager)
        g_eager = torch.autograd.grad(eager.sum(), (q, k, v))
        g_comp = torch.autograd.grad(compiled.sum(), (q, k, v))
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b)
