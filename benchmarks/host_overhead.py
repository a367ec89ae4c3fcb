"""Host (CPU) time per call of our attention and of SDPA's backends, on shapes so small that the GPU work is
negligible: what a call costs the Python thread that launches it. When that exceeds the GPU time of the same call
(short sequences, small batches), the GPU waits on the host and the benchmark measures the host.

    PYTHONPATH=. python benchmarks/host_overhead.py --profile prof.txt
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from flash_attention import flash_attn_func


def host_us(fn: Callable[[], object], n: int = 300) -> float:
    """Wall time per call of ``n`` back-to-back calls, the GPU drained before and after (microseconds)."""
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seqlen", type=int, default=128)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--causal", type=int, default=1)
    ap.add_argument("--profile", default=None, help="write a cProfile of our forward+backward here")
    args = ap.parse_args()
    shape = (args.batch, args.seqlen, args.heads, args.head_dim)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    g = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    causal = bool(args.causal)
    qt, kt, vt = (x.detach().transpose(1, 2).requires_grad_() for x in (q, k, v))
    gt = g.transpose(1, 2)

    def ours_fwd():
        with torch.no_grad():
            return flash_attn_func(q, k, v, causal=causal)

    def ours_fb():
        return torch.autograd.grad(flash_attn_func(q, k, v, causal=causal), (q, k, v), g)

    results: Dict[str, float] = {"ours fwd": host_us(ours_fwd), "ours fwd+bwd": host_us(ours_fb)}
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                          ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
        with sdpa_kernel(backend):
            def fwd():
                with torch.no_grad():
                    return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)

            def fb():
                return torch.autograd.grad(F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal),
                                           (qt, kt, vt), gt)

            results[f"sdpa {name} fwd"] = host_us(fwd)
            results[f"sdpa {name} fwd+bwd"] = host_us(fb)
    print(f"host time per call, {shape} bf16 causal={causal} (us):")
    for name, us in results.items():
        print(f"  {name:24s} {us:8.1f}")
    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(200):
            ours_fb()
        torch.cuda.synchronize()
        pr.disable()
        buf = io.StringIO()
        pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(40)
        with open(args.profile, "w") as fh:
            fh.write(buf.getvalue())


if __name__ == "__main__":
    main()
