"""KV-cache inference (``flash_attn_with_kvcache``): the split-KV decode kernel under the interpreter and the CPU
path against the float64 reference, with the cache update checked element by element: contiguous, paged and
``cache_batch_idx`` storage, left padding, rotary (both layouts), every score feature alone and combined, split
counts, empty sequences, validation errors and torch.compile."""

import itertools

import pytest
import torch

from flash_attention import flash_attn_with_kvcache, use_backend
from flash_attention.ops.decode import num_splits_heuristic
from flash_attention.testing import check_kvcache


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("seqlen_q,seqlen_new", [(1, 1), (1, 0), (4, 4), (3, 0), (2, 5)])
def test_kvcache_plain(backend, dtype, seqlen_q, seqlen_new):
    check_kvcache(backend, dtype, seqlen_q=seqlen_q, seqlen_new=seqlen_new)


FEATURES = {
    "causal": dict(causal=True, seqlen_q=4, seqlen_new=4),
    "window": dict(window_size=(9, 0), seqlen_q=3, seqlen_new=2),
    "window_both": dict(window_size=(5, 2), seqlen_q=3, seqlen_new=0),
    "softcap": dict(softcap=1.5),
    "alibi_heads": dict(alibi="heads", causal=True, seqlen_q=2, seqlen_new=2),
    "alibi_batch": dict(alibi="batch"),
    "mqa_group8": dict(nheads=8, nheads_k=1, seqlen_q=3, seqlen_new=3, causal=True),  # 24 rows: two row tiles
    "mha": dict(nheads=3, nheads_k=3, head_dim=40),  # head_dim not a power of two
    "head_dim_64": dict(head_dim=64, nheads=2, nheads_k=1),
}


@pytest.mark.parametrize("name", list(FEATURES))
def test_kvcache_feature(backend, name):
    check_kvcache(backend, torch.float16, **FEATURES[name])


STORAGE = {
    "paged_16": dict(page_size=16),
    "paged_8": dict(page_size=8, causal=True, seqlen_q=2, seqlen_new=2),  # a key tile spans two pages
    "paged_48": dict(page_size=48),  # one page per sequence, not a multiple of the key tile
    "batch_idx": dict(batch_idx=True),
    "leftpad": dict(leftpad=True, causal=True, seqlen_q=2, seqlen_new=2),
    "batch_idx_leftpad": dict(batch_idx=True, leftpad=True, window_size=(6, 0)),
}


@pytest.mark.parametrize("name", list(STORAGE))
def test_kvcache_storage(backend, name):
    check_kvcache(backend, torch.float16, **STORAGE[name])


