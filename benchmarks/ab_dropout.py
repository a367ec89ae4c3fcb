"""Dropout's cost against plain attention, in one process, forward and forward+backward, 16K tokens x 2 (B2 S8K,
hidden 2048), bf16:

- ``--side forward``: dropout's forward in the Gluon kernel and in the tl kernel (``configs.GLUON_FWD_DROPOUT`` on,
  off, on);
- ``--side backward``: dropout's backward in the Gluon kernel with dQ fused, with dQ from the split kernel, and on
  the tl kernels (``configs.GLUON_BWD_DROPOUT``, ``configs.BWD_GLUON_DQ``), the first again at the end.

    PYTHONPATH=. python benchmarks/ab_dropout.py --side backward --out ab-dropout-bwd.csv
"""

from __future__ import annotations

import argparse
from typing import Dict, List, Tuple
from unittest import mock

from flash_attention.bench_features import run_case
from flash_attention.ops import configs, scores

from sweep_helpers import write_csv

# (label, configs switches) per variant; the first runs twice, around the others, to show the spread.
VARIANTS: Dict[str, List[Tuple[str, Dict[str, object]]]] = {
    "forward": [("gluon_fwd", dict(GLUON_FWD_DROPOUT=True)), ("tl_fwd", dict(GLUON_FWD_DROPOUT=False))],
    "backward": [("gluon_bwd_fused_dq", dict(GLUON_BWD_DROPOUT=True, BWD_GLUON_DQ=True)),
                 ("gluon_bwd_split_dq", dict(GLUON_BWD_DROPOUT=True, BWD_GLUON_DQ=False)),
                 ("tl_bwd", dict(GLUON_BWD_DROPOUT=False, BWD_GLUON_DQ=None))],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab-dropout.csv")
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--head-dims", default="128,64")
    ap.add_argument("--causal", default="0,1")
    ap.add_argument("--side", choices=sorted(VARIANTS), default="forward")
    ap.add_argument("--only", default="", help="comma-separated variant labels to run (default: all of the side)")
    args = ap.parse_args()
    rows = []
    variants = [v for v in VARIANTS[args.side] if not args.only or v[0] in args.only.split(",")]
    variants = variants + variants[:1]
    for d in map(int, args.head_dims.split(",")):
        for causal in (bool(int(c)) for c in args.causal.split(",")):
            base = dict(b=2, h=2048 // d, hk=2048 // d, s=8192, d=d, causal=causal)
            plain = run_case("plain", **base)
            group = [dict(plain, variant="plain")]
            for label, switches in variants:
                with mock.patch.multiple(configs, **switches):
                    group.append(dict(run_case("dropout", dropout_p=args.p, **base), variant=label))
            for r in group:
                r["rounds"] = scores.DROPOUT_ROUNDS.value
                if "bwd_ms" in r and "bwd_ms" in plain:  # rows that failed carry a note instead
                    r.update(fwd_slowdown=r["fwd_ms"] / plain["fwd_ms"] - 1,
                             bwd_slowdown=r["bwd_ms"] / plain["bwd_ms"] - 1)
                rows.append(r)
                print({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
