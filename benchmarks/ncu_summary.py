"""Condense Nsight Compute exports into what a device call's output can carry back.

    ncu -i rep.ncu-rep --page raw --csv > raw.csv
    ncu -i rep.ncu-rep --page source --csv --print-source sass > sass.csv
    python benchmarks/ncu_summary.py --raw raw.csv --sass sass.csv --kernel dkdv

``--raw``: per kernel whose name matches ``--kernel``, its duration, the warp-stall breakdown (PC sampling: share
of samples per reason) and a few throughput metrics. ``--sass``: the instructions with the most stall samples,
with their top reasons, so a stall can be traced to the code that waits.
"""

from __future__ import annotations

import argparse
import csv
import re
from typing import Dict, List


def _num(x: str) -> float:
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return float("nan")


def raw_summary(path: str, kernel: str) -> None:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    start = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
    header, units, body = rows[start], rows[start + 1], rows[start + 2:]
    col = {h: i for i, h in enumerate(header)}
    keep = re.compile(r"gpu__time_duration.sum|sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak|"
                      r"sm__throughput.avg.pct|lts__t_bytes.sum.per_second|"
                      r"l1tex__data_bank_conflicts_pipe_lsu_mem_shared|smsp__inst_executed.sum$|"
                      r"sm__warps_active.avg.per_cycle_active|launch__registers_per_thread")
    for r in body:
        if len(r) != len(header) or not re.search(kernel, r[col["Kernel Name"]]):
            continue
        print(f"== {r[col['Kernel Name']][:90]}")
        for h, i in col.items():
            if keep.search(h):
                print(f"  {h} = {r[i]} {units[i]}")
        stalls = {h: _num(r[i]) for h, i in col.items()
                  if h.startswith("smsp__pcsamp_warps_issue_stalled_") and not h.endswith("_not_issued")}
        total = sum(v for v in stalls.values() if v == v)
        for h, v in sorted(stalls.items(), key=lambda kv: -(kv[1] if kv[1] == kv[1] else 0))[:14]:
            if total and v == v and v > 0:
                print(f"  stall {h[len('smsp__pcsamp_warps_issue_stalled_'):]:32s} {100 * v / total:5.1f}%")


def sass_summary(path: str, top: int) -> None:
    with open(path, newline="") as fh:
        lines = fh.read().splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith('"Address"') or ln.startswith('"#"')), None)
    if start is None:
        print("no source table in", path, lines[:3])
        return
    rows = list(csv.reader(lines[start:]))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    print("columns:", header)
    samp = next(i for i, h in enumerate(header) if h.startswith("Warp Stall Sampling (All"))
    src = next(i for i, h in enumerate(header) if h == "Source")
    reasons = [i for i, h in enumerate(header) if h.startswith("stall_") or "Stall" in h and i != samp
               and "Not-issued" not in h and "All" not in h]
    total = sum(_num(r[samp]) for r in body if _num(r[samp]) == _num(r[samp]))
    print(f"instructions {len(body)}, stall samples {total:.0f}")
    ranked: List[List[str]] = sorted(body, key=lambda r: -(_num(r[samp]) if _num(r[samp]) == _num(r[samp]) else 0))
    for r in ranked[:top]:
        n = _num(r[samp])
        why: Dict[str, float] = {header[i]: _num(r[i]) for i in reasons if _num(r[i]) == _num(r[i]) and _num(r[i]) > 0}
        top3 = ", ".join(f"{k}={v:.0f}" for k, v in sorted(why.items(), key=lambda kv: -kv[1])[:3])
        print(f"{r[0]:>6} {100 * n / total:5.1f}%  {r[src][:70]:70s} {top3}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw")
    ap.add_argument("--sass")
    ap.add_argument("--kernel", default="dkdv|bprop|sdpa|flash|cudnn")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    if args.raw:
        raw_summary(args.raw, args.kernel)
    if args.sass:
        sass_summary(args.sass, args.top)


if __name__ == "__main__":
    main()
