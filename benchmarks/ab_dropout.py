"""Dropout's cost against plain attention for the generator settings in ops/scores.py (``DROPOUT_BITS``,
``DROPOUT_ROUNDS``), forward and forward+backward, B2 H16 S8K head_dim 128 (16K tokens x 2), bf16.

The settings are module constants the kernels compile in, so each variant runs in its own process (the round
script edits them between runs); this script records which ones it ran with.

    PYTHONPATH=. python benchmarks/ab_dropout.py --out ab-dropout-8x7.csv
"""

from __future__ import annotations

import argparse

import torch

from flash_attention.bench_features import run_case
from flash_attention.ops import scores

from sweep_helpers import write_csv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab-dropout.csv")
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--head-dims", default="128")
    args = ap.parse_args()
    tag = dict(bits=scores.DROPOUT_BITS.value, rounds=scores.DROPOUT_ROUNDS.value)
    rows = []
    for d in map(int, args.head_dims.split(",")):
        for causal in (False, True):
            base = dict(b=2, h=2048 // d, hk=2048 // d, s=8192, d=d, causal=causal)
            plain = run_case("plain", **base)
            drop = run_case("dropout", dropout_p=args.p, **base)
            for r in (plain, drop):
                r.update(tag, fwd_slowdown=r["fwd_ms"] / plain["fwd_ms"] - 1,
                         bwd_slowdown=r["bwd_ms"] / plain["bwd_ms"] - 1)
                rows.append(r)
                print({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    write_csv(args.out, rows)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
