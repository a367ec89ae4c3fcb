"""Feature benchmark: what each seed-parity feature costs, windows, long sequences and peak memory.

    python -m flash_attention.bench_features [--out CSV]

Rows (bf16, H=16, head_dim 128 unless said): plain attention at S=8K as the baseline, then the same shape with
ALiBi, softcap, a window, dropout, GQA, an additive bias and a boolean mask, each with its slowdown vs plain; a
causal sliding window S=64K / window 4K against full causal S=8K at the same tokens (B=8, same 64K tokens, the
same average keys per query); B=1 S=64K forward+backward and S=128K forward with peak memory; the seed layer's
docstring example. TFLOPS count only the visible query-key pairs (4 * pairs * D forward, x2.5 backward).
"""

from __future__ import annotations

import argparse
import ast
import csv
import gc
import datetime as _dt
import math
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

COLUMNS = ["gpu", "torch", "triton", "date", "name", "dtype", "B", "H", "Hk", "S", "D", "causal", "window",
           "features", "fwd_ms", "bwd_ms", "fwd_tflops", "bwd_tflops", "fwd_slowdown", "bwd_slowdown",
           "peak_mem_gib", "io_mem_gib", "note"]


def visible_pairs(s: int, causal: bool, window) -> int:
    """Query-key pairs a (s x s) attention with this causal/window setting computes (per batch and head)."""
    left, right = window
    if causal:
        right = 0
    lo = torch.arange(s) - (left if left >= 0 else s)
    hi = torch.arange(s) + (right if right >= 0 else s)
    return int((hi.clamp(max=s - 1) - lo.clamp(min=0) + 1).clamp(min=0).sum())


def _time(fn: Callable[[], Any], warmup: int = 25, rep: int = 100) -> float:
    from triton.testing import do_bench

    return do_bench(fn, warmup=warmup, rep=rep, return_mode="median")


