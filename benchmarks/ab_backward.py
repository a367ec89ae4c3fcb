"""A/B of backward variants in one process on the GPU: ``attention_backward`` alone, same inputs, bf16.

    PYTHONPATH=. python benchmarks/ab_backward.py --out ab.csv

Variants: ``split`` (dQ kernel first, computing delta, then dK/dV), ``fused`` (preprocessing pass, then dQ and
dK/dV programs in one launch), each with the banded tiles walked in one loop (``configs.ONE_LOOP``) or in three
runs.
Shapes are ``head_dim:causal:seqlen[:window]`` at 16K tokens, hidden 2048; each variant is timed twice, in
alternating order, so the spread between the two runs shows the noise.
"""

from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench

from flash_attention.ops import configs
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward

from sweep_helpers import parse_shapes, write_csv

VARIANTS = {"split": ("split", True), "split-3loops": ("split", False), "fused": ("fused", True),
            "fused-3loops": ("fused", False)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab.csv")
    ap.add_argument("--shapes", default="128:1:1024,128:1:2048,128:1:8192,64:1:2048,64:1:8192")
    ap.add_argument("--variants", default="split,split-3loops")
    args = ap.parse_args()
    rows = []
    for sh in parse_shapes(args.shapes):
        d, causal, s, window = sh.head_dim, sh.causal, sh.seqlen, sh.window
        q, k, v, do = sh.randn(4)
        f = sh.features()
        o, lse = attention_forward(q, k, v, f)
        fl = 2.5 * sh.fwd_flops()
        ref = None
        for rep in range(2):
            names = args.variants.split(",")
            for name in (names if rep == 0 else names[::-1]):
                mode, one_loop = VARIANTS[name]
                configs.ONE_LOOP = one_loop
                fn = lambda: attention_backward(do, q, k, v, o, lse, f, dq_mode=mode)  # noqa: E731
                got = fn()
                if ref is None:
                    ref = got
                diff = max(float((a.float() - r.float()).abs().max()) for a, r in zip(got[:3], ref[:3]))
                t = do_bench(fn, warmup=25, rep=100, return_mode="median")
                rows.append(dict(d=d, causal=int(causal), seqlen=s, window=window[0], variant=name, rep=rep, ms=t,
                                 bwd_tflops=fl / t * 1e-9, max_diff_vs_first=diff))
                print(rows[-1], flush=True)
        configs.ONE_LOOP = True
        del q, k, v, do, o, lse, ref
        torch.cuda.empty_cache()
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
