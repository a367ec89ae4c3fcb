"""Dropout's cost against plain attention, with dropout's forward in the Gluon kernel and in the tl kernel
(``configs.GLUON_FWD_DROPOUT`` on and off, in one process), forward and forward+backward, 16K tokens x 2 (B2 S8K,
hidden 2048), bf16.

    PYTHONPATH=. python benchmarks/ab_dropout.py --out ab-dropout.csv
"""

from __future__ import annotations

import argparse

from flash_attention.bench_features import run_case
from flash_attention.ops import configs, scores

from sweep_helpers import write_csv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab-dropout.csv")
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--head-dims", default="128,64")
    args = ap.parse_args()
    rows = []
    default = configs.GLUON_FWD_DROPOUT
    for d in map(int, args.head_dims.split(",")):
        for causal in (False, True):
            base = dict(b=2, h=2048 // d, hk=2048 // d, s=8192, d=d, causal=causal)
            plain = run_case("plain", **base)
            group = [dict(plain, gluon_dropout="")]
            for on in (True, False, True):  # the Gluon forward twice, around the tl one, to show the spread
                configs.GLUON_FWD_DROPOUT = on
                group.append(dict(run_case("dropout", dropout_p=args.p, **base), gluon_dropout=int(on)))
            configs.GLUON_FWD_DROPOUT = default
            for r in group:
                r.update(rounds=scores.DROPOUT_ROUNDS.value, fwd_slowdown=r["fwd_ms"] / plain["fwd_ms"] - 1,
                         bwd_slowdown=r["bwd_ms"] / plain["bwd_ms"] - 1)
                rows.append(r)
                print({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
