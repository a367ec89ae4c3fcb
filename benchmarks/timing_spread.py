"""The spread of repeated timings of one short call in one process, launched eagerly and replayed from a CUDA
graph: if the spread of our eager call vanishes in the graph, it comes from the host side of the call (NOTES entry
64: the bf16 head_dim-64 causal 1K forward read 229-325 TFLOPS in one process, cuDNN 327-336).

    PYTHONPATH=. python benchmarks/timing_spread.py --shapes 64:1:1024 --repeats 8 --out spread.csv
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from flash_attention.interface import flash_attn_func

from sweep_helpers import parse_shapes, write_csv

SDPA = torch.nn.attention.SDPBackend


def graphed(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """``fn`` captured once in a CUDA graph (after warmup on a side stream); the result replays it."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="timing-spread.csv")
    ap.add_argument("--shapes", default="64:1:1024")
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args()
    rows = []
    for sh in parse_shapes(args.shapes):
        q, k, v = sh.randn(3, torch.bfloat16)
        qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))  # the anchors' layout
        fl = sh.fwd_flops()

        def cudnn() -> torch.Tensor:
            with torch.nn.attention.sdpa_kernel(SDPA.CUDNN_ATTENTION):
                return F.scaled_dot_product_attention(qt, kt, vt, is_causal=sh.causal)

        eager: Dict[str, Callable[[], object]] = {
            "ours": lambda: flash_attn_func(q, k, v, causal=sh.causal), "cudnn": cudnn}
        fns = dict(eager)
        for name, fn in eager.items():
            try:
                fns[name + "-graph"] = graphed(fn)
            except Exception as exc:  # recorded, not fatal: the eager rows still answer half the question
                print(f"{name}: no graph ({type(exc).__name__}: {str(exc)[:160]})", flush=True)
        for rep in range(args.repeats):
            for name, fn in fns.items():
                ms = do_bench(fn, warmup=25, rep=100, return_mode="median")
                rows.append(dict(d=sh.head_dim, causal=int(sh.causal), seqlen=sh.seqlen, impl=name, rep=rep, ms=ms,
                                 tflops=fl / ms * 1e-9))
                print(rows[-1], flush=True)
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
