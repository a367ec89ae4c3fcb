"""Compare the backward's dQ strategies on the GPU: a separate dQ kernel ("split") against dQ added from the
dK/dV kernel ("atomic": pointer atomics, "tma": TMA bulk reductions), over dK/dV tile configs, beside SDPA's
cuDNN backward in the same process.

    PYTHONPATH=. python benchmarks/sweep_dq_modes.py --out sweep.csv
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

CONFIGS = {
    64: [C(64, 128, 8, 3), C(64, 128, 4, 3), C(128, 128, 8, 2), C(64, 64, 4, 3)],
    128: [C(64, 128, 8, 3), C(64, 128, 8, 2), C(128, 128, 8, 2), C(32, 128, 8, 3)],
}


def bench(fn) -> float:
    return do_bench(fn, warmup=25, rep=100, return_mode="median")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="sweep.csv")
    ap.add_argument("--seqlens", default="8192,2048")
    ap.add_argument("--head-dims", default="128,64")
    ap.add_argument("--modes", default="atomic,tma")
    args = ap.parse_args()
    rows = []
    for s, d, causal in itertools.product([int(x) for x in args.seqlens.split(",")],
                                          [int(x) for x in args.head_dims.split(",")], [False, True]):
        b, h = 16384 // s, 2048 // d
        torch.manual_seed(0)
        q, k, v, do = (torch.randn(b, s, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(4))
        f = Features(d ** -0.5, causal)
        fl = 2.5 * 4 * b * h * s * s * d / (2 if causal else 1)
        o, lse = attention_forward(q, k, v, f)
        ref = attention_backward(do, q, k, v, o, lse, f, dq_mode="split")
        t = bench(lambda: attention_backward(do, q, k, v, o, lse, f, dq_mode="split"))
        base = dict(seqlen=s, d=d, causal=causal)
        rows.append(dict(base, mode="split", cfg="default", bwd_tflops=fl / t * 1e-9, dq_diff=0.0))
        print(rows[-1], flush=True)
        # cuDNN's backward in the same process, for scale
        from torch.nn.attention import SDPBackend
        qt, kt, vt = (x.transpose(1, 2).detach().requires_grad_() for x in (q, k, v))
        t_f, t_fb = sdpa_anchor_ms(qt, kt, vt, do.transpose(1, 2), causal, SDPBackend.CUDNN_ATTENTION, bench)
        rows.append(dict(base, mode="cudnn", cfg="", bwd_tflops=fl / (t_fb - t_f) * 1e-9, dq_diff=0.0))
        print(rows[-1], flush=True)
        cfgs = CONFIGS[d] if s == 8192 else CONFIGS[d][:2]
        for mode, cfg in itertools.product(args.modes.split(","), cfgs):
            try:
                got = attention_backward(do, q, k, v, o, lse, f, dq_mode=mode, dkdv_config=cfg)
                t = bench(lambda: attention_backward(do, q, k, v, o, lse, f, dq_mode=mode, dkdv_config=cfg))
            except Exception as e:  # noqa: BLE001 - a config that does not compile is a result too
                print(mode, cfg, "failed:", str(e).splitlines()[0][:200] if str(e) else repr(e), flush=True)
                continue
            diff = max(float((a.float() - r.float()).abs().max() / r.float().abs().max())
                       for a, r in zip(got[:3], ref[:3]))
            rows.append(dict(base, mode=mode, cfg=str(cfg), bwd_tflops=fl / t * 1e-9, dq_diff=diff))
            print(rows[-1], flush=True)
        q = k = v = do = o = lse = ref = qt = kt = vt = None  # free before the next shape
        torch.cuda.empty_cache()
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