@pytest.mark.parametrize("rotary", ["interleaved", "halves"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("rotary_dim", [None, 16])
def test_kvcache_rotary(backend, rotary, causal, rotary_dim):
    check_kvcache(backend, torch.float32, seqlen_q=3, seqlen_new=3, rotary=rotary, rotary_dim=rotary_dim,
                  causal=causal)


def test_kvcache_rotary_leftpad_paged(backend):
    check_kvcache(backend, torch.float16, seqlen_q=2, seqlen_new=2, rotary="halves", leftpad=True, causal=True)
    check_kvcache(backend, torch.float16, seqlen_q=1, seqlen_new=1, rotary="interleaved", page_size=16)


@pytest.mark.parametrize("num_splits", [1, 2, 3, 7, 0])
def test_kvcache_splits(backend, num_splits):
    # 96 keys = 6 tiles of 16 under the interpreter: 7 splits leaves empty splits, which must merge away.
    check_kvcache(backend, torch.float16, cache_len=96, fills=[90, 37, 0], num_splits=num_splits, seqlen_new=1,
                  alibi="heads")


def test_kvcache_empty_sequences(backend):
    # Entry 1 has no keys at all (nothing filled, nothing appended): out 0, lse -inf, no NaN.
    check_kvcache(backend, torch.float16, fills=[5, 0, 17], seqlen_new=0, num_splits=2)
    # Causal with more queries than keys: the first rows see nothing.
    check_kvcache(backend, torch.float16, fills=[0, 1, 2], seqlen_q=4, seqlen_new=0, causal=True)


def test_kvcache_full_cache(backend):
    # Appending fills the cache to its last slot.
    check_kvcache(backend, torch.float16, cache_len=32, fills=[30, 28, 31], seqlen_new=1, page_size=16)


COMBOS = list(itertools.product([0, 16], [False, True], [(-1, -1), (7, 1)], [0.0, 2.0], ["", "batch"],
                                ["", "interleaved"]))


@pytest.mark.parametrize("page_size,causal,window,softcap,alibi,rotary", COMBOS)
def test_kvcache_combinations(kernel_device, page_size, causal, window, softcap, alibi, rotary):
    with use_backend("triton"):
        check_kvcache(kernel_device, torch.float16, batch=2, seqlen_q=2, seqlen_new=2, cache_len=32,
                      page_size=page_size, causal=causal, window_size=window, softcap=softcap, alibi=alibi,
                      rotary=rotary, num_splits=2)


def test_kvcache_int_seqlens_and_default():
    q = torch.randn(2, 1, 4, 16)
    k_cache, v_cache = torch.randn(2, 10, 2, 16), torch.randn(2, 10, 2, 16)
    out_int = flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=6)
    out_t = flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=torch.tensor([6, 6], dtype=torch.int32))
    torch.testing.assert_close(out_int, out_t)
    # No cache_seqlens: nothing filled, so with no new keys every row is empty.
    out0, lse0 = flash_attn_with_kvcache(q, k_cache, v_cache, return_softmax_lse=True)
    assert torch.equal(out0, torch.zeros_like(out0)) and torch.isneginf(lse0).all()


def test_num_splits_heuristic():
    # Many programs already: no split. One sequence of 128K keys on 132 SMs: about two waves, capped at 128.
    assert num_splits_heuristic(32, 8, 1, 131072, 64, 132) == 1
    assert num_splits_heuristic(1, 8, 1, 131072, 64, 132) == 33
    assert num_splits_heuristic(1, 1, 1, 1 << 20, 64, 132) == 128
    # Short caches keep >= 4 tiles per split.
    assert num_splits_heuristic(1, 8, 1, 512, 64, 132) == 2
    assert num_splits_heuristic(1, 8, 1, 64, 64, 132) == 1


def _inputs():
    q = torch.randn(2, 1, 4, 16)
    cache = torch.randn(2, 12, 2, 16)
    new = torch.randn(2, 1, 2, 16)
    return dict(q=q, k_cache=cache, v_cache=cache.clone(), k=new, v=new.clone(),
                cache_seqlens=torch.tensor([3, 5], dtype=torch.int32))


