"""Seed-parity features (window, ALiBi, softcap, bias + its gradient, mask, dropout), alone and combined.

Every case runs on the Triton kernels (the GPU, or the interpreter on CPU) and on the CPU path, against the
float64 reference with the same criterion as the core tests. Dropout is checked exactly, through the keep
pattern that ``return_attn_probs`` exposes, and statistically.
"""

import itertools

import pytest
import torch

from flash_attention import flash_attn_func, use_backend
from flash_attention.ops.scores import dropout_threshold
from flash_attention.testing import AttnCase, check_api, check_case

B, SQ, SK, H, HK, D = 2, 45, 70, 4, 2, 32


def case(**kw) -> AttnCase:
    base = dict(batch=B, seqlen_q=SQ, seqlen_k=SK, nheads=H, nheads_k=HK, head_dim=D)
    base.update(kw)
    return AttnCase(**base)


ALONE = [
    case(softcap=2.0), case(softcap=2.0, causal=True),
    case(alibi="heads"), case(alibi="batch", causal=True),
    case(bias="full"), case(bias="broadcast"), case(bias="grad"), case(bias="grad", causal=True),
    case(mask="full"), case(mask="rows"),
    case(window_size=(10, 3)), case(window_size=(0, 0)),
]
COMBOS = [
    case(causal=True, alibi="heads", nheads_k=1),
    case(window_size=(8, 4), softcap=2.0, bias="grad"),
    case(causal=True, mask="rows", softcap=3.0),
    case(window_size=(12, 0), alibi="batch", softcap=2.0, nheads_k=4),
    case(causal=True, bias="broadcast", mask="full", softcap=2.0, alibi="heads"),
    case(seqlen_q=70, seqlen_k=45, causal=True, bias="grad", alibi="heads", window_size=(20, -1)),
]
DROPOUT = [
    case(dropout_p=0.2), case(dropout_p=0.3, causal=True, nheads_k=1),
    case(dropout_p=0.2, window_size=(8, 4), alibi="heads", softcap=2.0),
    case(dropout_p=0.25, causal=True, bias="grad", mask="full", alibi="batch", softcap=2.0),
]


@pytest.mark.parametrize("c", ALONE + COMBOS, ids=str)
def test_kernels(c, kernel_device):
    check_case(c, torch.float16, kernel_device)


@pytest.mark.parametrize("c", ALONE + COMBOS, ids=str)
def test_cpu_path(c):
    with use_backend("torch"):
        check_api(flash_attn_func, c, torch.float16, "cpu")


@pytest.mark.parametrize("c", DROPOUT, ids=str)
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_dropout_exact(c, backend, kernel_device):
    device = kernel_device if backend == "triton" else "cpu"
    with use_backend(backend):
        check_api(flash_attn_func, c, torch.float16, device)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_dropout_keep_rate_and_reproducibility(backend, kernel_device):
    device = kernel_device if backend == "triton" else "cpu"
    p = 0.3
    q, k, v = (torch.randn(2, 128, 4, 16, dtype=torch.float16, device=device) for _ in range(3))
    with use_backend(backend):
        torch.manual_seed(123)
        out1, _, s1 = flash_attn_func(q, k, v, dropout_p=p, return_attn_probs=True)
        torch.manual_seed(123)
        out2, _, s2 = flash_attn_func(q, k, v, dropout_p=p, return_attn_probs=True)
        out3, _, s3 = flash_attn_func(q, k, v, dropout_p=p, return_attn_probs=True)
    assert torch.equal(out1, out2) and torch.equal(s1, s2), "same seed must give the same pattern"
    assert not torch.equal(s1 < 0, s3 < 0), "a new draw must give a new pattern"
    kept = (s1 >= 0).float().mean().item()
    n = s1.numel()
    sigma = (p * (1 - p) / n) ** 0.5
    # The kernels' p is a multiple of 1/256 (ops/scores.py); the torch path draws with p itself.
    expect = 1 - (dropout_threshold(p) / 256 if backend == "triton" else p)
    assert abs(kept - expect) < 5 * sigma, f"keep rate {kept:.4f} vs {expect} (5 sigma = {5 * sigma:.4f})"


