"""The chunked PyTorch path that serves CPU tensors, through the public API and autograd."""

import pytest
import torch

import flash_attention.cpu as cpu_path
from flash_attention import flash_attn_func, use_backend
from flash_attention.testing import AttnCase, cases_product, check_api

SEQLENS = [(1, 1), (17, 17), (113, 255), (255, 113), (1, 300), (300, 1)]


@pytest.fixture(autouse=True)
def _torch_backend():
    with use_backend("torch"):
        yield


@pytest.mark.parametrize("case", cases_product(SEQLENS, heads=((4, 4), (4, 2), (4, 1))), ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_cpu_path(case, dtype):
    check_api(flash_attn_func, case, dtype, "cpu")


@pytest.mark.parametrize("head_dim", [8, 24, 128, 256])
def test_cpu_head_dims(head_dim):
    check_api(flash_attn_func, AttnCase(1, 40, 50, 2, 1, head_dim, True), torch.float16, "cpu")


@pytest.mark.parametrize("window", [(8, 0), (0, 8), (16, 16), (-1, 5), (5, -1)])
def test_cpu_window(window):
    check_api(flash_attn_func, AttnCase(1, 60, 45, 4, 2, 32, False, window), torch.float16, "cpu")


def test_cpu_float64_is_exact():
    errors = check_api(flash_attn_func, AttnCase(2, 37, 53, 4, 2, 16, True), torch.float64, "cpu")
    assert errors["out"]["max"] < 1e-12 and errors["dq"]["max"] < 1e-12


def test_chunking_is_invisible(monkeypatch):
    """Many small key chunks (down to the 16-key floor) give the same answer as one chunk."""
    case = AttnCase(2, 70, 90, 4, 2, 32, True)
    q, k, v = (torch.randn(2, s, h, 32, dtype=torch.float64) for s, h in ((70, 4), (90, 2), (90, 2)))
    one = flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    monkeypatch.setattr(cpu_path, "_CHUNK_ELEMENTS", 1)
    assert cpu_path._chunk_size(2, 4, 70, 90) == 16
    many = flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    torch.testing.assert_close(one[0], many[0])
    torch.testing.assert_close(one[1], many[1])
    assert case.seqlen_k > 16


def test_chunk_memory_is_linear_in_seqlen():
    """The score chunk holds at most max(2**24 elements, 16 keys per row): O(seqlen x chunk), not seqlen^2."""
    for s in (1024, 8192, 65536):
        chunk = cpu_path._chunk_size(1, 16, s, s)
        assert 16 * s * chunk <= max(cpu_path._CHUNK_ELEMENTS, 16 * s * 16)
