"""Where a benchmark row's time goes, for ours beside FlexAttention and cuDNN, on the GPU.

    PYTHONPATH=. python benchmarks/diagnose.py --out diag.csv --shapes 128:1:2048,128:1:8192

Per shape (head_dim:causal:seqlen at 16K tokens, hidden 2048, bf16) and implementation:
* ``fwd_ms``/``fwd_bwd_ms``: the benchmark's own timings (do_bench, L2 flushed), backward = difference;
* ``graph_fwd_bwd_ms``: the same forward+backward replayed from a CUDA graph: GPU time without host launches,
  so ``fwd_bwd_ms - graph_fwd_bwd_ms`` is what the host costs;
* ``host_fwd_bwd_ms``: host time to issue one forward+backward while the GPU is kept busy (never waits on it);
* ``kernels``: GPU time per kernel (torch.profiler), summed over the calls and divided by their number;
* for ours, ``bwd_only_ms``: ``attention_backward`` alone (no autograd, no forward).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
from triton.testing import do_bench

from flash_attention import bench
from flash_attention.features import Features
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward

from sweep_helpers import graphed, parse_shapes, write_csv


def ms(fn) -> float:
    return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))


def graph_ms(fn) -> float | None:
    """GPU time of ``fn`` replayed from a CUDA graph (None when it cannot be captured)."""
    try:
        return ms(graphed(fn))
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        print("graph capture failed:", str(exc).splitlines()[0][:160], flush=True)
        return None


def host_ms(fn, n: int = 50) -> float:
    """Host time per call of ``fn`` while the GPU is busy with a long sleep, so the host never waits."""
    fn()
    torch.cuda.synchronize()
    torch.cuda._sleep(2_000_000_000)  # ~1 s at 2 GHz: longer than n host issues
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    t = (time.perf_counter() - t0) / n * 1e3
    torch.cuda.synchronize()
    return t


def kernels(fn, n: int = 10, width: int = 40) -> str:
    """``name=us`` per kernel (its name's first ``width`` characters), GPU time per call, longest first."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
    tot = defaultdict(float)
    for e in prof.key_averages():
        if e.device_time_total > 0:
            tot[e.key[:width]] += e.device_time_total / n
    return "; ".join(f"{k}={v:.0f}us" for k, v in sorted(tot.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="diag.csv")
    ap.add_argument("--shapes", default="128:1:1024,128:1:2048,128:1:8192,128:0:1024,128:0:4096,64:1:8192")
    ap.add_argument("--impls", default="ours,flex,sdpa_cudnn")
    args = ap.parse_args()
    rows = []
    for sh in parse_shapes(args.shapes):
        d, causal, s = sh.head_dim, int(sh.causal), sh.seqlen
        shape = bench.Shape("bf16", sh.batch, sh.nheads, sh.nheads, s, s, d, sh.causal)
        bshd = bench.make_inputs(shape, "cuda")
        fl = bench.attn_flops(shape)
        for impl in args.impls.split(","):
            leaves = bench.as_leaves(bshd, bhsd=impl != "ours")
            prep = bench.prepare_impl(impl, shape, leaves, leaves)
            with prep.context():
                prep.fwd_bwd()
                f_ms, fb_ms = ms(prep.fwd), ms(prep.fwd_bwd)
                row = dict(d=d, causal=bool(causal), seqlen=s, impl=impl,
                           fwd_ms=f_ms, fwd_bwd_ms=fb_ms, fwd_tflops=fl / f_ms * 1e-9,
                           bwd_tflops=2.5 * fl / (fb_ms - f_ms) * 1e-9,
                           graph_fwd_bwd_ms=graph_ms(prep.fwd_bwd), host_fwd_bwd_ms=host_ms(prep.fwd_bwd),
                           kernels=kernels(prep.fwd_bwd))
            if impl == "ours":
                q, k, v, do = bshd
                f = Features(d ** -0.5, bool(causal))
                o, lse = attention_forward(q, k, v, f)
                row["bwd_only_ms"] = ms(lambda: attention_backward(do, q, k, v, o, lse, f))
                row["bwd_only_tflops"] = 2.5 * fl / row["bwd_only_ms"] * 1e-9
            rows.append(row)
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        del bshd
        torch.cuda.empty_cache()
    write_csv(args.out, rows)

if __name__ == "__main__":
    main()