def _philox4x32(counter: int, seed: int, rounds: int) -> list:
    """Philox4x32 of one 64-bit counter (words 0 and 1; 2 and 3 zero) and a 64-bit key, as Triton's randint4x."""
    m32 = 0xFFFFFFFF
    c = [counter & m32, counter >> 32, 0, 0]
    k0, k1 = seed & m32, seed >> 32
    for _ in range(rounds):
        p0, p2 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p2 >> 32) ^ c[1] ^ k0, p2 & m32, (p0 >> 32) ^ c[3] ^ k1, p0 & m32]
        k0, k1 = (k0 + 0x9E3779B9) & m32, (k1 + 0xBB67AE85) & m32
    return c


def test_dropout_pattern_definition(kernel_device):
    """The keep pattern is the one ops/scores.py defines (which the Gluon forward unpacks in registers): key j of row
    i draws byte ``2 ((j % 64) // 8) + j % 2`` of Philox counter ``base + i * row_stride + 4 (j // 64) + (j % 8) //
    2``, bytes taken low first from words 0-3, DROPOUT_ROUNDS rounds."""
    from flash_attention.ops.scores import DROPOUT_ROUNDS, dropout_mask, dropout_row_stride, dropout_threshold

    seed, offset, p, h, sq, sk = 2**40 + 77, 5, 0.5, 2, 5, 200
    with use_backend("triton"):
        keep = dropout_mask(1, h, sq, sk, seed=seed, offset=offset, dropout_p=p, device=kernel_device).cpu()
    stride = dropout_row_stride(sk)
    thresh = dropout_threshold(p)
    for head in range(h):
        for i in range(sq):
            for j in range(0, sk, 7):
                ctr = offset + (head * sq + i) * stride + 4 * (j // 64) + (j % 8) // 2
                words = _philox4x32(ctr, seed, DROPOUT_ROUNDS.value)
                d = 2 * ((j % 64) // 8) + j % 2
                byte = (words[d // 4] >> (8 * (d % 4))) & 0xFF
                assert bool(keep[0, head, i, j]) == (byte >= thresh), (head, i, j)


def test_dropout_pattern_statistics(kernel_device):
    """Every key position within a 64-key span (16 per Philox call, 8 bits each) keeps at rate 1 - p, neighbours
    are uncorrelated, and rows/heads get distinct draws."""
    from flash_attention.ops.scores import dropout_mask, dropout_threshold

    p = 0.5
    with use_backend("triton"):
        keep = dropout_mask(1, 2, 96, 512, seed=1234, offset=99, dropout_p=p, device=kernel_device).cpu().float()
    n_per_slot = keep.numel() // 64
    sigma = (p * (1 - p) / n_per_slot) ** 0.5
    for slot in range(64):
        rate = keep[..., slot::64].mean().item()
        assert abs(rate - (1 - p)) < 5 * sigma, f"slot {slot}: keep rate {rate:.4f}"
    centred = keep - keep.mean()
    for lag in (1, 2, 4, 8, 16, 64):
        corr = (centred[..., lag:] * centred[..., :-lag]).mean().item() / centred.var().item()
        assert abs(corr) < 5 / (keep[..., lag:].numel() ** 0.5), f"lag {lag}: correlation {corr:.4f}"
    assert not torch.equal(keep[0, 0], keep[0, 1]), "heads must differ"
    assert len({tuple(r.tolist()) for r in keep[0, 0]}) == keep.shape[2], "rows must differ"
    assert dropout_threshold(0.1) == 26 and dropout_threshold(0.0) == 0 and dropout_threshold(0.9999) == 255


def test_dropout_not_applied_when_zero(kernel_device):
    q, k, v = (torch.randn(1, 33, 2, 16, dtype=torch.float16, device=kernel_device) for _ in range(3))
    with use_backend("triton"):
        a = flash_attn_func(q, k, v)
        b = flash_attn_func(q, k, v, dropout_p=0.0)
    assert torch.equal(a, b)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_broadcast_bias_gradient(backend, kernel_device):
    """A bias broadcast over batch and queries gets the gradient summed over those dimensions."""
    device = kernel_device if backend == "triton" else "cpu"
    q, k, v = (torch.randn(2, n, 2, 16, dtype=torch.float32, device=device) for n in (20, 30, 30))
    bias = torch.randn(1, 2, 1, 30, dtype=torch.float32, device=device, requires_grad=True)
    with use_backend(backend):
        out = flash_attn_func(q, k, v, causal=True, attn_bias=bias)
    (grad,) = torch.autograd.grad(out.square().sum(), bias)
    b64 = bias.detach().double().requires_grad_()
    from flash_attention.reference import attention_ref

    ref, _ = attention_ref(q.double(), k.double(), v.double(), causal=True, attn_bias=b64)
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), b64)
    assert grad.shape == bias.shape
    torch.testing.assert_close(grad.double(), ref_grad, atol=1e-4, rtol=1e-4)


def test_deterministic_with_dropout_and_bias(kernel_device):
    c = case(dropout_p=0.2, bias="grad", causal=True)
    from flash_attention.testing import feature_inputs, random_inputs

    q, k, v, do = random_inputs(c, torch.float16, kernel_device)
    kw = feature_inputs(c, torch.float16, kernel_device)
    leaves = [t.requires_grad_() for t in (q, k, v)] + [kw["attn_bias"]]
    runs = []
    with use_backend("triton"):
        for _ in range(2):
            torch.manual_seed(7)
            out = flash_attn_func(q, k, v, causal=True, **kw)
            runs.append(torch.autograd.grad(out, leaves, do))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(softcap=-1.0), ValueError, "softcap"),
    (dict(alibi_slopes=torch.ones(3)), ValueError, "alibi_slopes must have shape"),
    (dict(alibi_slopes=torch.ones(4, dtype=torch.float16)), TypeError, "alibi_slopes must be float32"),
    (dict(attn_bias=torch.ones(2, 4, 8, 9)), ValueError, "attn_bias must broadcast"),
    (dict(attn_bias=torch.ones(8, 8, dtype=torch.int32)), TypeError, "attn_bias must be a floating-point"),
    (dict(attn_mask=torch.ones(8, 8)), TypeError, "attn_mask must be a bool"),
    (dict(attn_mask=torch.ones(3, 1, 8, 8, dtype=torch.bool)), ValueError, "attn_mask must broadcast"),
])
def test_feature_validation(kwargs, exc, match):
    q = torch.randn(1, 8, 4, 16, dtype=torch.float16)
    k = torch.randn(1, 8, 2, 16, dtype=torch.float16)
    with pytest.raises(exc, match=match):
        flash_attn_func(q, k, k, **kwargs)


def _product_cases():
    """Every combination of the seven binary features (128 cases), at a small size."""
    out = []
    for bits in itertools.product((False, True), repeat=7):
        causal, window, alibi, dropout, gqa, softcap, mask = bits
        out.append(AttnCase(1, 40, 56, 4, 2 if gqa else 4, 16, causal, (12, 4) if window else (-1, -1),
                            softcap=2.0 if softcap else 0.0, alibi="heads" if alibi else "",
                            mask="full" if mask else "", dropout_p=0.2 if dropout else 0.0))
    return out


@pytest.mark.parametrize("c", _product_cases(), ids=str)
def test_every_combination(c, backend):
    """causal x window x ALiBi x dropout x GQA x softcap x mask, each against the float64 reference."""
    check_api(flash_attn_func, c, torch.float16, backend)
