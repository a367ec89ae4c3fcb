"""Whether a GPU left idle times slow: a forward timed with do_bench right after the GPU sat idle (as it does while
a kernel compiles in the benchmark) against the same forward timed after a spin-up (``bench._spin_up``), ours and
SDPA's cuDNN backend, three rounds each, in one process.

    PYTHONPATH=. python benchmarks/idle_clocks.py --shapes 64:1:1024,128:1:1024 --idle 3 --out idle.csv
"""

from __future__ import annotations

import argparse
import time

from triton.testing import do_bench

from flash_attention import bench

from sweep_helpers import forward_pair, parse_shapes, write_csv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="idle-clocks.csv")
    ap.add_argument("--shapes", default="64:1:1024,128:1:1024")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds the GPU sits idle before the cold timing")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for sh in parse_shapes(args.shapes):
        fns, fl = forward_pair(sh)
        for rnd in range(args.rounds):
            for name, fn in fns.items():
                time.sleep(args.idle)
                cold = do_bench(fn, warmup=25, rep=100, return_mode="median")
                bench._last_timed[0] = 0.0
                bench._spin_up(fn)
                warm = do_bench(fn, warmup=25, rep=100, return_mode="median")
                rows.append(dict(d=sh.head_dim, causal=int(sh.causal), seqlen=sh.seqlen, impl=name, round=rnd,
                                 idle_s=args.idle, cold_tflops=fl / cold * 1e-9, warm_tflops=fl / warm * 1e-9,
                                 cold_over_warm=warm / cold))
                print(rows[-1], flush=True)
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
