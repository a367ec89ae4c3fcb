"""Variable-length benchmark: packed documents of different lengths, as in pretraining with sequence packing.

    python -m flash_attention.bench_varlen [--tokens 16384] [--out CSV]

One packed batch of ``--tokens`` tokens split into documents of fixed, mixed lengths (bf16, H=16, head_dim 128),
each attending only to itself, causal and not. Side by side in one process:

* ``ours``: ``flash_attn_varlen_func`` on the packed tokens;
* ``flex``: compiled FlexAttention over the packed sequence with a document mask (its BlockMask skips the
  blocks between documents; built outside the timings);
* ``sdpa_loop``: PyTorch SDPA (cuDNN backend, falling back to flash) called once per document, the way a user
  without varlen support would do it;
* ``ours_fixed``: ``flash_attn_func`` on one sequence of the same total length, counted with its own FLOPs: the
  kernels' efficiency without document boundaries, the ceiling the varlen path aims at.

TFLOPS count only the visible query-key pairs of the documents (4 * pairs * D forward, x2.5 backward).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .bench import environment, time_ms

COLUMNS = ["gpu", "torch", "triton", "date", "impl", "dtype", "tokens", "docs", "H", "D", "causal",
           "fwd_ms", "bwd_ms", "fwd_tflops", "bwd_tflops", "fwd_vs_flex", "bwd_vs_flex", "note"]

# Mixed document lengths (tokens); repeated and cut to the requested total.
DOC_PATTERN = (3000, 517, 1024, 4096, 129, 2048, 1800, 777, 2500, 300, 1)


def doc_lengths(tokens: int) -> List[int]:
    lengths, total, i = [], 0, 0
    while total < tokens:
        n = min(DOC_PATTERN[i % len(DOC_PATTERN)], tokens - total)
        lengths.append(n)
        total += n
        i += 1
    return lengths


def pairs(lengths: Sequence[int], causal: bool) -> int:
    return sum(n * (n + 1) // 2 if causal else n * n for n in lengths)


def _grad_fn(fwd: Callable[[], torch.Tensor], leaves: Sequence[torch.Tensor]) -> Callable[[], Any]:
    out = fwd()
    dout = torch.randn_like(out)
    return lambda: torch.autograd.grad(fwd(), leaves, dout)


def _prepare(impl: str, lengths: Sequence[int], h: int, d: int, causal: bool, dtype
             ) -> Tuple[Callable[[], torch.Tensor], List[torch.Tensor]]:
    from . import flash_attn_func, flash_attn_varlen_func
    from .testing import cu_seqlens

    total = sum(lengths)
    q, k, v = (torch.randn(total, h, d, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
    leaves = [q, k, v]
    if impl == "ours":
        cu = cu_seqlens(lengths, "cuda")
        longest = max(lengths)
        fwd = lambda: flash_attn_varlen_func(q, k, v, cu, cu, longest, longest, causal=causal)  # noqa: E731
    elif impl == "ours_fixed":
        q4, k4, v4 = (t.detach()[None].requires_grad_() for t in (q, k, v))
        leaves = [q4, k4, v4]
        fwd = lambda: flash_attn_func(q4, k4, v4, causal=causal)  # noqa: E731
    elif impl == "flex":
        from torch.nn.attention.flex_attention import create_block_mask

        from .bench import _compiled_flex

        doc = torch.repeat_interleave(torch.arange(len(lengths), device="cuda"),
                                      torch.tensor(lengths, device="cuda"))

        def mask(b, hh, qi, ki):  # noqa: ANN001
            same = doc[qi] == doc[ki]
            return same & (qi >= ki) if causal else same

        block_mask = create_block_mask(mask, B=None, H=None, Q_LEN=total, KV_LEN=total, device="cuda")
        flex = _compiled_flex()
        qb, kb, vb = (t.detach().transpose(0, 1)[None].requires_grad_() for t in (q, k, v))
        leaves = [qb, kb, vb]
        fwd = lambda: flex(qb, kb, vb, block_mask=block_mask)  # noqa: E731
    elif impl == "sdpa_loop":
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.nn.functional import scaled_dot_product_attention as sdpa

        qb, kb, vb = (t.detach().transpose(0, 1)[None].requires_grad_() for t in (q, k, v))
        leaves = [qb, kb, vb]
        bounds = [0]
        for n in lengths:
            bounds.append(bounds[-1] + n)

        def fwd() -> torch.Tensor:
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION]):
                return torch.cat([sdpa(qb[:, :, a:b], kb[:, :, a:b], vb[:, :, a:b], is_causal=causal)
                                  for a, b in zip(bounds[:-1], bounds[1:])], dim=2)
    else:
        raise ValueError(f"unknown impl {impl!r}")
    return fwd, leaves


def run(tokens: int = 16384, h: int = 16, d: int = 128, dtype=torch.bfloat16,
        impls: Sequence[str] = ("ours", "flex", "sdpa_loop", "ours_fixed")) -> List[Dict[str, Any]]:
    env = environment()
    lengths = doc_lengths(tokens)
    rows = []
    for causal in (False, True):
        flops = 4 * h * d * pairs(lengths, causal)
        by_impl: Dict[str, Dict[str, Any]] = {}
        for impl in impls:
            rec: Dict[str, Any] = dict(env, impl=impl, dtype=str(dtype).replace("torch.", ""), tokens=tokens,
                                       docs=len(lengths), H=h, D=d, causal=causal)
            try:
                fwd, leaves = _prepare(impl, lengths, h, d, causal, dtype)
                both = _grad_fn(fwd, leaves)
                t_f = time_ms(fwd, 100, 500)
                t_fb = time_ms(both, 100, 500)
                f = flops if impl != "ours_fixed" else 4 * h * d * pairs([tokens], causal)
                rec.update(fwd_ms=t_f, bwd_ms=t_fb - t_f, fwd_tflops=f / t_f * 1e-9,
                           bwd_tflops=2.5 * f / (t_fb - t_f) * 1e-9)
            except Exception as exc:  # a failing anchor must not stop the run
                rec["note"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            by_impl[impl] = rec
            torch.cuda.empty_cache()
        flex = by_impl.get("flex", {})
        for impl, rec in by_impl.items():
            for key in ("fwd", "bwd"):
                if impl != "ours_fixed" and rec.get(f"{key}_ms") and flex.get(f"{key}_ms"):
                    rec[f"{key}_vs_flex"] = flex[f"{key}_ms"] / rec[f"{key}_ms"]
            rows.append(rec)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--out", type=Path, default=None, help="CSV path (default: print only)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_varlen needs a CUDA GPU; the varlen correctness checks run in the test suites")
        return 0
    rows = run(args.tokens)
    for r in rows:
        print(f"{r['impl']:>11} causal={r['causal']!s:5} fwd {r.get('fwd_tflops', float('nan')):7.1f} "
              f"bwd {r.get('bwd_tflops', float('nan')):7.1f} TFLOPS  vs flex {r.get('fwd_vs_flex', '')} "
              f"{r.get('bwd_vs_flex', '')} {r.get('note', '')}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
