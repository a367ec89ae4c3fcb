"""A/B of forward variants in one process on the GPU: banded tiles walked in one loop or three runs
(``configs.ONE_LOOP``), for given tile configs; bf16, 16K tokens, hidden 2048.

    PYTHONPATH=. python benchmarks/ab_forward.py --out ab-fwd.csv
"""

from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench

from flash_attention.ops import configs
from flash_attention.ops.configs import KernelConfig as C
from flash_attention.ops.forward import attention_forward

from sweep_helpers import parse_shapes, write_csv

TILES = {64: [C(64, 64, 4, 3), C(128, 64, 4, 3)], 128: [C(64, 64, 4, 3), C(128, 128, 8, 3)]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab-fwd.csv")
    ap.add_argument("--shapes", default="128:1:1024,128:1:2048,128:1:8192,64:1:1024,64:1:8192")
    args = ap.parse_args()
    rows = []
    for sh in parse_shapes(args.shapes):
        d, causal, s, window = sh.head_dim, sh.causal, sh.seqlen, sh.window
        q, k, v = sh.randn(3)
        f = sh.features()
        fl = sh.fwd_flops()
        ref = attention_forward(q, k, v, f)[0]
        for one_loop in (True, False):
            configs.ONE_LOOP = one_loop
            for cfg in TILES[d]:
                fn = lambda: attention_forward(q, k, v, f, config=cfg)  # noqa: E731
                diff = float((fn()[0].float() - ref.float()).abs().max())
                t = do_bench(fn, warmup=25, rep=100, return_mode="median")
                rows.append(dict(d=d, causal=int(causal), seqlen=s, window=window[0], one_loop=one_loop, cfg=str(cfg),
                                 ms=t, fwd_tflops=fl / t * 1e-9, max_diff=diff))
                print(rows[-1], flush=True)
        configs.ONE_LOOP = True
        del q, k, v, ref
        torch.cuda.empty_cache()
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
