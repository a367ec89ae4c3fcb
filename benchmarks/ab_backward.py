"""A/B of backward variants in one process on the GPU: ``attention_backward`` alone, same inputs, beside SDPA's
cuDNN backward timed in the same process.

    PYTHONPATH=. python benchmarks/ab_backward.py --out ab.csv --switch BWD_TMA --variants split,fused

Variants: ``split`` (dQ kernel first, computing delta, then dK/dV), ``fused`` (preprocessing pass, then dQ and
dK/dV programs in one launch), ``tma`` (dQ added by the dK/dV kernel through TMA reductions), ``default`` (whatever
``attention_backward`` picks), each with the banded tiles walked in one loop (``configs.ONE_LOOP``) or in three runs
(``-3loops``). ``--switch NAME`` also toggles a boolean
of ops/configs.py (e.g. ``BWD_TMA``) off and on for every variant; ``--set NAME=0|1`` fixes one for the whole run.
Shapes are sweep_helpers' specs
(``head_dim:causal:seqlen[:window[:alibi[:group[:window_right[:dropout_percent]]]]]``) at 16K tokens, hidden 2048;
each variant is timed twice, in alternating order, so the spread between the two runs shows the noise.
"""

from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench

from flash_attention.ops import configs
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward

from sweep_helpers import parse_shapes, sdpa_anchor_ms, write_csv

VARIANTS = {"split": ("split", True), "split-3loops": ("split", False), "fused": ("fused", True),
            "fused-3loops": ("fused", False), "tma": ("tma", True), "default": (None, True)}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="ab.csv")
    ap.add_argument("--shapes", default="128:1:1024,128:1:2048,128:1:8192,64:1:2048,64:1:8192")
    ap.add_argument("--variants", default="split,split-3loops")
    ap.add_argument("--switch", default=None, help="a boolean of flash_attention.ops.configs to toggle off/on")
    ap.add_argument("--dtypes", default="bf16")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=0|1",
                    help="set a boolean of flash_attention.ops.configs for the whole run (repeatable)")
    args = ap.parse_args()
    configs.set_switches(args.set)
    switch_default = getattr(configs, args.switch) if args.switch else None
    settings = [(False,), (True,)] if args.switch else [()]
    rows = []
    for dname in args.dtypes.split(","):
        for sh in parse_shapes(args.shapes):
            d, causal, s, window = sh.head_dim, sh.causal, sh.seqlen, sh.window
            q, k, v, do = sh.randn(4, DTYPES[dname])
            f = sh.features()
            o, lse = attention_forward(q, k, v, f)
            fl = 2.5 * sh.fwd_flops()
            bench = lambda fn: do_bench(fn, warmup=25, rep=100, return_mode="median")  # noqa: E731
            cudnn_ms = float("nan")
            if window[0] < 0 and sh.group == 1 and not sh.alibi and not sh.dropout:
                qt, kt, vt = (x.transpose(1, 2).detach().requires_grad_() for x in (q, k, v))
                t_f, t_fb = sdpa_anchor_ms(qt, kt, vt, do.transpose(1, 2), causal,
                                           torch.nn.attention.SDPBackend.CUDNN_ATTENTION, bench)
                cudnn_ms = t_fb - t_f
            ref = None
            combos = [(name, st) for name in args.variants.split(",") for st in settings]
            for rep in range(2):
                for name, st in (combos if rep == 0 else combos[::-1]):
                    mode, one_loop = VARIANTS[name]
                    configs.ONE_LOOP = one_loop
                    if args.switch:
                        setattr(configs, args.switch, st[0])
                    fn = lambda: attention_backward(do, q, k, v, o, lse, f, dq_mode=mode)  # noqa: E731
                    got = fn()
                    if ref is None:
                        ref = got
                    diff = max(float((a.float() - r.float()).abs().max()) for a, r in zip(got[:3], ref[:3]))
                    t = bench(fn)
                    row = dict(dtype=dname, d=d, causal=int(causal), seqlen=s, window=window[0],
                               alibi=int(sh.alibi), group=sh.group, dropout=sh.dropout, variant=name)
                    if args.switch:
                        row[args.switch] = st[0]
                    row.update(rep=rep, ms=t, bwd_tflops=fl / t * 1e-9, cudnn_bwd_tflops=fl / cudnn_ms * 1e-9,
                               vs_cudnn=cudnn_ms / t, max_diff_vs_first=diff)
                    rows.append(row)
                    print(row, flush=True)
            configs.ONE_LOOP = True
            if args.switch:
                setattr(configs, args.switch, switch_default)
            q = k = v = do = o = lse = ref = None  # free before the next shape
            torch.cuda.empty_cache()
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
