"""Decode benchmark: one new query token per sequence against a long KV cache, the step of token generation.

    python -m flash_attention.bench_decode [--batches 1 8 32] [--seqlens 4096 ... 131072] [--out CSV] [--sweep CSV]

Decoding reads the whole cache once per step and does little arithmetic, so the figure of merit is bandwidth:
bytes of K and V read (``2 * B * Sk * Hk * D * 2``) divided by the step's time, against the device's copy
bandwidth measured in the same run (bytes read + written by a 1 GiB ``copy_``). bf16, 32 query heads, 8 kv heads
(GQA), head_dim 128. Side by side in one process:

* ``ours``: ``flash_attn_with_kvcache`` on a contiguous cache ``(B, Sk, Hk, D)``;
* ``ours_paged``: the same on a paged cache (pages of 256 tokens, shuffled block table);
* ``ours_append``: a whole decode step: append one new token's K/V to the contiguous cache, then attend;
* ``sdpa_cudnn``, ``sdpa_flash``, ``sdpa_efficient``: PyTorch SDPA with one backend each, ``enable_gqa=True`` on
  ``(B, H, 1, D)`` queries and ``(B, Hk, Sk, D)`` caches;
* ``flex``: compiled FlexAttention (``enable_gqa=True``), which dispatches to its decoding kernel.

Every implementation is captured in a CUDA graph, as a serving engine does, and timed by replaying it with
Triton's ``do_bench`` (L2 cleared before each replay). The graph holds 16 calls, one per "layer", each on its own
caches (cycled when 16 would not fit in 4 GiB; a cache that large cannot stay in L2 anyway): ``ms`` is the
graph's time / 16, so a step's fixed cost (graph launch, event timing) is not charged 16 times, while every
kernel's launch and tail still is. ``ms_single`` is one call per graph, the fixed cost included.
``--sweep`` also times our kernel over block sizes, warps, stages and split counts on a few shapes.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from .bench import _copy_ms, environment, time_ms

COLUMNS = ["gpu", "torch", "triton", "cuda", "date", "impl", "dtype", "B", "Sk", "H", "Hk", "D", "page",
           "ms", "tb_per_s", "frac_copy", "ms_single", "frac_copy_single", "vs_cudnn", "vs_flash", "vs_flex",
           "copy_tb_per_s", "note"]
SWEEP_COLUMNS = ["gpu", "date", "B", "Sk", "paged", "page_tiles", "block_n", "num_warps", "num_stages",
                 "num_splits", "ms", "tb_per_s"]
IMPLS = ("ours", "ours_paged", "ours_append", "sdpa_cudnn", "sdpa_flash", "sdpa_efficient", "flex")
PAGE = 256


def kv_bytes(b: int, sk: int, hk: int, d: int, itemsize: int = 2) -> int:
    return 2 * b * sk * hk * d * itemsize


LAYERS = 16
LAYER_BYTES = 4 << 30


def graph_time_ms(fns: Sequence[Callable[[], Any]], calls: int = 1, warmup_ms: float = 25, rep_ms: float = 200
                  ) -> float:
    """Median time per call of ``calls`` calls (cycling over ``fns``) replayed from one CUDA graph (L2 cleared
    before each replay)."""
    for fn in fns:
        fn()  # compile / autotune outside the capture
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fns[0]()  # warm the side stream as PyTorch's graph docs advise
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            fns[i % len(fns)]()
    return time_ms(graph.replay, warmup_ms, rep_ms) / calls


def _ours(b: int, sk: int, h: int, hk: int, d: int, dtype, paged: bool, append: bool = False) -> Callable[[], Any]:
    from .kvcache import flash_attn_with_kvcache

    q = torch.randn(b, 1, h, d, device="cuda", dtype=dtype)
    seqlens = torch.full((b,), sk - 1 if append else sk, dtype=torch.int32, device="cuda")
    kw: Dict[str, Any] = {}
    if append:
        kw = dict(k=torch.randn(b, 1, hk, d, device="cuda", dtype=dtype),
                  v=torch.randn(b, 1, hk, d, device="cuda", dtype=dtype))
    if paged:
        pages = sk // PAGE
        k_cache = torch.randn(b * pages, PAGE, hk, d, device="cuda", dtype=dtype)
        v_cache = torch.randn_like(k_cache)
        table = torch.randperm(b * pages, device="cuda").view(b, pages).to(torch.int32)
        return lambda: flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=seqlens, block_table=table, **kw)
    k_cache = torch.randn(b, sk, hk, d, device="cuda", dtype=dtype)
    v_cache = torch.randn_like(k_cache)
    return lambda: flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=seqlens, **kw)


def _kernel_only(b: int, sk: int, h: int, hk: int, d: int, dtype, config, num_splits: int, paged: bool = False
                 ) -> Callable[[], Any]:
    """The decode launcher alone (for the sweep): no validation, no Python front end."""
    from .features import Features
    from .ops.decode import decode_forward

    q = torch.randn(b, 1, h, d, device="cuda", dtype=dtype)
    seqlens = torch.full((b,), sk, dtype=torch.int32, device="cuda")
    f = Features(d ** -0.5, False, (-1, -1), 0.0, None)
    if paged:
        pages = sk // PAGE
        k_cache = torch.randn(b * pages, PAGE, hk, d, device="cuda", dtype=dtype)
        v_cache = torch.randn_like(k_cache)
        table = torch.randperm(b * pages, device="cuda").view(b, pages).to(torch.int32)
        return lambda: decode_forward(q, k_cache, v_cache, seqlens, f, sk, block_table=table, num_splits=num_splits,
                                      config=config)
    k_cache = torch.randn(b, sk, hk, d, device="cuda", dtype=dtype)
    v_cache = torch.randn_like(k_cache)
    return lambda: decode_forward(q, k_cache, v_cache, seqlens, f, sk, num_splits=num_splits, config=config)


def _sdpa(backend: str, b: int, sk: int, h: int, hk: int, d: int, dtype) -> Callable[[], Any]:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    which = {"sdpa_cudnn": SDPBackend.CUDNN_ATTENTION, "sdpa_flash": SDPBackend.FLASH_ATTENTION,
             "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION}[backend]
    q = torch.randn(b, h, 1, d, device="cuda", dtype=dtype)
    k = torch.randn(b, hk, sk, d, device="cuda", dtype=dtype)
    v = torch.randn_like(k)

    def fn() -> torch.Tensor:
        with sdpa_kernel([which]):
            return sdpa(q, k, v, enable_gqa=True)
    return fn


def _flex(b: int, sk: int, h: int, hk: int, d: int, dtype) -> Callable[[], Any]:
    from .bench import _compiled_flex

    flex = _compiled_flex()
    q = torch.randn(b, h, 1, d, device="cuda", dtype=dtype)
    k = torch.randn(b, hk, sk, d, device="cuda", dtype=dtype)
    v = torch.randn_like(k)
    return lambda: flex(q, k, v, enable_gqa=True)


def prepare(impl: str, b: int, sk: int, h: int, hk: int, d: int, dtype) -> Callable[[], Any]:
    if impl in ("ours", "ours_paged", "ours_append"):
        return _ours(b, sk, h, hk, d, dtype, impl == "ours_paged", impl == "ours_append")
    if impl.startswith("sdpa_"):
        return _sdpa(impl, b, sk, h, hk, d, dtype)
    if impl == "flex":
        return _flex(b, sk, h, hk, d, dtype)
    raise ValueError(f"unknown impl {impl!r}")


def _note(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:140] if lines else ''}"


def run(batches: Sequence[int], seqlens: Sequence[int], h: int = 32, hk: int = 8, d: int = 128,
        dtype=torch.bfloat16, impls: Sequence[str] = IMPLS, progress: bool = True) -> List[Dict[str, Any]]:
    env = environment()
    copy_ms = _copy_ms(1 << 30, "cuda", 25, 200)
    copy_bw = 2 * (1 << 30) / (copy_ms * 1e-3) / 1e12
    rows: List[Dict[str, Any]] = [dict(env, impl="copy", dtype="bf16", ms=copy_ms, tb_per_s=copy_bw,
                                       copy_tb_per_s=copy_bw, note="1 GiB copy_, bytes read + written")]
    for b, sk in itertools.product(batches, seqlens):
        nbytes = kv_bytes(b, sk, hk, d)
        by_impl: Dict[str, Dict[str, Any]] = {}
        for impl in impls:
            rec: Dict[str, Any] = dict(env, impl=impl, dtype=str(dtype).replace("torch.", ""), B=b, Sk=sk, H=h, Hk=hk,
                                       D=d, page=PAGE if impl == "ours_paged" else "", copy_tb_per_s=copy_bw)
            try:
                fns = [prepare(impl, b, sk, h, hk, d, dtype)
                       for _ in range(max(1, min(LAYERS, LAYER_BYTES // nbytes)))]
                single = graph_time_ms(fns[:1])
                ms = graph_time_ms(fns, LAYERS)
                del fns
                bw = nbytes / (ms * 1e-3) / 1e12
                rec.update(ms=ms, tb_per_s=bw, frac_copy=bw / copy_bw, ms_single=single,
                           frac_copy_single=nbytes / (single * 1e-3) / 1e12 / copy_bw)
            except Exception as exc:  # an anchor that cannot run this shape must not stop the run
                rec["note"] = _note(exc)
            by_impl[impl] = rec
            torch.cuda.empty_cache()
        for rec in by_impl.values():
            for anchor, key in (("sdpa_cudnn", "vs_cudnn"), ("sdpa_flash", "vs_flash"), ("flex", "vs_flex")):
                other = by_impl.get(anchor, {}).get("ms")
                if rec.get("ms") and other:
                    rec[key] = other / rec["ms"]  # > 1: faster than the anchor
            rows.append(rec)
            if progress:
                print(f"B={b:<3} Sk={sk:<7} {rec['impl']:>15} {rec.get('ms', float('nan')) * 1e3:9.1f} us "
                      f"(single {rec.get('ms_single', float('nan')) * 1e3:7.1f}) "
                      f"{rec.get('tb_per_s', float('nan')):5.2f} TB/s ({rec.get('frac_copy', float('nan')):4.0%} "
                      f"of copy) {rec.get('note', '')}", flush=True)
    return rows


def sweep(shapes: Sequence[tuple], h: int = 32, hk: int = 8, d: int = 128, dtype=torch.bfloat16,
          layouts: Sequence[bool] = (False, True)) -> List[Dict[str, Any]]:
    """Our kernel over configs and split counts (0 = heuristic); contiguous and paged (page_tiles on/off)."""
    from .ops.decode import DecodeConfig

    env = environment()
    rows = []
    grid = [(False, bn, w, st, sp, True) for bn, w, st, sp in
            itertools.product((32, 64, 128), (4, 8), (2, 3, 4), (0, 32, 64))]
    grid += [(True, bn, w, st, 0, pt) for bn, w, st, pt in
             itertools.product((32, 64, 128), (4, 8), (2, 3, 4), (True, False))]
    grid = [g for g in grid if g[0] in layouts]
    for b, sk in shapes:
        nbytes = kv_bytes(b, sk, hk, d)
        for paged, block_n, warps, stages, splits, page_tiles in grid:
            if b * hk * max(splits, 1) > 8192:
                continue
            rec = dict(gpu=env["gpu"], date=env["date"], B=b, Sk=sk, paged=paged, block_n=block_n, num_warps=warps,
                       num_stages=stages, num_splits=splits, page_tiles=page_tiles)
            try:
                cfg = DecodeConfig(block_n, warps, stages, page_tiles)
                ms = graph_time_ms([_kernel_only(b, sk, h, hk, d, dtype, cfg, splits, paged)], 1, 10, 60)
                rec.update(ms=ms, tb_per_s=nbytes / (ms * 1e-3) / 1e12)
            except Exception as exc:
                rec["ms"] = ""
                print("sweep", rec, _note(exc))
            rows.append(rec)
            torch.cuda.empty_cache()
        for paged in (False, True):
            best = max((r for r in rows if r["B"] == b and r["Sk"] == sk and r["paged"] == paged and r.get("tb_per_s")),
                       key=lambda r: r["tb_per_s"], default=None)
            print("best", best, flush=True)
    return rows


def _write(path: Path, rows: List[Dict[str, Any]], columns: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seqlens", type=int, nargs="+", default=[4096, 16384, 32768, 65536, 131072])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--out", type=Path, default=None, help="CSV path (default: print only)")
    parser.add_argument("--sweep", type=Path, default=None, help="also sweep our kernel's configs into this CSV")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_decode needs a CUDA GPU; the KV-cache correctness checks run in the test suites")
        return 0
    rows = run(args.batches, args.seqlens, impls=args.impls)
    if args.out:
        _write(args.out, rows, COLUMNS)
    if args.sweep:
        _write(args.sweep, sweep([(1, 16384), (8, 16384)]), SWEEP_COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
