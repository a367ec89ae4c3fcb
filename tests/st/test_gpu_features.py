"""GPU suite for the seed-parity features: each alone and combined, float16 and bfloat16, at real sizes."""

import numpy as np
import pytest
import torch

from flash_attention import FlashAttention, flash_attn_func
from flash_attention.ops.scores import dropout_threshold
from flash_attention.testing import AttnCase, check_api, check_case

pytestmark = pytest.mark.gpu
DTYPES = [torch.float16, torch.bfloat16]


def case(**kw) -> AttnCase:
    base = dict(batch=2, seqlen_q=1000, seqlen_k=1537, nheads=8, nheads_k=2, head_dim=128)
    base.update(kw)
    return AttnCase(**base)


CASES = [
    case(softcap=30.0), case(softcap=2.0, causal=True),
    case(alibi="heads"), case(alibi="batch", causal=True),
    case(bias="full"), case(bias="broadcast", causal=True), case(bias="grad"),
    case(mask="full"), case(mask="rows", causal=True),
    case(window_size=(256, 64)), case(window_size=(128, 0), head_dim=64),
    case(causal=True, alibi="heads", nheads_k=1),
    case(window_size=(300, 100), softcap=2.0, bias="grad"),
    case(causal=True, bias="broadcast", mask="full", softcap=2.0, alibi="heads"),
    case(seqlen_q=1537, seqlen_k=1000, causal=True, bias="grad", alibi="heads", window_size=(400, -1)),
]
DROPOUT = [
    case(dropout_p=0.1), case(dropout_p=0.3, causal=True, nheads_k=1, seqlen_q=512, seqlen_k=512),
    case(dropout_p=0.2, window_size=(200, 50), alibi="heads", softcap=2.0),
    case(dropout_p=0.25, causal=True, bias="grad", mask="full", alibi="batch", softcap=2.0),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("c", CASES, ids=str)
def test_features(c, dtype):
    check_case(c, dtype, "cuda")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("c", DROPOUT, ids=str)
def test_dropout_exact(c, dtype):
    check_api(flash_attn_func, c, dtype, "cuda")


def test_dropout_keep_rate():
    p = 0.17
    q, k, v = (torch.randn(2, 1024, 8, 64, dtype=torch.bfloat16, device="cuda") for _ in range(3))
    _, _, s = flash_attn_func(q, k, v, dropout_p=p, return_attn_probs=True)
    kept = (s >= 0).float().mean().item()
    sigma = (p * (1 - p) / s.numel()) ** 0.5
    assert abs(kept - (1 - dropout_threshold(p) / 256)) < 5 * sigma  # p rounds to a multiple of 1/256


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_seed_layer_docstring_example(dtype):
    model = FlashAttention(head_dim=128, dropout_rate=0.1, prev_block_num=7, next_block_num=0).train()
    q, k, v = (torch.randn(2, 16, 4096, 128, dtype=dtype, device="cuda", requires_grad=True) for _ in range(3))
    mask = torch.from_numpy(np.triu(np.ones((1, 4096, 4096), dtype=np.float16), k=1)).cuda()
    out = model(q, k, v, mask)
    out.float().sum().backward()
    assert out.shape == (2, 16, 4096, 128) and torch.isfinite(out).all()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize("prev,nxt", [(7, 0), (2, 2), (0, 0)])
def test_seed_layer_block_sparse(prev, nxt):
    from flash_attention.reference import attention_ref
    from flash_attention.testing import compare, default_slack

    model = FlashAttention(head_dim=128, prev_block_num=prev, next_block_num=nxt)
    q, k, v = (torch.randn(1, 8, 2048, 128, dtype=torch.bfloat16, device="cuda") for _ in range(3))
    out = model(q, k, v)
    t = lambda x: x.transpose(1, 2)  # noqa: E731
    ref, _ = attention_ref(t(q), t(k), t(v), window_size=(prev, nxt), window_block=128)
    low, _ = attention_ref(t(q), t(k), t(v), window_size=(prev, nxt), window_block=128, upcast=False)
    compare("out", out, t(ref), t(low), default_slack(torch.bfloat16))
