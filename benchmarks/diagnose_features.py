"""Where a feature's slowdown goes: GPU time per kernel of the forward and of the backward, plain beside each feature.

    PYTHONPATH=. python benchmarks/diagnose_features.py --out diag.csv [--head-dim 128 --seqlen 8192]
        [--variants "fused_dq:BWD_GLUON_DQ=1"]

The features are those of ``flash_attention.bench_features`` (ALiBi, a 2K window, GQA with 4 KV heads), bf16 at
16K tokens and hidden 2048, causal and not. Per case and variant (``name:CONFIG=VALUE[;CONFIG=VALUE]``, configs of
flash_attention/ops/configs.py; the policy's defaults always run as ``default``): ``attention_forward`` and
``attention_backward`` timed alone (do_bench, median), their TFLOPS over the visible pairs, and each kernel's GPU
time per call from torch.profiler, so a slowdown is traced to the kernel (and the loop shape) that carries it.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Dict, List, Tuple
from unittest import mock

import torch
from triton.testing import do_bench

from flash_attention.bench_features import visible_pairs
from flash_attention.features import Features
from flash_attention.nn.layer.flash_attention import alibi_slopes
from flash_attention.ops import configs
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward

from diagnose import kernels
from sweep_helpers import write_csv


def cases(causal: bool) -> List[Tuple[str, dict]]:
    return [("plain", {}), ("alibi", dict(alibi=True)),
            ("window_2k", dict(window=(2048, 0) if causal else (2048, 2048))), ("gqa_4kv", dict(hk=4))]


def parse_variants(text: str) -> List[Tuple[str, Dict[str, object]]]:
    out: List[Tuple[str, Dict[str, object]]] = [("default", {})]
    for spec in filter(None, text.split(",")):
        name, _, sets = spec.partition(":")
        values: Dict[str, object] = {}
        for item in filter(None, sets.split(";")):
            key, _, val = item.partition("=")
            values[key] = {"1": True, "0": False, "None": None}.get(val, int(val) if val.isdigit() else val)
        out.append((name, values))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="diag-features.csv")
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=8192)
    ap.add_argument("--variants", default="")
    args = ap.parse_args()
    d, s = args.head_dim, args.seqlen
    b, h = 16384 // s, 2048 // d
    rows = []
    for causal in (False, True):
        for name, case in cases(causal):
            hk = case.get("hk", h)
            torch.manual_seed(0)
            q, do = (torch.randn(b, s, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
            k, v = (torch.randn(b, s, hk, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
            slopes = torch.tensor(alibi_slopes(h), device="cuda") if case.get("alibi") else None
            window = case.get("window", (-1, -1))
            f = Features(d ** -0.5, causal, window_size=window, alibi_slopes=slopes)
            flops = 4.0 * b * h * visible_pairs(s, causal, window) * d
            for variant, sets in parse_variants(args.variants):
                with mock.patch.multiple(configs, **sets) if sets else contextlib.nullcontext():
                    o, lse = attention_forward(q, k, v, f)
                    fwd = lambda: attention_forward(q, k, v, f)  # noqa: E731
                    bwd = lambda: attention_backward(do, q, k, v, o, lse, f)  # noqa: E731
                    fwd_ms = float(do_bench(fwd, warmup=25, rep=100, return_mode="median"))
                    bwd_ms = float(do_bench(bwd, warmup=25, rep=100, return_mode="median"))
                    fwd_kernels, bwd_kernels = kernels(fwd, width=48), kernels(bwd, width=48)
                row = dict(name=name, causal=causal, variant=variant, d=d, seqlen=s, fwd_ms=fwd_ms, bwd_ms=bwd_ms,
                           fwd_tflops=flops / fwd_ms * 1e-9, bwd_tflops=2.5 * flops / bwd_ms * 1e-9,
                           fwd_kernels=fwd_kernels, bwd_kernels=bwd_kernels)
                rows.append(row)
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
