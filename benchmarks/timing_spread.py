"""The spread of repeated timings of one short call in one process, launched eagerly and replayed from a CUDA
graph: if the spread of our eager call vanishes in the graph, it comes from the host side of the call (NOTES entry
64: the bf16 head_dim-64 causal 1K forward read 229-325 TFLOPS in one process, cuDNN 327-336).

    PYTHONPATH=. python benchmarks/timing_spread.py --shapes 64:1:1024 --repeats 8 --out spread.csv
    PYTHONPATH=. python benchmarks/timing_spread.py --set TL_FORWARD_PLANS=1 --out spread-plans.csv
"""

from __future__ import annotations

import argparse

from triton.testing import do_bench

from flash_attention.ops import configs

from sweep_helpers import forward_pair, graphed, parse_shapes, write_csv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="timing-spread.csv")
    ap.add_argument("--shapes", default="64:1:1024")
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=0|1",
                    help="set a boolean of flash_attention.ops.configs for the whole run (repeatable)")
    args = ap.parse_args()
    configs.set_switches(args.set)
    rows = []
    for sh in parse_shapes(args.shapes):
        eager, fl = forward_pair(sh)
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
                                 tflops=fl / ms * 1e-9, switches=" ".join(args.set)))
                print(rows[-1], flush=True)
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
