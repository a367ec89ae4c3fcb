"""Sweep kernel tile configurations on the GPU, beside SDPA's flash and cuDNN backends in the same process.

    PYTHONPATH=. python benchmarks/sweep_configs.py --out sweep.csv

Prints the best forward / dK-dV / dQ configuration per (head_dim, causal); ops/configs.py is edited by hand
from its output (benchmarks/NOTES.md records each sweep).
"""

from __future__ import annotations

import argparse
import itertools

import torch
from triton.testing import do_bench

from flash_attention.features import Features
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.configs import KernelConfig as C
from flash_attention.ops.forward import attention_forward

from sweep_helpers import sdpa_anchor_ms, write_csv

FWD = {
    64: [C(128, 64, 4, 3), C(128, 64, 4, 4), C(128, 128, 8, 3), C(128, 128, 4, 3), C(128, 64, 8, 3),
         C(64, 64, 4, 3), C(128, 32, 4, 3)],
    128: [C(128, 64, 8, 2), C(128, 64, 8, 3), C(128, 128, 8, 2), C(128, 128, 8, 3), C(128, 64, 4, 3),
          C(64, 64, 4, 3), C(128, 32, 8, 3), C(64, 128, 4, 2)],
}
DKDV = {
    64: [C(64, 128, 8, 3), C(64, 128, 4, 3), C(32, 128, 4, 3), C(64, 64, 4, 3), C(128, 128, 8, 2),
         C(32, 128, 8, 3), C(64, 128, 8, 2), C(128, 64, 8, 3)],
    128: [C(64, 128, 8, 2), C(64, 128, 8, 3), C(32, 128, 8, 2), C(32, 128, 8, 3), C(64, 64, 4, 2),
          C(64, 64, 4, 3), C(32, 64, 4, 3), C(128, 128, 8, 2), C(64, 128, 4, 2), C(64, 128, 8, 1)],
}
DQ = {
    64: [C(128, 64, 8, 3), C(128, 64, 4, 3), C(128, 128, 8, 3), C(64, 64, 4, 3), C(128, 32, 4, 3),
         C(64, 128, 4, 3), C(64, 128, 8, 3), C(128, 128, 8, 2)],
    128: [C(128, 64, 8, 2), C(128, 64, 8, 3), C(128, 128, 8, 2), C(64, 64, 4, 3), C(128, 32, 8, 3),
          C(64, 128, 8, 2), C(128, 32, 4, 3), C(64, 64, 4, 2)],
}


def flops(b, h, s, d, causal):
    f = 4 * b * h * s * s * d
    return f / 2 if causal else f


def bench(fn):
    return do_bench(fn, warmup=25, rep=100, return_mode="median")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="sweep.csv")
    ap.add_argument("--seqlen", default="8192", help="one or more, comma-separated")
    ap.add_argument("--head-dims", default="128,64")
    ap.add_argument("--causal", choices=("both", "yes", "no"), default="both")
    ap.add_argument("--skip-fwd", action="store_true", help="sweep only the backward kernels")
    ap.add_argument("--skip-bwd", action="store_true", help="sweep only the forward kernel")
    args = ap.parse_args()
    masks = {"both": [False, True], "yes": [True], "no": [False]}[args.causal]
    rows = []
    dtype = torch.bfloat16
    for s, d, causal in itertools.product([int(x) for x in args.seqlen.split(",")],
                                          [int(x) for x in args.head_dims.split(",")], masks):
        b, h = 16384 // s, 2048 // d
        torch.manual_seed(0)
        q, k, v, do = (torch.randn(b, s, h, d, device="cuda", dtype=dtype) for _ in range(4))
        f = Features(d ** -0.5, causal)
        fl = flops(b, h, s, d, causal)
        # anchors in the same process
        qt, kt, vt = (t.transpose(1, 2).contiguous().requires_grad_() for t in (q, k, v))
        from torch.nn.attention import SDPBackend
        g = torch.randn_like(qt)
        for name, be in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
            t_f, t_fb = sdpa_anchor_ms(qt, kt, vt, g, causal, be, bench, with_backward=not args.skip_bwd)
            rows.append(dict(seqlen=s, d=d, causal=causal, kind="anchor", cfg=name, fwd_tflops=fl / t_f * 1e-9,
                             bwd_tflops=None if t_fb is None else 2.5 * fl / (t_fb - t_f) * 1e-9))
            print(rows[-1], flush=True)
        best_fwd = None
        for cfg in [] if args.skip_fwd else FWD[d]:
            try:
                o, lse = attention_forward(q, k, v, f, config=cfg)
                t = bench(lambda: attention_forward(q, k, v, f, config=cfg))
            except Exception as e:  # noqa: BLE001 - a config that does not compile is a result too
                print("fwd", cfg, "failed:", str(e).splitlines()[0][:120])
                continue
            tf = fl / t * 1e-9
            rows.append(dict(seqlen=s, d=d, causal=causal, kind="fwd", cfg=str(cfg), fwd_tflops=tf))
            print(rows[-1], flush=True)
            if best_fwd is None or tf > best_fwd[1]:
                best_fwd = (cfg, tf)
        if args.skip_bwd:
            print(f"BEST d={d} causal={causal} s={s}: fwd {best_fwd}", flush=True)
            continue
        o, lse = attention_forward(q, k, v, f)
        dq_default = DQ[d][0]
        best_dkdv = None
        for cfg in DKDV[d]:
            try:
                attention_backward(do, q, k, v, o, lse, f, dkdv_config=cfg, dq_config=dq_default)
                t = bench(lambda: attention_backward(do, q, k, v, o, lse, f, dkdv_config=cfg,
                                                     dq_config=dq_default))
            except Exception as e:  # noqa: BLE001
                print("dkdv", cfg, "failed:", str(e).splitlines()[0][:120])
                continue
            tf = 2.5 * fl / t * 1e-9
            rows.append(dict(seqlen=s, d=d, causal=causal, kind="bwd_dkdv", cfg=str(cfg), bwd_tflops=tf))
            print(rows[-1], flush=True)
            if best_dkdv is None or tf > best_dkdv[1]:
                best_dkdv = (cfg, tf)
        best_dq = None
        for cfg in DQ[d]:
            try:
                attention_backward(do, q, k, v, o, lse, f, dkdv_config=best_dkdv[0], dq_config=cfg)
                t = bench(lambda: attention_backward(do, q, k, v, o, lse, f, dkdv_config=best_dkdv[0],
                                                     dq_config=cfg))
            except Exception as e:  # noqa: BLE001
                print("dq", cfg, "failed:", str(e).splitlines()[0][:120])
                continue
            tf = 2.5 * fl / t * 1e-9
            rows.append(dict(seqlen=s, d=d, causal=causal, kind="bwd_dq", cfg=str(cfg), bwd_tflops=tf))
            print(rows[-1], flush=True)
            if best_dq is None or tf > best_dq[1]:
                best_dq = (cfg, tf)
        print(f"BEST d={d} causal={causal}: fwd {best_fwd} dkdv {best_dkdv} dq {best_dq}", flush=True)
        q = k = v = do = qt = kt = vt = None  # free before the next shape
        torch.cuda.empty_cache()
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