def _peak(fn: Callable[[], Any]) -> float:
    # Earlier cases' tensors caught in reference cycles stay allocated until the collector runs, and would count
    # here (run e of 2026-12-03 read +2.31 GiB on every row after the causal bias case).
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def run_case(name: str, b: int, h: int, hk: int, s: int, d: int, causal: bool = False, window=(-1, -1),
             backward: bool = True, dtype=torch.bfloat16, **features) -> Dict[str, Any]:
    """Time one configuration of ``flash_attention.attention``; never raises (errors go to ``note``)."""
    from . import attention

    rec: Dict[str, Any] = dict(name=name, dtype=str(dtype).replace("torch.", ""), B=b, H=h, Hk=hk, S=s, D=d,
                               causal=causal, window=f"{window[0]},{window[1]}",
                               features=",".join(sorted(k for k in features)) or "plain")
    try:
        q = torch.randn(b, s, h, d, device="cuda", dtype=dtype, requires_grad=backward)
        k, v = (torch.randn(b, s, hk, d, device="cuda", dtype=dtype, requires_grad=backward) for _ in range(2))
        kw = _materialise(features, b, h, s, dtype)
        fwd = lambda: attention(q, k, v, causal=causal, window_size=window, **kw)  # noqa: E731
        io = (q.numel() + k.numel()) * 2 * q.element_size() / 2**30  # q, out, k, v (x2 with grads)
        flops = 4 * b * h * visible_pairs(s, causal, window) * d
        if backward:
            out = fwd()
            dout = torch.randn_like(out)
            leaves = [q, k, v] + [t for t in kw.values() if isinstance(t, torch.Tensor) and t.requires_grad]
            both = lambda: torch.autograd.grad(fwd(), leaves, dout)  # noqa: E731
            del out
            rec["peak_mem_gib"] = _peak(both)
            rec["io_mem_gib"] = 2 * io
            t_f, t_fb = _time(fwd), _time(both)
            rec.update(fwd_ms=t_f, bwd_ms=t_fb - t_f, fwd_tflops=flops / t_f * 1e-9,
                       bwd_tflops=2.5 * flops / (t_fb - t_f) * 1e-9)
        else:
            with torch.no_grad():
                rec["peak_mem_gib"] = _peak(fwd)
                rec["io_mem_gib"] = io
                t_f = _time(fwd, warmup=5, rep=30)
            rec.update(fwd_ms=t_f, fwd_tflops=flops / t_f * 1e-9)
    except Exception as exc:  # an OOM or compile failure is a result of this row, not the end of the run
        rec["note"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    torch.cuda.empty_cache()
    return rec


def _materialise(features: Dict[str, Any], b: int, h: int, s: int, dtype) -> Dict[str, Any]:
    kw = dict(features)
    if kw.get("alibi_slopes") == "standard":
        from .nn.layer.flash_attention import alibi_slopes

        kw["alibi_slopes"] = torch.tensor(alibi_slopes(h), dtype=torch.float32, device="cuda")
    if kw.get("attn_bias") == "per_head":
        kw["attn_bias"] = torch.randn(1, h, s, s, device="cuda", dtype=dtype)
    if kw.get("attn_mask") == "random":
        kw["attn_mask"] = torch.rand(1, 1, s, s, device="cuda") > 0.1
    return kw


def seed_layer_example() -> Dict[str, Any]:
    """The seed's docstring example on the GPU: forward + backward of the layer, training mode (dropout 0.1)."""
    from . import FlashAttention

    rec: Dict[str, Any] = dict(name="seed_layer_example", dtype="float16", B=2, H=16, Hk=16, S=4096, D=128,
                               causal=False, window="7,0 blocks of 128", features="dropout_rate=0.1")
    model = FlashAttention(head_dim=128, dropout_rate=0.1, prev_block_num=7, next_block_num=0).train()
    q, k, v = (torch.randn(2, 16, 4096, 128, device="cuda", dtype=torch.float16, requires_grad=True)
               for _ in range(3))
    out = model(q, k, v)
    assert out.shape == (2, 16, 4096, 128) and torch.isfinite(out).all()
    dout = torch.randn_like(out)
    t_f = _time(lambda: model(q, k, v))
    t_fb = _time(lambda: torch.autograd.grad(model(q, k, v), (q, k, v), dout))
    rec.update(fwd_ms=t_f, bwd_ms=t_fb - t_f, note="output finite, shape (2, 16, 4096, 128)")
    return rec


def cases(quick: bool = False) -> List[Dict[str, Any]]:
    b, h, s, d = 2, 16, 8192, 128
    rows: List[Dict[str, Any]] = []
    for causal in (False, True):
        base = dict(b=b, h=h, hk=h, s=s, d=d, causal=causal)
        rows += [
            dict(name="plain", **base),
            dict(name="alibi", alibi_slopes="standard", **base),
            dict(name="softcap", softcap=30.0, **base),
            dict(name="dropout", dropout_p=0.1, **base),
            dict(name="gqa_4kv", **{**base, "hk": 4}),
            dict(name="window_2k", window=(2048, 2048) if not causal else (2048, 0), **base),
            dict(name="bias", attn_bias="per_head", **base),
            dict(name="mask", attn_mask="random", **base),
        ]
    rows += [
        dict(name="full_causal_8k_same_tokens", b=8, h=h, hk=h, s=8192, d=d, causal=True),
        dict(name="sliding_window_64k_w4k", b=1, h=h, hk=h, s=65536, d=d, causal=True, window=(4096, 0)),
    ]
    if not quick:
        rows += [
            dict(name="long_64k", b=1, h=h, hk=h, s=65536, d=d, causal=False),
            dict(name="long_64k", b=1, h=h, hk=h, s=65536, d=d, causal=True),
            dict(name="long_128k_fwd", b=1, h=h, hk=h, s=131072, d=d, causal=False, backward=False),
            dict(name="long_128k_fwd", b=1, h=h, hk=h, s=131072, d=d, causal=True, backward=False),
        ]
    return rows


def add_slowdowns(rows: List[Dict[str, Any]]) -> None:
    """Each feature row's time relative to the plain row of the same causal setting."""
    plain = {r["causal"]: r for r in rows if r["name"] == "plain" and "fwd_ms" in r}
    for r in rows:
        p = plain.get(r["causal"])
        if p is None or r["name"] in ("plain",) or r["S"] != p["S"] or r["B"] != p["B"] or "fwd_ms" not in r:
            continue
        if r["name"].startswith("window"):
            # Less work: compare throughput (visible pairs per second) rather than time.
            r["fwd_slowdown"] = p["fwd_tflops"] / r["fwd_tflops"] - 1
            r["bwd_slowdown"] = p["bwd_tflops"] / r["bwd_tflops"] - 1
        else:
            r["fwd_slowdown"] = r["fwd_ms"] / p["fwd_ms"] - 1
            r["bwd_slowdown"] = r["bwd_ms"] / p["bwd_ms"] - 1
    full = next((r for r in rows if r["name"] == "full_causal_8k_same_tokens" and "fwd_ms" in r), None)
    win = next((r for r in rows if r["name"] == "sliding_window_64k_w4k" and "fwd_ms" in r), None)
    if full and win:
        win["note"] = (f"time / full causal S=8K B=8 (same 64K tokens): fwd {win['fwd_ms'] / full['fwd_ms']:.2f}x, "
                       f"bwd {win['bwd_ms'] / full['bwd_ms']:.2f}x (goal <= 1.5x)")


_NUMERIC = ("fwd_ms", "bwd_ms", "fwd_tflops", "bwd_tflops", "peak_mem_gib", "io_mem_gib")


def rows_from_log(path: Path) -> Tuple[Dict[str, str], List[Dict[str, Any]]]:
    """The environment (its ``env:`` line, if any) and the rows a run printed, numbers as floats again."""
    env: Dict[str, str] = {}
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("env: "):
            env = ast.literal_eval(line[5:])
        elif line.startswith("{"):
            rec = ast.literal_eval(line)
            rows.append({k: (float(v) if k in _NUMERIC else v) for k, v in rec.items()})
    return env, rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="CSV path (default: benchmarks/results/<gpu>-<date>-features.csv)")
    p.add_argument("--quick", action="store_true", help="skip the 64K/128K memory rows")
    p.add_argument("--from-log", type=Path, metavar="LOG",
                   help="write the CSV from the rows a run printed (one that hit a time limit before writing it)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="with --from-log: gpu/torch/triton/date where the log has no 'env:' line")
    args = p.parse_args(argv)
    if args.from_log:
        env, rows = rows_from_log(args.from_log)
        env.update(dict(item.split("=", 1) for item in args.env))
    elif not torch.cuda.is_available():
        print("No CUDA GPU found: the feature benchmark needs one (the CPU suite covers correctness).")
        return 0
    else:
        import triton

        env = dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__,
                   date=_dt.datetime.now().isoformat(timespec="seconds"))
        print(f"env: {env}", flush=True)
        rows = []
        for c in cases(args.quick):
            c = dict(c)
            name = c.pop("name")
            rec = run_case(name, **c)
            rows.append(rec)
            print({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in rec.items()}, flush=True)
        try:
            rows.append(seed_layer_example())
        except Exception as exc:  # reported, not fatal
            rows.append(dict(name="seed_layer_example", note=f"{type(exc).__name__}: {exc}"))
    add_slowdowns(rows)
    slug = "".join(ch if ch.isalnum() else "-" for ch in env["gpu"].lower()).strip("-")
    out = args.out or Path("benchmarks/results") / f"{slug}-{env['date'][:10]}-features.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**env, **{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()}})
    print(f"\n{'name':28} {'causal':6} {'fwd ms':>8} {'bwd ms':>8} {'fwd TF':>7} {'bwd TF':>7} "
          f"{'slow f/b':>12} {'peak GiB':>9}")
    for r in rows:
        slow = (f"{r['fwd_slowdown']:+.0%}/{r['bwd_slowdown']:+.0%}" if "fwd_slowdown" in r else "")
        print(f"{r['name']:28} {str(r.get('causal', '')):6} {r.get('fwd_ms', math.nan):8.3f} "
              f"{r.get('bwd_ms', math.nan):8.3f} {r.get('fwd_tflops', math.nan):7.0f} "
              f"{r.get('bwd_tflops', math.nan):7.0f} {slow:>12} {r.get('peak_mem_gib', math.nan):9.2f} "
              f"{r.get('note', '')}")
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
