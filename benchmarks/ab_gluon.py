"""The Gluon Hopper forward (ops/forward_sm90.py) against the tl forward and SDPA's cuDNN and flash backends, in
one process on the GPU, 16K tokens, hidden 2048, for several key-tile sizes and stage counts.

    PYTHONPATH=. python benchmarks/ab_gluon.py --out ab-gluon.csv --variants "128=128x2+128x3o;64=128x4+64x4o"
"""

from __future__ import annotations

import argparse
import csv
from typing import Dict, List, Tuple

import torch
from triton.testing import do_bench

from flash_attention.ops import configs, forward_sm90
from flash_attention.ops.forward import attention_forward

from sweep_helpers import parse_shapes, sdpa_anchor_ms, write_csv

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
SDPA = torch.nn.attention.SDPBackend


def parse_variants(text: str) -> Dict[int, List[Tuple[int, int, bool, bool, bool, int, bool, bool]]]:
    """``"128=128x2+128x3o+128x3op;64=128x4s+128x4x2s+128x0t+128x0d"`` -> {head_dim: [(block_n, stages, overlap,
    pingpong, persistent, consumers, tile_per_program, dynamic), ...]}: a trailing ``o`` turns on the overlapped
    loop (``configs.GLUON_OVERLAP``), ``p`` the consumers' turn-taking (``configs.GLUON_PINGPONG``), ``s`` the
    persistent form (which always overlaps), ``t`` that kernel launched with one program per query tile, ``d`` the
    persistent form with its dynamic schedule; the persistent kernel's consumer count is an optional third number
    (default ``forward_sm90.consumers_for``); stages 0 = the default."""
    out: Dict[int, List[Tuple[int, int, bool, bool, bool, int, bool, bool]]] = {}
    for part in text.split(";"):
        d, specs = part.split("=")
        out[int(d)] = []
        for sp in specs.split("+"):
            digits = sp.rstrip("opstd")
            flags = sp[len(digits):]
            nums = [int(x) for x in digits.split("x")] + [0]
            kernel = "s" in flags or "t" in flags or "d" in flags
            out[int(d)].append((nums[0], nums[1], "o" in flags or kernel, "p" in flags, kernel, nums[2],
                                "t" in flags, "d" in flags))
    return out


def summarize(path: str) -> None:
    """One short line per row of an ab_gluon CSV (for the device calls' output)."""
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            print(r["dtype"], r["causal"], r["seqlen"], f'nc{r["consumers"]} dyn{r["dynamic"]}',
                  f'gluon {float(r["gluon_tflops"]):.0f}', f'tl {float(r["tl_tflops"]):.0f}',
                  f'cudnn {float(r["cudnn_tflops"]):.0f}', f'diff {float(r["max_diff"]):.3g}')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab-gluon.csv")
    ap.add_argument("--summarize", metavar="CSV", help="print a CSV this script wrote, a short line per row, and exit")
    ap.add_argument("--shapes", default="128:0:1024,128:0:4096,128:0:16384,128:1:1024,128:1:4096,128:1:16384,"
                                        "64:0:1024,64:0:16384,64:1:1024,64:1:16384")
    ap.add_argument("--variants", default="128=128x3+128x3o+128x3op;64=128x4o+128x4op")
    ap.add_argument("--dtypes", default="bf16")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    variants = parse_variants(args.variants)
    bench = lambda fn: do_bench(fn, warmup=25, rep=100, return_mode="median")  # noqa: E731
    rows = []
    for dname in args.dtypes.split(","):
        for sh in parse_shapes(args.shapes):
            q, k, v = sh.randn(3, DTYPES[dname])
            f = sh.features()
            fl = sh.fwd_flops()
            qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
            anchors = {name: fl / sdpa_anchor_ms(qt, kt, vt, None, sh.causal, be, bench, with_backward=False)[0]
                       * 1e-9 for name, be in (("cudnn", SDPA.CUDNN_ATTENTION), ("fa2", SDPA.FLASH_ATTENTION))}
            configs.FWD_GLUON = False
            ref = attention_forward(q, k, v, f)[0].float()
            t_tl = bench(lambda: attention_forward(q, k, v, f))
            base = dict(dtype=dname, d=sh.head_dim, causal=int(sh.causal), seqlen=sh.seqlen,
                        tl_tflops=fl / t_tl * 1e-9, **{f"{n}_tflops": t for n, t in anchors.items()})
            for (block_n, stages, overlap, pingpong, persistent, consumers, per_tile,
                 dynamic) in variants[sh.head_dim]:
                out = torch.empty_like(q)
                lse = torch.empty(q.shape[0], q.shape[2], q.shape[1], device="cuda")

                def fn() -> None:
                    forward_sm90.attention_forward_sm90(q, k, v, f, out, lse, block_n, stages, overlap, pingpong,
                                                        persistent=persistent, consumers=consumers,
                                                        tile_per_program=per_tile, dynamic=dynamic)
                try:
                    fn()
                    diff = float((out.float() - ref).abs().max())
                    t = bench(fn)
                except Exception as exc:  # out of shared memory and the like: record and go on
                    print(f"{dname} {sh} {block_n}x{stages} overlap={overlap} pingpong={pingpong} "
                          f"persistent={persistent}x{consumers} per_tile={per_tile} dynamic={dynamic}: "
                          f"{type(exc).__name__}: {str(exc)[:200]}", flush=True)
                    continue
                rows.append(dict(base, block_n=block_n, stages=stages, overlap=int(overlap), pingpong=int(pingpong),
                                 persistent=int(persistent), consumers=consumers, tile_per_program=int(per_tile),
                                 dynamic=int(dynamic),
                                 gluon_tflops=fl / t * 1e-9, vs_tl=t_tl / t,
                                 vs_cudnn=fl / t * 1e-9 / anchors["cudnn"], max_diff=diff))
                print(rows[-1], flush=True)
            configs.FWD_GLUON = None
            q = k = v = ref = None  # free before the next shape
            torch.cuda.empty_cache()
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
