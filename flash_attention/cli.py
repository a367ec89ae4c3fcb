"""Command line: ``flash-attention check | bench | plot``.

- ``check``: every feature, alone and combined, against the float64 reference on the available device (the
  Triton kernels on a GPU, the CPU path otherwise), with the test suite's criterion; exit 1 on any failure.
- ``bench``: the side-by-side benchmark (``python -m flash_attention.bench``; its options pass through).
- ``plot``: PNG charts from a benchmark CSV (``flash_attention.plot``; its options pass through).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import torch

from .testing import AttnCase


def feature_cases(device: str) -> List[AttnCase]:
    """One case per feature and a set of combinations; realistic sizes on a GPU, small ones on a CPU."""
    b, sq, sk, h, hk, d = (2, 1000, 1537, 8, 2, 128) if device == "cuda" else (2, 45, 70, 4, 2, 32)

    def case(**kw) -> AttnCase:
        base = dict(batch=b, seqlen_q=sq, seqlen_k=sk, nheads=h, nheads_k=hk, head_dim=d)
        base.update(kw)
        return AttnCase(**base)

    w = max(8, sk // 8)
    return [
        case(), case(causal=True), case(nheads_k=1, causal=True), case(seqlen_q=sk, seqlen_k=sq, causal=True),
        case(window_size=(w, w // 2)), case(window_size=(w, 0)),
        case(alibi="heads"), case(softcap=2.0), case(bias="grad"), case(mask="rows"), case(dropout_p=0.2),
        case(causal=True, alibi="batch", softcap=2.0, bias="broadcast", mask="full"),
        case(window_size=(w, 0), alibi="heads", dropout_p=0.1, bias="grad"),
    ]


def run_check(device: Optional[str] = None, dtypes: Optional[List[torch.dtype]] = None) -> bool:
    """Check every case; print one line each; True when all pass."""
    from . import flash_attn_func
    from .testing import check_api

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtypes = dtypes or ([torch.float16, torch.bfloat16] if device == "cuda" else [torch.float16, torch.float32])
    where = "Triton kernels" if device == "cuda" else "CPU path"
    print(f"flash-attention check on {device} ({where}): ours vs float64, max error (PyTorch same-precision error)")
    ok = True
    for dtype in dtypes:
        for c in feature_cases(device):
            t0 = time.perf_counter()
            try:
                errors = check_api(flash_attn_func, c, dtype, device)
                detail = "  ".join(f"{k} {e['max']:.1e} ({e['max_low']:.1e})" for k, e in errors.items())
                status = "PASS"
            except Exception as exc:  # a failed criterion or a crash: report and go on
                ok, status, detail = False, "FAIL", f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            dt = str(dtype).replace("torch.", "")
            print(f"  {status}  {dt:8} {str(c):55} {detail}  [{time.perf_counter() - t0:.1f}s]", flush=True)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return ok


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="flash-attention", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "bench", "plot"))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    command, rest = argv[0], argv[1:]
    if command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if command == "plot":
        from .plot import main as plot_main

        return plot_main(rest)
    if command == "check":
        p = argparse.ArgumentParser(prog="flash-attention check")
        p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
        args = p.parse_args(rest)
        return 0 if run_check(args.device) else 1
    parser.error(f"unknown command {command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
