"""Compile our kernels for the H100 (sm_90) on any machine, GPU or not, and report what the compiler made.

Triton's wheel carries ptxas and cuobjdump, so the whole pipeline (TTGIR -> PTX -> cubin) runs on the CPU machine:
no device time is spent to learn registers, spills, shared memory, how many ``wgmma`` the loop issues and where
the compiler waits for them. The launch arguments are captured from a real launcher call on CPU tensors, so the
signature, the 16-byte divisibility hints and the constexprs match what the GPU sees.

    python benchmarks/inspect_sm90.py --kernel forward --d 128 --causal 0 --cfg 128,128,8,3 --dump /tmp/fwd
    python benchmarks/inspect_sm90.py --kernel gluon --d 128 --causal 1 --json   # the Gluon forward, its defaults

Gluon kernels compile only outside Triton's interpreter (its standard library turns into interpreted functions),
so run this without ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
from unittest import mock
from typing import Any, Dict

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from flash_attention.features import Features
from flash_attention.ops import backward as bwd_mod
from flash_attention.ops import forward as fwd_mod
from flash_attention.ops import backward_sm90 as bwd_sm90_mod
from flash_attention.ops import forward_sm90 as sm90_mod
from flash_attention.ops.configs import KernelConfig

class _Capture:
    """Stands in for a JIT kernel: ``kernel[grid](*args, **kwargs)`` records the call instead of launching."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = []

    def __getitem__(self, grid):
        def record(*args, **kwargs):
            self.calls.append((grid, args, kwargs))
        return record


