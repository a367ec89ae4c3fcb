"""The float64 reference itself, against an explicit loop and against PyTorch's SDPA."""

import math

import pytest
import torch

from flash_attention.reference import attention_ref, visibility_mask


def _loop_attention(q, k, v, scale, causal, window):
    """Row-by-row softmax with explicit index rules, independent of the vectorised reference."""
    b, sq, h, d = q.shape
    sk, hk = k.shape[1], k.shape[2]
    left, right = window
    if causal:
        right = 0
    out = torch.zeros(b, sq, h, d, dtype=torch.float64)
    lse = torch.full((b, h, sq), float("-inf"), dtype=torch.float64)
    for bi in range(b):
        for hi in range(h):
            kh = hi // (h // hk)
            for i in range(sq):
                pos = i + sk - sq
                js = [j for j in range(sk) if (right < 0 or j <= pos + right) and (left < 0 or j >= pos - left)]
                if not js:
                    continue
                s = torch.stack([q[bi, i, hi].double() @ k[bi, j, kh].double() * scale for j in js])
                lse[bi, hi, i] = torch.logsumexp(s, 0)
                p = torch.softmax(s, 0)
                out[bi, i, hi] = sum(p[t] * v[bi, j, kh].double() for t, j in enumerate(js))
    return out, lse


@pytest.mark.parametrize("sq,sk", [(5, 5), (3, 7), (7, 3), (1, 4)])
@pytest.mark.parametrize("causal,window", [(False, (-1, -1)), (True, (-1, -1)), (False, (2, 1)), (True, (1, -1))])
def test_reference_matches_loop(sq, sk, causal, window):
    q, k, v = torch.randn(2, sq, 4, 8), torch.randn(2, sk, 2, 8), torch.randn(2, sk, 2, 8)
    out, lse = attention_ref(q, k, v, causal=causal, window_size=window)
    out2, lse2 = _loop_attention(q, k, v, 1 / math.sqrt(8), causal, window)
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(lse, lse2.float())


def test_reference_matches_sdpa_causal():
    q, k, v = (torch.randn(2, 33, 4, 16, dtype=torch.float64) for _ in range(3))
    out, _ = attention_ref(q, k, v, causal=True)
    sdpa = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True).transpose(1, 2)
    torch.testing.assert_close(out, sdpa)


def test_bottom_right_alignment_and_empty_rows():
    # seqlen_q > seqlen_k with causal: the first seqlen_q - seqlen_k rows see no key.
    mask = visibility_mask(6, 4, causal=True)
    assert not mask[:2].any() and mask[2, 0] and not mask[2, 1] and mask[5].all()
    q, k, v = (torch.randn(1, n, 2, 8, requires_grad=True) for n in (6, 4, 4))
    out, lse = attention_ref(q, k, v, causal=True)
    assert torch.all(out[:, :2] == 0) and torch.isneginf(lse[..., :2]).all()
    grads = torch.autograd.grad(out.sum(), (q, k, v))
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.all(grads[0][:, :2] == 0)
