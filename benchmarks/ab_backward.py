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
import csv

import torch
from triton.testing import do_bench

from flash_attention.features import Features
from flash_attention.ops import configs
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward

VARIANTS = {"split": ("split", True), "split-3loops": ("split", False), "fused": ("fused", True),
            "fused-3loops": ("fused", False)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab.csv")
    ap.add_argument("--shapes", default="128:1:1024,128:1:2048,128:1:8192,64:1:2048,64:1:8192")
    ap.add_argument("--variants", default="split,split-3loops")
    args = ap.parse_args()
    rows = []
    for spec in args.shapes.split(","):
        parts = [int(x) for x in spec.split(":")]
        d, causal, s = parts[:3]
        window = (parts[3], 0) if len(parts) > 3 else (-1, -1)
        b, h = 16384 // s, 2048 // d
        torch.manual_seed(0)
        q, k, v, do = (torch.randn(b, s, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(4))
        f = Features(d ** -0.5, bool(causal), window_size=window)
        o, lse = attention_forward(q, k, v, f)
        # visible pairs: causal halves the work; a window keeps ~window keys per query
        frac = 0.5 if causal and window[0] < 0 else (min(window[0] + 1, s) / s if window[0] >= 0 else 1.0)
        fl = 2.5 * 4 * b * h * s * s * d * frac
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
                rows.append(dict(d=d, causal=causal, seqlen=s, window=window[0], variant=name, rep=rep, ms=t,
                                 bwd_tflops=fl / t * 1e-9, max_diff_vs_first=diff))
                print(rows[-1], flush=True)
        configs.ONE_LOOP = True
        del q, k, v, do, o, lse, ref
        torch.cuda.empty_cache()
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