def compile_sm90(fn, args, kwargs):
    """Compile a tl or Gluon kernel for sm_90. The signature comes from Triton's own argument specialisation, so
    types, 16-byte divisibility hints and ints specialised to constants match what a launch on the GPU gets."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend
    from triton.experimental.gluon._runtime import GluonASTSource, GluonJITFunction

    values = dict(zip(fn.arg_names, args))
    values.update({k: v for k, v in kwargs.items() if k in fn.arg_names})
    constexpr_names = {p.name for p in fn.params if p.is_constexpr}
    sig, consts, attrs = {}, {}, {}
    for i, name in enumerate(fn.arg_names):
        ty, key = ("constexpr", None) if name in constexpr_names else native_specialize_impl(
            BaseBackend, values[name], False, True, True)
        sig[name] = ty
        if ty == "constexpr":
            consts[name] = values[name]
        elif key == "D":
            attrs[(i,)] = [["tt.divisibility", 16]]
    options = {k: kwargs[k] for k in ("num_warps", "num_stages", "maxnreg") if k in kwargs}
    source = GluonASTSource if isinstance(fn, GluonJITFunction) else ASTSource
    return triton.compile(source(fn, signature=sig, constexprs=consts, attrs=attrs),
                          target=GPUTarget("cuda", 90, 32), options=options)


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


def report(kernel, dump: str | None = None, tag: str = "k") -> Dict[str, Any]:
    """Registers, spill bytes and shared memory from the cubin; wgmma issue/wait counts from the PTX; the SASS
    instruction count of the whole kernel."""
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as fh:
        fh.write(kernel.asm["cubin"])
        path = fh.name
    res = subprocess.run([_bin("cuobjdump"), "-res-usage", path], capture_output=True, text=True).stdout
    sass = subprocess.run([_bin("cuobjdump"), "-sass", path], capture_output=True, text=True).stdout
    os.unlink(path)
    regs = re.search(r"REG:(\d+)", res)
    stack = re.search(r"STACK:(\d+)", res)
    ptx = kernel.asm["ptx"]
    out = dict(regs=int(regs.group(1)) if regs else -1, stack=int(stack.group(1)) if stack else -1,
               shared=kernel.metadata.shared, wgmma=ptx.count("wgmma.mma_async"),
               waits=re.findall(r"wgmma\.wait_group\.sync\.aligned (\d+)", ptx),
               hgmma_sass=sass.count("HGMMA"), ldl=sass.count("LDL"), stl=sass.count("STL"),
               mufu_ex2=sass.count("MUFU.EX2"), selp_b16=ptx.count("selp.b16"),
               sass_instructions=len(re.findall(r"^\s+/\*[0-9a-f]{4,}\*/", sass, re.M)))
    if dump:
        os.makedirs(dump, exist_ok=True)
        for key in ("ttgir", "ptx"):
            with open(os.path.join(dump, f"{tag}.{key}"), "w") as fh:
                fh.write(kernel.asm[key])
        with open(os.path.join(dump, f"{tag}.sass"), "w") as fh:
            fh.write(sass)
    return out


def _inputs(args):
    b, s, h, d = 1, args.seqlen, 2, args.d
    dt = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    q, k, v = (torch.randn(b, s, h, d, dtype=dt) for _ in range(3))
    f = Features(softmax_scale=d ** -0.5, causal=bool(args.causal),
                 window_size=(args.window, 0 if args.causal else args.window) if args.window > 0 else (-1, -1),
                 alibi_slopes=torch.rand(h) if args.alibi else None, dropout_p=args.dropout,
                 seed=2**40 + 12345 if args.dropout else 0, offset=2**33 if args.dropout else 0)
    return q, k, v, f


def _captured(module, names, call) -> Dict[str, _Capture]:
    """Run ``call()`` with the kernels ``names`` of ``module`` replaced by recorders; return the recorders."""
    caps = {n: _Capture(getattr(module, n)) for n in names}
    with mock.patch.multiple(module, **caps):
        call()
    return caps


def capture_forward(args, cfg: KernelConfig):
    q, k, v, f = _inputs(args)
    cap = _captured(fwd_mod, ["_attn_fwd_kernel"], lambda: fwd_mod.attention_forward(q, k, v, f, config=cfg))
    _, a, kw = cap["_attn_fwd_kernel"].calls[0]
    return cap["_attn_fwd_kernel"].fn, a, kw


def capture_gluon(args, spec: str | None):
    """The launch of the Gluon forward with its defaults, or ``spec`` = "block_n,stages"."""
    q, k, v, f = _inputs(args)
    out, lse = torch.empty_like(q), torch.empty(q.shape[0], q.shape[2], q.shape[1])
    block_n, stages = map(int, spec.split(",")) if spec else (0, 0)
    names = ["_attn_fwd_sm90", "_attn_fwd_sm90_persistent"]
    with mock.patch.object(sm90_mod, "num_sms", lambda index: 132):  # an H100's count; no GPU to ask here
        cap = _captured(sm90_mod, names, lambda: sm90_mod.attention_forward_sm90(q, k, v, f, out, lse, block_n,
                                                                                 stages, consumers=args.consumers))
    used = next(c for c in cap.values() if c.calls)
    _, a, kw = used.calls[0]
    return used.fn, a, kw


def capture_gluon_bwd(args, spec: str | None, fuse_dq: bool = False):
    """The launch of the Gluon dK/dV kernel (with dQ fused when ``fuse_dq``) with its defaults, or ``spec`` =
    "stages"."""
    q, k, v, f = _inputs(args)
    lse = torch.empty(q.shape[0], q.shape[2], q.shape[1])
    dq_acc = torch.zeros(q.shape[0], q.shape[2], q.shape[1], q.shape[3]) if fuse_dq else None
    cap = _captured(bwd_sm90_mod, ["_attn_bwd_dkdv_sm90"], lambda: bwd_sm90_mod.attention_backward_dkdv_sm90(
        q, k, v, torch.randn_like(q), lse, lse, torch.empty_like(k), torch.empty_like(v), f,
        int(spec) if spec else 0, dq_acc,
        # As attention_backward passes it: dQ's shares unscaled where the conversion kernel will scale them.
        dq_scaled=not (fuse_dq and bwd_sm90_mod.configs.dq_convert_kernel("cuda"))))
    _, a, kw = cap["_attn_bwd_dkdv_sm90"].calls[0]
    return cap["_attn_bwd_dkdv_sm90"].fn, a, kw


_BWD_KERNELS = {"dq": "_attn_bwd_dq_kernel", "dkdv": "_attn_bwd_dkdv_kernel", "fused": "_attn_bwd_fused_kernel",
                "preprocess": "_attn_bwd_preprocess_kernel"}


def capture_backward(args, cfg: KernelConfig):
    """The launch of one backward kernel (``args.kernel``: dq, dkdv or fused) with ``cfg`` as its tiles."""
    q, k, v, f = _inputs(args)
    out, lse = torch.randn_like(q), torch.randn(q.shape[0], q.shape[2], q.shape[1])
    mode = "fused" if args.kernel == "fused" else "split"
    dq_cfg = KernelConfig(*map(int, args.dq_cfg.split(","))) if args.dq_cfg else cfg
    caps = _captured(bwd_mod, _BWD_KERNELS.values(), lambda: bwd_mod.attention_backward(
        torch.randn_like(q), q, k, v, out, lse, f, dkdv_config=cfg, dq_config=dq_cfg, dq_mode=mode))
    cap = caps[_BWD_KERNELS[args.kernel]]
    _, a, kw = cap.calls[0]
    return cap.fn, a, kw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", default="forward", choices=["forward", "dq", "dkdv", "fused", "gluon", "gluon-dkdv",
                                                              "gluon-dkdv-dq"])
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--causal", type=int, default=0)
    ap.add_argument("--window", type=int, default=0, help="a window of this many keys left (and right, not causal)")
    ap.add_argument("--alibi", action="store_true", help="with ALiBi slopes")
    ap.add_argument("--dropout", type=float, default=0.0, help="with dropout of this probability (64-bit seed)")
    ap.add_argument("--seqlen", type=int, default=8192)
    ap.add_argument("--cfg", action="append", default=None, help="block_m,block_n,warps,stages (repeatable); "
                    "--kernel gluon: block_n,stages; gluon-dkdv: stages (default: their defaults)")
    ap.add_argument("--dq-cfg", default=None, help="--kernel fused: the dQ programs' block_m,block_n,warps,stages "
                    "(default: the --cfg)")
    ap.add_argument("--consumers", type=int, default=0, help="--kernel gluon: the persistent form's consumer warp "
                                                                  "groups (default: forward_sm90.consumers_for)")
    ap.add_argument("--dump", default=None)
    ap.add_argument("--json", action="store_true", help="one JSON object per compiled kernel (for the tests)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=0|1",
                    help="force a boolean switch of flash_attention.ops.configs (e.g. FWD_TMA=1), repeatable")
    args = ap.parse_args()
    from flash_attention.ops import configs

    configs.set_switches(args.set)
    gluon = args.kernel.startswith("gluon")
    for spec in args.cfg or ([None] if gluon else ["128,128,8,3"]):
        if gluon:
            if args.kernel == "gluon":
                fn, a, kw = capture_gluon(args, spec)
            else:
                fn, a, kw = capture_gluon_bwd(args, spec, fuse_dq=args.kernel == "gluon-dkdv-dq")
            kernel = compile_sm90(fn, a, kw)
        else:
            cfg = KernelConfig(*map(int, spec.split(",")))
            capture = capture_forward if args.kernel == "forward" else capture_backward
            fn, a, kw = capture(args, cfg)
            kernel = compile_sm90(fn, a, kw)
        tag = f"{args.kernel}_d{args.d}_c{args.causal}_{(spec or 'default').replace(',', '_')}"
        res = report(kernel, args.dump, tag)
        if gluon:
            res["setmaxnreg"] = sorted(set(re.findall(r"setmaxnreg\.(?:inc|dec)\.sync\.aligned\.u32\s+(\d+)",
                                                      kernel.asm["ptx"])), key=int)
        print(json.dumps(dict(spec=spec, **res)) if args.json else f"{spec} {res}")


if __name__ == "__main__":
    main()
