"""GPU suite for KV-cache inference: real cache sizes, float16 and bfloat16, contiguous and paged caches with
page sizes that do and do not match the key tile, split-KV counts, every feature, and CUDA-graph capture."""

import pytest
import torch

from flash_attention import flash_attn_with_kvcache
from flash_attention.testing import check_kvcache

pytestmark = pytest.mark.gpu
DTYPES = [torch.float16, torch.bfloat16]

CASES = {
    "decode": dict(),
    "decode_paged_256": dict(page_size=256),
    "decode_paged_16": dict(page_size=16),
    "decode_paged_48": dict(page_size=48, causal=True, cache_len=48 * 40),
    "prefill_chunk_causal": dict(seqlen_q=37, seqlen_new=37, causal=True),
    "no_append_window": dict(seqlen_new=0, seqlen_q=5, window_size=(300, 0)),
    "batch_idx_leftpad": dict(batch_idx=True, leftpad=True, causal=True, seqlen_q=2, seqlen_new=2),
    "rotary_interleaved": dict(rotary="interleaved", causal=True, seqlen_q=4, seqlen_new=4),
    "rotary_halves_partial": dict(rotary="halves", rotary_dim=64, page_size=256),
    "softcap_alibi": dict(softcap=30.0, alibi="batch"),
    "all": dict(page_size=256, causal=True, window_size=(500, 0), softcap=5.0, alibi="heads", rotary="halves",
                seqlen_q=3, seqlen_new=3),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(CASES))
def test_kvcache(name, dtype):
    kw = dict(cache_len=2048, **CASES[name]) if "cache_len" not in CASES[name] else CASES[name]
    check_kvcache("cuda", dtype, batch=4, nheads=16, nheads_k=4, head_dim=128, **kw)


@pytest.mark.parametrize("head_dim", [64, 96, 256])
@pytest.mark.parametrize("heads", [(8, 1), (8, 8), (32, 8)])
def test_kvcache_shapes(head_dim, heads):
    check_kvcache("cuda", torch.bfloat16, batch=3, nheads=heads[0], nheads_k=heads[1], head_dim=head_dim,
                  cache_len=1536, page_size=256, seqlen_q=2, seqlen_new=1)


@pytest.mark.parametrize("num_splits", [1, 5, 64, 0])
def test_kvcache_splits_long(num_splits):
    # One long sequence and ragged others: splits end mid-sequence and some are empty.
    check_kvcache("cuda", torch.bfloat16, batch=3, nheads=8, nheads_k=2, head_dim=128, cache_len=16384,
                  fills=[16383, 5000, 0], seqlen_new=1, num_splits=num_splits, page_size=256)


def test_kvcache_cuda_graph_decode_loop():
    """Capture one decode step (append + attend) in a CUDA graph, replay it for several tokens and compare with
    eager steps: the graph carries no host-side checks and no host syncs."""
    b, h, hk, d, cap = 2, 8, 2, 128, 1024
    dev, dt = "cuda", torch.bfloat16
    k_cache = torch.randn(b, cap, hk, d, device=dev, dtype=dt)
    v_cache = torch.randn_like(k_cache)
    seqlens = torch.tensor([100, 517], dtype=torch.int32, device=dev)
    q, k, v = (torch.randn(b, 1, n, d, device=dev, dtype=dt) for n in (h, hk, hk))
    eager_k, eager_v, eager_len = k_cache.clone(), v_cache.clone(), seqlens.clone()

    def step(kc, vc, lens):
        return flash_attn_with_kvcache(q, kc, vc, k, v, cache_seqlens=lens, causal=True)

    step(k_cache.clone(), v_cache.clone(), seqlens)  # compile outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step(k_cache, v_cache, seqlens)
    for _ in range(4):
        q.normal_(), k.normal_(), v.normal_()
        graph.replay()
        ref = step(eager_k, eager_v, eager_len)
        torch.testing.assert_close(out, ref, atol=0, rtol=0)
        seqlens += 1
        eager_len += 1
    torch.testing.assert_close(k_cache, eager_k, atol=0, rtol=0)


def test_kvcache_out_of_range_block_table_raises():
    q = torch.randn(1, 1, 4, 64, device="cuda", dtype=torch.float16)
    cache = torch.randn(4, 16, 2, 64, device="cuda", dtype=torch.float16)
    table = torch.tensor([[0, 9]], dtype=torch.int32, device="cuda")
    with pytest.raises(ValueError, match="outside the cache"):
        flash_attn_with_kvcache(q, cache, cache.clone(), cache_seqlens=20, block_table=table)
