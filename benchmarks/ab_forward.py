"""A/B of forward variants in one process on the GPU, 16K tokens, hidden 2048: a switch of ops/configs.py
(``--switch FWD_TMA``: TMA descriptor loads; ``ONE_LOOP``; ``GLUON_ALIBI_SPLIT`` with ``--tiles default``) off and
on, twice in alternating order, for given tile configs and dtypes, beside
SDPA's cuDNN forward timed in the same process.

    PYTHONPATH=. python benchmarks/ab_forward.py --out ab-fwd.csv --tiles "128=128x64x8x3+128x128x8x3"
"""

from __future__ import annotations

import argparse
from typing import Dict, List, Optional

import torch
from triton.testing import do_bench

from flash_attention.ops import configs
from flash_attention.ops.configs import KernelConfig
from flash_attention.ops.forward import attention_forward

from sweep_helpers import parse_shapes, sdpa_anchor_ms, write_csv

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def parse_tiles(text: str) -> Dict[int, List[Optional[KernelConfig]]]:
    """``"128=128x64x8x3+128x128x8x3;64=128x64x4x3"`` -> {head_dim: [KernelConfig, ...]}; ``"default"`` -> the
    kernel and tiles that the library's policy picks (config None), for switches of the Gluon forward."""
    if text == "default":
        return {64: [None], 128: [None], 256: [None]}
    out: Dict[int, List[Optional[KernelConfig]]] = {}
    for part in text.split(";"):
        d, cfgs = part.split("=")
        out[int(d)] = [KernelConfig(*(int(x) for x in c.split("x"))) for c in cfgs.split("+")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab-fwd.csv")
    ap.add_argument("--shapes", default="128:0:16384,128:1:16384,128:0:1024,128:1:2048,64:0:16384,64:1:16384")
    ap.add_argument("--tiles", default="128=128x128x8x3+128x64x8x3+128x64x8x2+64x64x4x3;"
                                       "64=128x64x4x3+128x64x8x3+128x128x8x3+64x64x4x3")
    ap.add_argument("--dtypes", default="bf16")
    ap.add_argument("--switch", default="FWD_TMA", help="a boolean of flash_attention.ops.configs to toggle")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=0|1",
                    help="another switch of flash_attention.ops.configs, held for both settings (repeatable)")
    # shapes: head_dim:causal:seqlen[:window[:alibi[:kv_heads_div[:window_right]]]], e.g. 128:1:8192:-1:1 for
    # causal ALiBi at 8K, 128:0:8192:2048:0:1:2048 for a (2048, 2048) window
    args = ap.parse_args()
    tiles = parse_tiles(args.tiles)
    configs.set_switches(args.set)
    default = getattr(configs, args.switch)  # FWD_TMA's default None picks per shape
    rows = []
    for dname in args.dtypes.split(","):
        for sh in parse_shapes(args.shapes):
            d, causal, s, window = sh.head_dim, sh.causal, sh.seqlen, sh.window
            q, k, v = sh.randn(3, DTYPES[dname])
            f = sh.features()
            fl = sh.fwd_flops()
            setattr(configs, args.switch, False)
            ref = attention_forward(q, k, v, f)[0].float()
            qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
            bench = lambda fn: do_bench(fn, warmup=25, rep=100, return_mode="median")  # noqa: E731
            t_cudnn = sdpa_anchor_ms(qt, kt, vt, None, causal, torch.nn.attention.SDPBackend.CUDNN_ATTENTION, bench,
                                     with_backward=False)[0] if window[0] < 0 else float("nan")
            # both settings twice, the second time in reverse order, so a drift in clocks shows as a spread
            for rep, on in enumerate((False, True, True, False)):
                setattr(configs, args.switch, on)
                for cfg in tiles[d]:
                    fn = lambda: attention_forward(q, k, v, f, config=cfg)  # noqa: E731
                    try:
                        diff = float((fn()[0].float() - ref).abs().max())
                        t = bench(fn)
                    except Exception as exc:  # out of shared memory and the like: record and go on
                        print(f"{dname} {sh} {args.switch}={on} {cfg}: {type(exc).__name__}: {str(exc)[:120]}",
                              flush=True)
                        continue
                    rows.append(dict(dtype=dname, d=d, causal=int(causal), seqlen=s, window=window[0],
                                     alibi=int(sh.alibi), dropout=sh.dropout, **{args.switch: on}, rep=rep // 2,
                                     cfg=str(cfg), ms=t,
                                     fwd_tflops=fl / t * 1e-9,
                                     cudnn_tflops=fl / t_cudnn * 1e-9, vs_cudnn=t_cudnn / t, max_diff=diff))
                    print(rows[-1], flush=True)
            setattr(configs, args.switch, default)
            q = k = v = ref = None  # free before the next shape
            torch.cuda.empty_cache()
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
