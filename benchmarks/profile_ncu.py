"""One attention backward (or forward) to be profiled by Nsight Compute, ours or SDPA's cuDNN backend.

    ncu --nvtx --nvtx-include "profiled/" --set full -o rep python benchmarks/profile_ncu.py --impl ours \
        --shape 128:0:8192

The profiled call sits in the NVTX range ``profiled`` after warm-up calls (compilation, autotuning caches), so
``--nvtx-include "profiled/"`` catches only its kernels, whatever they are named. Shapes are
``head_dim:causal:seqlen`` at 16K tokens, hidden 2048 (sweep_helpers.parse_shapes).
"""

from __future__ import annotations

import argparse

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from flash_attention.ops import configs
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward

from sweep_helpers import parse_shapes

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class _Mark(torch.autograd.Function):
    """Identity whose backward opens (``push:<label>``) or closes (``pop``) an NVTX range on the thread that runs
    the backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, action: str) -> torch.Tensor:  # noqa: ANN001
        ctx.action = action
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        if ctx.action == "pop":
            torch.cuda.nvtx.range_pop()
        else:
            torch.cuda.nvtx.range_push(ctx.action.split(":", 1)[1])
        return grad, None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=("ours", "cudnn"), default="ours")
    ap.add_argument("--shape", default="128:0:8192")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--side", choices=("forward", "backward"), default="backward")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=0|1",
                    help="set a boolean of flash_attention.ops.configs first (repeatable)")
    args = ap.parse_args()
    configs.set_switches(args.set)
    (sh,) = parse_shapes(args.shape)
    q, k, v, do = sh.randn(4, DTYPES[args.dtype])
    if args.impl == "ours":
        f = sh.features()
        o, lse = attention_forward(q, k, v, f)

        def run(label: str) -> None:
            torch.cuda.nvtx.range_push(label)
            if args.side == "forward":
                attention_forward(q, k, v, f)
            else:
                attention_backward(do, q, k, v, o, lse, f)
            torch.cuda.nvtx.range_pop()
    else:
        qt, kt, vt = (x.transpose(1, 2).detach().requires_grad_() for x in (q, k, v))
        dot = do.transpose(1, 2)

        def run(label: str) -> None:
            # Autograd runs the backward on its own thread, and NVTX ranges are per thread: the range is opened
            # and closed there, by marks on the output (its gradient comes first) and on q (whose comes after
            # SDPA's backward).
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                if args.side == "forward":
                    torch.cuda.nvtx.range_push(label)
                    torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=sh.causal)
                    torch.cuda.nvtx.range_pop()
                else:
                    out = torch.nn.functional.scaled_dot_product_attention(_Mark.apply(qt, "pop"), kt, vt,
                                                                           is_causal=sh.causal)
                    _Mark.apply(out, "push:" + label).backward(dot)
    for _ in range(3):
        run("warmup")
    torch.cuda.synchronize()
    run("profiled")
    torch.cuda.synchronize()
    print("profiled", args.impl, args.side, args.shape, args.dtype)


if __name__ == "__main__":
    main()