I32 = torch.int32
CASES = [
    (dict(q=torch.randn(2, 4, 16)), ValueError, "q must have 4 dimensions"),
    (dict(q=torch.ones(2, 1, 4, 16, dtype=torch.int32)), TypeError, "q must have dtype"),
    (dict(k_cache=torch.randn(2, 12, 2, 16).half()), TypeError, "k_cache must have the same dtype"),
    (dict(v_cache=torch.randn(2, 13, 2, 16)), ValueError, "v_cache must have the shape of k_cache"),
    (dict(k_cache=torch.randn(2, 12, 2, 8), v_cache=torch.randn(2, 12, 2, 8)), ValueError, "headdim 16 like q"),
    (dict(k_cache=torch.randn(2, 12, 3, 16), v_cache=torch.randn(2, 12, 3, 16)), ValueError, "multiple of nheads_k"),
    (dict(v=None), ValueError, "k and v must be given together"),
    (dict(k=torch.randn(3, 1, 2, 16), v=torch.randn(3, 1, 2, 16)), ValueError, "k must have shape"),
    (dict(k_cache=torch.randn(2, 16, 12, 2).transpose(1, 3).transpose(1, 2)), ValueError, "contiguous last"),
    (dict(cache_seqlens=torch.tensor([3, 5])), TypeError, "cache_seqlens must be int32"),
    (dict(cache_seqlens=torch.tensor([3], dtype=I32)), ValueError, "cache_seqlens must have shape"),
    (dict(cache_seqlens=-1), ValueError, "cache_seqlens must be >= 0"),
    (dict(cache_seqlens=2.0), TypeError, "cache_seqlens must be an int"),
    (dict(cache_seqlens=torch.tensor([3, -1], dtype=I32)), ValueError, "cache_seqlens must be >= 0"),
    (dict(cache_seqlens=torch.tensor([3, 12], dtype=I32)), ValueError, "must fit the cache"),
    (dict(cache_batch_idx=torch.tensor([0, 2], dtype=I32)), ValueError, "cache_batch_idx must index"),
    (dict(cache_batch_idx=torch.tensor([0, 1])), TypeError, "cache_batch_idx must be int32"),
    (dict(cache_leftpad=torch.tensor([4, 0], dtype=I32)), ValueError, r"cache_leftpad must lie in \[0"),
    (dict(block_table=torch.tensor([[0], [1]], dtype=I32), cache_batch_idx=torch.tensor([0, 1], dtype=I32)),
     ValueError, "not supported with a paged cache"),
    (dict(block_table=torch.tensor([[0], [2]], dtype=I32)), ValueError, r"block_table\[1, 0\] = 2 is outside"),
    (dict(block_table=torch.tensor([0, 1], dtype=I32)), ValueError, "block_table must have 2 dimensions"),
    (dict(block_table=torch.tensor([[0], [1]], dtype=I32), cache_seqlens=torch.tensor([3, 12], dtype=I32)),
     ValueError, "must fit the cache"),
    (dict(rotary_cos=torch.randn(16, 8)), ValueError, "rotary_cos and rotary_sin must be given together"),
    (dict(rotary_cos=torch.randn(16, 9), rotary_sin=torch.randn(16, 9)), ValueError, "rotary_dim <= headdim"),
    (dict(rotary_cos=torch.randn(5, 8), rotary_sin=torch.randn(5, 8)), ValueError, "position 5 is needed"),
    (dict(num_splits=-1), ValueError, "num_splits must be an int >= 0"),
    (dict(window_size=(-2, 0)), ValueError, "window_size left"),
    (dict(softcap=-1.0), ValueError, "softcap"),
    (dict(alibi_slopes=torch.rand(3)), ValueError, "alibi_slopes must have shape"),
]


@pytest.mark.parametrize("change,error,match", CASES)
def test_kvcache_validation(change, error, match):
    args = _inputs()
    args.update(change)
    before = args["k_cache"].clone()
    with pytest.raises(error, match=match):
        flash_attn_with_kvcache(**args)
    # A rejected call leaves the cache untouched.
    if args["k_cache"].shape == before.shape and args["k_cache"].dtype == before.dtype:
        assert torch.equal(args["k_cache"], before)


def test_kvcache_compile_fullgraph():
    q = torch.randn(2, 1, 4, 16)
    new_k, new_v = torch.randn(2, 1, 2, 16), torch.randn(2, 1, 2, 16)
    caches = [torch.randn(2, 12, 2, 16) for _ in range(2)]
    seqlens = torch.tensor([3, 7], dtype=torch.int32)

    def step(q, k_cache, v_cache, k, v, seqlens):
        return flash_attn_with_kvcache(q, k_cache, v_cache, k, v, cache_seqlens=seqlens, causal=True)

    eager_caches = [c.clone() for c in caches]
    eager = step(q, *eager_caches, new_k, new_v, seqlens)
    compiled_caches = [c.clone() for c in caches]
    compiled = torch.compile(step, fullgraph=True)(q, *compiled_caches, new_k, new_v, seqlens)
    torch.testing.assert_close(compiled, eager)
    # The in-place append survives compilation.
    for c, e in zip(compiled_caches, eager_caches):
        assert torch.equal(c, e)
