"""The seed's FlashAttention layer: constructor, mask semantics, local block-sparse windows, ALiBi, dropout."""

import math

import numpy as np
import pytest
import torch

from flash_attention import FlashAttention, use_backend
from flash_attention.nn.layer.flash_attention import alibi_slopes
from flash_attention.reference import attention_ref
from flash_attention.testing import compare, default_slack





def _qkv(b, h, s, d, device, dtype=torch.float16, requires_grad=True):
    return [torch.randn(b, h, s, d, dtype=dtype, device=device, requires_grad=requires_grad) for _ in range(3)]


def _check_layer(layer, q, k, v, ref_kwargs, **fwd_kwargs):
    """Layer output and gradients vs the float64 reference, with the suite's criterion."""
    out = layer(q, k, v, **fwd_kwargs)
    assert out.shape == q.shape
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    t = lambda x: x.transpose(1, 2)  # noqa: E731 - the layer's [b, h, s, d] vs the reference's [b, s, h, d]
    results = {}
    for name, upcast in (("ref", True), ("low", False)):
        leaves = [(x.detach().double() if upcast else x.detach()).requires_grad_() for x in (q, k, v)]
        o, _ = attention_ref(*[t(x) for x in leaves], softmax_scale=1 / math.sqrt(q.shape[-1]), upcast=upcast,
                             **ref_kwargs)
        o = t(o)
        results[name] = (o.detach(),) + torch.autograd.grad(o, leaves, dout.to(o.dtype))
    slack = default_slack(q.dtype)
    for i, name in enumerate(("out", "dq", "dk", "dv")):
        ours = out if i == 0 else grads[i - 1]
        compare(name, ours, results["ref"][i], results["low"][i], slack)


@pytest.mark.parametrize("prev,nxt", [(1, 0), (0, 1), (2, 1), (0, 0)])
def test_block_sparse_matches_reference(backend, prev, nxt):
    layer = FlashAttention(32, prev_block_num=prev, next_block_num=nxt, tiling_stgy_name="sparse64")
    q, k, v = _qkv(1, 2, 200, 32, backend)
    _check_layer(layer, q, k, v, dict(window_size=(prev, nxt), window_block=64))


@pytest.mark.parametrize("prev", [0, 1, 65536])
def test_causal_tile_with_block_sparse(backend, prev):
    """A (1, T, T) triu tile means causal; with prev_block_num it intersects the block band token by token."""
    layer = FlashAttention(32, prev_block_num=prev, next_block_num=0, tiling_stgy_name="sparse64")
    q, k, v = _qkv(2, 2, 150, 32, backend)
    mask = torch.from_numpy(np.triu(np.ones((1, 150, 150), dtype=np.float16), k=1)).to(backend)
    window = (-1 if prev == 65536 else prev, 0)
    _check_layer(layer, q, k, v, dict(causal=True, window_size=window, window_block=64 if prev != 65536 else 1),
                 attention_mask=mask)


def test_full_mask_and_alibi(backend):
    layer = FlashAttention(32, alibi=True)
    q, k, v = _qkv(2, 4, 70, 32, backend)
    masked = torch.rand(2, 70, 70, device=backend) > 0.7  # 1 = masked
    slopes = torch.tensor(alibi_slopes(4), dtype=torch.float32, device=backend)
    _check_layer(layer, q, k, v, dict(attn_mask=~masked[:, None], alibi_slopes=slopes),
                 attention_mask=masked.to(torch.float16))


def test_mask_without_batch_and_alibi_bias(backend):
    layer = FlashAttention(32, have_attention_mask_batch=False)
    q, k, v = _qkv(2, 4, 50, 32, backend)
    masked = torch.rand(50, 50, device=backend) > 0.7
    bias = torch.randn(2, 4, 1, 50, device=backend, dtype=torch.float16)  # the seed's [b, h, 1, s] alibi_mask
    _check_layer(layer, q, k, v, dict(attn_mask=~masked, attn_bias=bias), attention_mask=masked, alibi_mask=bias)


def test_dropout_only_in_training(backend):
    layer = FlashAttention(16, dropout_rate=0.5)
    q, k, v = _qkv(1, 2, 40, 16, backend, requires_grad=False)
    layer.eval()
    a, b = layer(q, k, v), layer(q, k, v)
    assert torch.equal(a, b)
    layer.train()
    c = layer(q, k, v)
    assert not torch.equal(a, c)


def test_rejects_bad_masks_and_options():
    layer = FlashAttention(16)
    q, k, v = _qkv(2, 2, 8, 16, "cpu", requires_grad=False)
    with pytest.raises(ValueError, match="attention_mask must be"):
        layer(q, k, v, attention_mask=torch.ones(2, 8, 9))
    with pytest.raises(ValueError, match="attention_mask must be"):
        layer(q, k, v, attention_mask=torch.ones(8, 8))  # needs a batch dimension by default
    with pytest.raises(ValueError, match="tiling_stgy_name"):
        FlashAttention(16, tiling_stgy_name="nope")
    with pytest.raises(ValueError, match="dp must be"):
        FlashAttention(16, dp=0)
    with pytest.raises(ValueError, match="must equal the default process group's size"):
        FlashAttention(16, dp=3)(q, k, v)  # no process group of 3 ranks: inputs would be shards of what?
    with pytest.raises(ValueError, match="cp must be"):
        FlashAttention(16, cp=0)
    with pytest.raises(ValueError, match="layout must be"):
        FlashAttention(16, cp=2, cp_layout="striped")
    with pytest.raises(ValueError, match="not supported with cp > 1"):
        FlashAttention(16, cp=2, prev_block_num=1)
    with pytest.raises(ValueError, match="head_dim"):
        FlashAttention(32)(q, k, v)


def test_alibi_slopes_standard_values():
    assert alibi_slopes(8) == [2 ** (-i) for i in range(1, 9)]
    s12 = alibi_slopes(12)
    assert s12[:8] == alibi_slopes(8) and s12[8:] == alibi_slopes(16)[0::2][:4]


def test_seed_docstring_example_cpu():
    """The seed's docstring example (batch 2, 16 heads, seq 4096, head_dim 128), forward on the CPU path."""
    model = FlashAttention(head_dim=128, dropout_rate=0.1, prev_block_num=7, next_block_num=0)
    query, key, value = (torch.randn(2, 16, 4096, 128, dtype=torch.float16) for _ in range(3))
    attention_mask = torch.from_numpy(np.triu(np.ones((1, 4096, 4096), dtype=np.float16), k=1))
    with use_backend("torch"), torch.no_grad():
        output = model(query, key, value, attention_mask)
    assert output.shape == (2, 16, 4096, 128) and torch.isfinite(output).all()
