"""Where the host time of one attention call goes, layer by layer (GPU only).

Each line times ``n`` back-to-back calls of one layer of the call path (the public function, the autograd layer,
``attention_forward``, the Gluon launcher, its descriptors, Triton's JIT launch, the compiled kernel's launcher
called directly, the tensor allocations...), on a shape whose GPU work is a few microseconds, so the differences
between lines are what each layer adds. ``benchmarks/host_overhead.py`` gives the totals against SDPA.
The logs of 2026-12-02 (results/diagnostics/h200-2026-12-02-host-breakdown*.log) call the compiled-launcher line
"descriptors given": it then called the compiled kernel's launcher with the JIT line's descriptors, where it now
relaunches an ops/launch.py plan (the same launcher, with the plan's descriptor stand-ins).

    PYTHONPATH=. python benchmarks/host_breakdown.py --seqlen 1024 2048
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict, List, Tuple
from unittest import mock

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from flash_attention import flash_attn_func
from flash_attention import library
from flash_attention.features import Features
from flash_attention.ops import backward_sm90, configs, forward_sm90, launch
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward, feature_args

from host_overhead import host_us


def _no_plans(fn: Callable[[], object]) -> object:
    with mock.patch.object(launch, "ENABLED", False):
        return fn()


def forward_layers(q, k, v, causal: bool) -> Dict[str, Callable[[], object]]:
    f = Features(q.shape[-1] ** -0.5, causal)
    out, lse = attention_forward(q, k, v, f)
    rng = library.new_rng_state(0.0)
    batch, seqlen_q, nheads, head_dim = q.shape
    layers: Dict[str, Callable[[], object]] = {}

    def public():
        with torch.no_grad():
            return flash_attn_func(q, k, v, causal=causal)

    def op():
        with torch.no_grad():
            return library.attention_op(q, k, v, f, rng)

    layers["flash_attn_func (no grad)"] = public
    layers["flash_attn_func (no grad, plans off)"] = lambda: _no_plans(public)
    layers["library.attention_op"] = op
    layers["library.run_forward"] = lambda: library.run_forward(q, k, v, f)
    layers["attention_forward (planned)"] = lambda: attention_forward(q, k, v, f)
    layers["attention_forward (out, lse given: no plan)"] = lambda: attention_forward(q, k, v, f, out, lse)
    layers["allocate out + lse"] = lambda: (torch.empty_like(q), torch.empty((batch, nheads, seqlen_q),
                                                                              device=q.device, dtype=torch.float32))
    if forward_sm90.supported(q, k, v, out, f):
        layers["forward_sm90.supported"] = lambda: forward_sm90.supported(q, k, v, out, f)
        layers["attention_forward_sm90"] = lambda: forward_sm90.attention_forward_sm90(q, k, v, f, out, lse)
        block_n = configs.GLUON_BLOCK_N
        layers["4 descriptors"] = lambda: forward_sm90.descriptors(q, k, v, out, block_n)
        descs = forward_sm90.descriptors(q, k, v, out, block_n)
        grid = (configs.cdiv(seqlen_q, 128), nheads, batch)
        args = (*descs, lse, *lse.stride()[:2], seqlen_q, k.shape[1], nheads // k.shape[2],
                f.diagonal(seqlen_q, k.shape[1]), f.softmax_scale * 1.4426950408889634)
        kw = dict(HEAD_DIM=head_dim, BLOCK_N=block_n, STAGES=forward_sm90.stages_for(head_dim, block_n),
                  CAUSAL=causal, OVERLAP=configs.GLUON_OVERLAP, PINGPONG=configs.GLUON_PINGPONG, num_warps=4)
        layers["JIT launch (descriptors given)"] = lambda: forward_sm90._attn_fwd_sm90[grid](*args, **kw)
        roles = {"q": q, "k": k, "v": v, "out": out, "lse": lse}
        plan = launch.launch(forward_sm90._attn_fwd_sm90, grid, args, kw, roles)
        layers["compiled launcher (plan relaunch)"] = lambda: plan.launch(roles)
    return layers


def backward_layers(q, k, v, causal: bool) -> Dict[str, Callable[[], object]]:
    f = Features(q.shape[-1] ** -0.5, causal)
    qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
    do = torch.randn_like(q)
    out, lse = attention_forward(q, k, v, f)
    layers: Dict[str, Callable[[], object]] = {}
    layers["autograd fwd+bwd (public)"] = lambda: torch.autograd.grad(
        flash_attn_func(qg, kg, vg, causal=causal), (qg, kg, vg), do)
    layers["autograd fwd+bwd (public, plans off)"] = lambda: _no_plans(lambda: torch.autograd.grad(
        flash_attn_func(qg, kg, vg, causal=causal), (qg, kg, vg), do))
    o2 = flash_attn_func(qg, kg, vg, causal=causal)
    layers["autograd bwd only (retain_graph)"] = lambda: torch.autograd.grad(o2, (qg, kg, vg), do, retain_graph=True)
    layers["library.run_backward"] = lambda: library.run_backward(do, q, k, v, out, lse, f)
    layers["attention_backward (planned)"] = lambda: attention_backward(do, q, k, v, out, lse, f)
    layers["attention_backward (plans off)"] = lambda: _no_plans(
        lambda: attention_backward(do, q, k, v, out, lse, f))
    layers["attention_backward split dQ"] = lambda: attention_backward(do, q, k, v, out, lse, f, dq_mode="split")
    layers["feature_args"] = lambda: feature_args(q, k, f)
    layers["allocate dq dk dv delta lse2"] = lambda: (torch.empty_like(q), torch.empty_like(k), torch.empty_like(v),
                                                      torch.empty_like(lse), torch.empty_like(lse))
    layers["zeros dq_acc + copy to dq"] = lambda: torch.empty_like(q).copy_(
        torch.zeros(q.shape[0], q.shape[2], q.shape[1], q.shape[3], device=q.device).transpose(1, 2))
    dk, dv = torch.empty_like(k), torch.empty_like(v)
    if backward_sm90.supported(q, k, v, do, dk, dv, f):
        acc = torch.zeros(q.shape[0], q.shape[2], q.shape[1], q.shape[3], device=q.device)
        layers["attention_backward_dkdv_sm90 (fused dQ)"] = lambda: backward_sm90.attention_backward_dkdv_sm90(
            q, k, v, do, lse, lse, dk, dv, f, dq_acc=acc)
    return layers


def sdpa_layers(q, k, v, causal: bool) -> Dict[str, Callable[[], object]]:
    qt, kt, vt = (t.detach().transpose(1, 2).requires_grad_() for t in (q, k, v))
    gt = torch.randn_like(qt)
    layers = {}
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        def fwd(backend=backend):
            with sdpa_kernel(backend), torch.no_grad():
                return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)

        def fb(backend=backend):
            with sdpa_kernel(backend):
                return torch.autograd.grad(F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal),
                                           (qt, kt, vt), gt)

        layers[f"sdpa {name} fwd"] = fwd
        layers[f"sdpa {name} fwd+bwd"] = fb
    return layers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seqlen", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()
    rows: List[Tuple[str, float]] = []
    for seqlen in args.seqlen:
        for causal in (False, True):
            q, k, v = (torch.randn(1, seqlen, 1, args.head_dim, device="cuda", dtype=torch.bfloat16)
                       for _ in range(3))
            print(f"== bf16 B1 H1 S{seqlen} D{args.head_dim} causal={causal}: host us per call", flush=True)
            for group in (sdpa_layers, forward_layers, backward_layers):
                for name, fn in group(q, k, v, causal).items():
                    us = host_us(fn, args.calls)
                    rows.append((name, us))
                    print(f"  {name:44s} {us:8.1f}", flush=True)


if __name__ == "__main__":
    main()
