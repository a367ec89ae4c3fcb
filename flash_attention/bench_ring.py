"""Ring attention on GPUs: correctness against one GPU, then throughput and scaling efficiency.

    torchrun --nproc_per_node=2 -m flash_attention.bench_ring --out ring.csv
    torchrun --nproc_per_node=1 -m flash_attention.bench_ring --seqlens 131072 262144   # the one-GPU baseline

Every rank first runs the multi-process correctness cases (NCCL, bf16 and fp32, both layouts, forward and
backward, against the float64 reference). Then, per sequence length (B=1, H=16, head_dim 128, causal, zigzag,
bf16 by default), it times forward+backward of ``ring_flash_attn_func`` (CUDA events, after a warm-up), and rank 0
times the same attention on its GPU alone at the largest length that fits (``--single-max``). TFLOPS per GPU count
the causal pairs once: ``4 * B * H * S^2 * D / 2 * 3.5 / time / world``; efficiency = TFLOPS per GPU / one-GPU
TFLOPS.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.distributed as dist

from .parallel.checks import RingCase, check_ring_case
from .parallel.ring import ring_flash_attn_func

COLUMNS = ["gpu", "torch", "triton", "date", "world", "impl", "S", "B", "H", "D", "causal", "layout", "dtype",
           "ms_fwd_bwd", "tflops_per_gpu", "single_gpu_tflops", "efficiency", "note"]


def _time_ms(fn, iters: int, barrier: bool = True) -> float:
    """Mean ms of ``fn`` after one warm-up call; ``barrier`` lines the ranks up first (ring runs)."""
    fn()
    torch.cuda.synchronize()
    if barrier:
        dist.barrier()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def _flops(b: int, h: int, s: int, d: int, causal: bool) -> float:
    return 4 * b * h * s * s * d * (0.5 if causal else 1.0) * 3.5  # forward + backward (2.5x)


def bench_ring(s: int, b: int, h: int, d: int, causal: bool, layout: str, dtype, iters: int) -> float:
    world, rank = dist.get_world_size(), dist.get_rank()
    local = s // world
    g = torch.Generator(device="cuda").manual_seed(rank)
    q, k, v = (torch.randn(b, local, h, d, device="cuda", dtype=dtype, generator=g).requires_grad_()
               for _ in range(3))
    dout = torch.randn_like(q)

    def step():
        out = ring_flash_attn_func(q, k, v, causal=causal, layout=layout)
        out.backward(dout)

    return _time_ms(step, iters)


def bench_single(s: int, b: int, h: int, d: int, causal: bool, dtype, iters: int) -> float:
    from . import flash_attn_func

    q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=dtype).requires_grad_() for _ in range(3))
    dout = torch.randn_like(q)

    def step():
        flash_attn_func(q, k, v, causal=causal).backward(dout)

    return _time_ms(step, iters, barrier=False)


def correctness(world: int) -> List[str]:
    cases = [RingCase(batch=1, seqlen=1024 * world, nheads=8, nheads_k=2, head_dim=128, dtype=dt, causal=c,
                      layout=lay) for dt in ("bfloat16", "float32") for c in (False, True)
             for lay in ("contiguous", "zigzag")]
    cases += [RingCase(batch=2, seqlen=512 * world, nheads=8, nheads_k=8, head_dim=64, dtype="bfloat16", causal=True,
                       window=(300, 0), alibi=True, layout="zigzag"),
              RingCase(batch=1, seqlen=512 * world, nheads=4, nheads_k=4, head_dim=64, dtype="float32", causal=True,
                       dropout_p=0.1, layout="zigzag")]
    lines = []
    for case in cases:
        errs = check_ring_case(case, torch.device("cuda", torch.cuda.current_device()))
        lines.append(f"PASS {case.label()} " + " ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seqlens", type=int, nargs="+", default=[131072, 262144, 1048576])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--layout", default="zigzag")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--single-max", type=int, default=262144, help="largest S timed on one GPU (rank 0)")
    p.add_argument("--skip-check", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_ring needs CUDA GPUs; the CPU suite runs the ring over gloo (tests/ut/test_ring.py)")
        return 0
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl")
    world, rank = dist.get_world_size(), dist.get_rank()
    env = dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__, triton=__import__("triton").__version__,
               date=datetime.datetime.now().isoformat(timespec="seconds"), world=world, B=args.batch, H=args.heads,
               D=args.head_dim, causal=True, dtype="bfloat16")
    if not args.skip_check:
        for line in correctness(world):
            if rank == 0:
                print(line, flush=True)
    rows: List[Dict[str, object]] = []
    single = None
    if rank == 0:
        s1 = max([s for s in args.seqlens if s <= args.single_max] or [min(args.seqlens)])
        ms = bench_single(s1, args.batch, args.heads, args.head_dim, True, torch.bfloat16, args.iters)
        single = _flops(args.batch, args.heads, s1, args.head_dim, True) / ms / 1e9
        rows.append(dict(env, impl="single_gpu", S=s1, layout="", ms_fwd_bwd=ms, tflops_per_gpu=single))
        print(f"one GPU  S={s1}: {ms:.1f} ms fwd+bwd, {single:.0f} TFLOPS", flush=True)
        torch.cuda.empty_cache()
    dist.barrier()
    for s in args.seqlens:
        try:
            ms = bench_ring(s, args.batch, args.heads, args.head_dim, True, args.layout, torch.bfloat16, args.iters)
            note = ""
        except torch.cuda.OutOfMemoryError as exc:
            ms, note = float("nan"), f"OOM: {str(exc).splitlines()[0]}"
        torch.cuda.empty_cache()
        tf = _flops(args.batch, args.heads, s, args.head_dim, True) / ms / 1e9 / world
        row = dict(env, impl="ring", S=s, layout=args.layout, ms_fwd_bwd=ms, tflops_per_gpu=tf, note=note)
        if single:
            row.update(single_gpu_tflops=single, efficiency=tf / single)
        rows.append(row)
        if rank == 0:
            eff = f", efficiency {tf / single:.0%}" if single else ""
            print(f"ring W={world} S={s}: {ms:.1f} ms fwd+bwd, {tf:.0f} TFLOPS/GPU{eff} {note}", flush=True)
    if rank == 0 and args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
