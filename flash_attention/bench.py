"""Benchmark main job: a correctness check, then timings beside PyTorch's own attention backends.

    python -m flash_attention.bench            # full grid on a CUDA GPU (CSV + table)
    python -m flash_attention.bench --quick    # bf16, head_dim 128, S in {2048, 8192}
    flash-attention-bench --help

The check always runs first (``--no-check`` skips it): our forward output and q/k/v gradients must be within
twice the error that PyTorch's plain attention makes in the same low precision (both measured against a
float64 reference). Without a GPU only the check runs, on small CPU sizes.

On a GPU, every row of the grid (16K tokens, hidden 2048: batch = 16384 // S, nheads = 2048 // head_dim, plus a
64K-token row) is timed for ``ours`` and the anchors ``sdpa_flash``, ``sdpa_cudnn``, ``sdpa_efficient`` and
``flex`` in the same process on the same data. Forward time is measured with inputs that require grad, so
every implementation does the work training needs (e.g. saving the logsumexp); backward time is
(forward + backward) - forward. Results go to a CSV (one row per implementation per shape, plus the
measured ``matmul_bf16`` and ``copy`` ceilings) and a table on stdout; ``benchmarks/make_table.py`` turns the
CSV into the README's markdown table.

Everything GPU-only (Triton's timer, flex_attention, torch.compile) is imported lazily, so this module imports
and ``--help`` works on a CPU-only machine.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as _dt
import gc
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch

from .testing import AttnCase


__all__ = [
    "Shape",
    "CheckCase",
    "CsvWriter",
    "CSV_COLUMNS",
    "IMPLS",
    "attn_flops",
    "bwd_flops",
    "tflops",
    "shapes_grid",
    "make_inputs",
    "run_check",
    "format_table",
    "default_out_path",
    "main",
]

DTYPES: Dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
TOKENS = 16384  # batch * seqlen of every regular grid row
HIDDEN = 2048  # nheads * head_dim of every regular grid row
DEFAULT_SEQLENS = (1024, 2048, 4096, 8192, 16384)
LONG_SEQLEN, LONG_NHEADS, LONG_HEAD_DIM = 65536, 16, 128
IMPLS = ("ours", "sdpa_flash", "sdpa_cudnn", "sdpa_efficient", "flex")
ANCHORS = IMPLS[1:]
IMPL_LABELS = {"ours": "ours", "sdpa_flash": "FA2", "sdpa_cudnn": "cuDNN", "sdpa_efficient": "mem-eff",
               "flex": "flex"}
BWD_FLOP_FACTOR = 2.5  # backward = 2 matmuls to recompute + 3 for the gradients, vs 2 in the forward
ERROR_CHARS = 200

CSV_COLUMNS = [
    "gpu", "torch", "triton", "cuda", "cudnn", "date",
    "dtype", "B", "H", "Hk", "Sq", "Sk", "D", "causal", "impl",
    "fwd_ms", "fwd_tflops", "bwd_ms", "bwd_tflops", "fwd_bwd_ms",
    "fwd_frac_matmul", "bwd_frac_matmul", "tb_per_s", "first_call_s", "peak_mem_gib",
    "error", "note",
]


# --------------------------------------------------------------------------------------------------------------
# Shapes and flop counting
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One benchmark row: q ``(batch, seqlen_q, nheads, head_dim)``, k/v ``(batch, seqlen_k, nheads_k, head_dim)``."""

    dtype: str
    batch: int
    nheads: int
    nheads_k: int
    seqlen_q: int
    seqlen_k: int
    head_dim: int
    causal: bool

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def combo(self) -> Tuple[str, int, bool]:
        """What one set of compiled kernels serves: first-call latency is reported per combo."""
        return (self.dtype, self.head_dim, self.causal)

    def label(self) -> str:
        s = f"S{self.seqlen_q}" if self.seqlen_q == self.seqlen_k else f"Sq{self.seqlen_q} Sk{self.seqlen_k}"
        h = f"H{self.nheads}" if self.nheads == self.nheads_k else f"H{self.nheads}/{self.nheads_k}"
        return f"{self.dtype} D{self.head_dim} {'causal' if self.causal else 'full'} B{self.batch} {h} {s}"

    def csv_fields(self) -> Dict[str, Any]:
        return {"dtype": self.dtype, "B": self.batch, "H": self.nheads, "Hk": self.nheads_k, "Sq": self.seqlen_q,
                "Sk": self.seqlen_k, "D": self.head_dim, "causal": self.causal}


def attn_flops(shape: Shape) -> float:
    """Forward flops: two matmuls of 2*Sq*Sk*D per head; causal counts half (the usual convention)."""
    f = 4.0 * shape.batch * shape.nheads * shape.seqlen_q * shape.seqlen_k * shape.head_dim
    return f / 2 if shape.causal else f


def bwd_flops(shape: Shape) -> float:
    """Backward flops: 2.5x the forward's."""
    return BWD_FLOP_FACTOR * attn_flops(shape)


def tflops(flops: float, ms: Optional[float]) -> Optional[float]:
    """Throughput in TFLOPS, or None when there is no (positive) time."""
    if ms is None or not ms > 0:
        return None
    return flops / (ms * 1e-3) / 1e12


def shapes_grid(
    dtypes: Sequence[str] = ("bf16", "fp16"),
    head_dims: Sequence[int] = (64, 128),
    seqlens: Sequence[int] = DEFAULT_SEQLENS,
    causals: Sequence[bool] = (False, True),
    long: bool = True,
) -> List[Shape]:
    """The rows to time: 16K tokens at hidden 2048 per seqlen, then the 64K-token rows (head_dim 128 only).

    The long rows come last so that, should they crash the process, every other row is already in the CSV.
    """
    rows = [
        Shape(dt, max(1, TOKENS // s), HIDDEN // d, HIDDEN // d, s, s, d, c)
        for dt in dtypes for d in head_dims for c in causals for s in seqlens
    ]
    if long and LONG_HEAD_DIM in head_dims:
        rows += [Shape(dt, 1, LONG_NHEADS, LONG_NHEADS, LONG_SEQLEN, LONG_SEQLEN, LONG_HEAD_DIM, c)
                 for dt in dtypes for c in causals]
    return rows


def make_inputs(shape: Shape, device: str | torch.device, seed: int = 0) -> Tuple[torch.Tensor, ...]:
    """Random q, k, v and output gradient in ``(batch, seqlen, heads, head_dim)`` layout.

    Never zeros: power draw, and so clocks, depend on the data, and zeros would flatter every implementation.
    """
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)

    def randn(s: int, h: int) -> torch.Tensor:
        return torch.randn(shape.batch, s, h, shape.head_dim, generator=gen, device=device, dtype=shape.torch_dtype)

    return (randn(shape.seqlen_q, shape.nheads), randn(shape.seqlen_k, shape.nheads_k),
            randn(shape.seqlen_k, shape.nheads_k), randn(shape.seqlen_q, shape.nheads))


# --------------------------------------------------------------------------------------------------------------
# First-call latency
# --------------------------------------------------------------------------------------------------------------


class FirstCalls:
    """Wall time of ours' first forward per (dtype, head_dim, causal) in this process, compilation included.

    Triton keeps compiled kernels on disk, so a "first call" would just load them on a second run. With
    ``fresh_cache`` the first call of each combo runs with ``TRITON_CACHE_DIR`` pointed at an empty temporary
    directory (only for that call: torch.compile's kernels for the anchors keep their usual cache).
    """

    def __init__(self, fresh_cache: bool) -> None:
        self.fresh_cache = fresh_cache
        self.times: Dict[Tuple[str, int, bool], Tuple[float, str]] = {}
        self._tmpdir: Optional[str] = None

    @contextlib.contextmanager
    def _cache_dir(self) -> Iterator[None]:
        if not self.fresh_cache:
            yield
            return
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="flash-attention-bench-triton-")
        previous = os.environ.get("TRITON_CACHE_DIR")
        os.environ["TRITON_CACHE_DIR"] = self._tmpdir
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("TRITON_CACHE_DIR", None)
            else:
                os.environ["TRITON_CACHE_DIR"] = previous

    def call(self, combo: Tuple[str, int, bool], where: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn``; time it if it is the first call for ``combo``."""
        if combo in self.times:
            return fn()
        with self._cache_dir():
            _sync()
            t0 = time.perf_counter()
            result = fn()
            _sync()
            self.times[combo] = (time.perf_counter() - t0, where)
        return result

    def close(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------------------------------
# Correctness check
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckCase:
    """A correctness case of the main job: a ``flash_attention.testing.AttnCase`` in a named dtype."""

    dtype: str
    case: AttnCase

    @property
    def shape(self) -> Shape:
        c = self.case
        return Shape(self.dtype, c.batch, c.nheads, c.nheads_k, c.seqlen_q, c.seqlen_k, c.head_dim, c.causal)


def _cases(*rows: Tuple[Any, ...]) -> Tuple[CheckCase, ...]:
    return tuple(CheckCase(dtype, AttnCase(*shape)) for dtype, *shape in rows)


GPU_CHECK_CASES = _cases(
    ("fp16", 2, 1024, 1024, 8, 8, 64, False),
    ("fp16", 2, 1024, 1024, 8, 8, 128, True),
    ("bf16", 2, 1024, 1024, 8, 8, 64, True),
    ("bf16", 2, 1024, 1024, 8, 8, 128, False),
    ("bf16", 2, 512, 512, 8, 2, 128, True),  # GQA
    ("fp16", 1, 1000, 1537, 4, 4, 64, True),  # ragged tiles, bottom-right causal
)

CPU_CHECK_CASES = _cases(
    ("fp32", 2, 128, 128, 4, 4, 32, False),
    ("fp16", 2, 128, 128, 4, 4, 64, True),
    ("bf16", 1, 256, 256, 2, 2, 64, False),
    ("bf16", 2, 200, 200, 4, 4, 32, True),
    ("fp16", 2, 128, 128, 4, 2, 64, True),  # GQA
    ("fp16", 1, 100, 237, 2, 2, 32, True),  # odd lengths, bottom-right causal
)

@dataclass
class TensorCheck:
    name: str
    err: float  # our max abs error vs float64
    err_low: float  # PyTorch's max abs error in the same low precision vs float64


@dataclass
class CheckResult:
    case: CheckCase
    tensors: List[TensorCheck] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.tensors)

    def line(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.case.dtype} {self.case.case}"
        if self.error:
            return f"{head}  {self.error}"
        return head + "  " + "  ".join(f"{t.name} {t.err:.2e}/{t.err_low:.2e}" for t in self.tensors)


def check_case(case: CheckCase, device: str, first_calls: Optional[FirstCalls] = None, seed: int = 0,
               ) -> CheckResult:
    """Our output and q/k/v gradients against float64, with the criterion of ``flash_attention.testing``."""
    from . import flash_attn_func
    from .testing import check_api

    result = CheckResult(case)
    shape = case.shape
    attn_case = case.case

    def ours_fn(*qkv: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        call = lambda: flash_attn_func(*qkv, causal=kwargs["causal"])  # noqa: E731
        if first_calls is None:
            return call()
        return first_calls.call(shape.combo, f"correctness check ({shape.label()})", call)

    torch.manual_seed(seed)
    try:
        errors = check_api(ours_fn, attn_case, shape.torch_dtype, device)
    except Exception as exc:  # a wrong answer or a crash is a failed check, not a crashed benchmark
        result.error = _first_line(exc)
        return result
    result.tensors = [TensorCheck(name, e["max"], e["max_low"]) for name, e in errors.items()]
    return result


def run_check(device: str, cases: Optional[Sequence[CheckCase]] = None, first_calls: Optional[FirstCalls] = None,
              ) -> bool:
    """Run the correctness cases on ``device``, print one line each; True when all pass."""
    if cases is None:
        cases = GPU_CHECK_CASES if device.startswith("cuda") else CPU_CHECK_CASES
    print(f"Correctness check on {device}: max abs error vs float64, ours/PyTorch-same-precision "
          f"(pass: ours <= 2x PyTorch + slack, max and relative; see flash_attention/testing.py)")
    all_ok = True
    for case in cases:
        res = check_case(case, device, first_calls)
        print("  " + res.line(), flush=True)
        all_ok &= res.passed
    print(f"Correctness check: {'all passed' if all_ok else 'FAILED'}", flush=True)
    return all_ok


# --------------------------------------------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """An implementation bound to one shape's inputs: ``fwd()`` and ``fwd_bwd()`` take no arguments."""

    fwd: Callable[[], torch.Tensor]
    fwd_bwd: Callable[[], Any]
    # Entered once around all calls (e.g. SDPA's backend choice) so its Python cost stays out of the timings.
    context: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    note: str = ""


def _bind(call: Callable[[], torch.Tensor], leaves: Sequence[torch.Tensor], dout: torch.Tensor,
          **kwargs: Any) -> Prepared:
    # autograd.grad rather than .backward(): nothing accumulates into .grad between timed calls.
    return Prepared(call, lambda: torch.autograd.grad(call(), leaves, dout), **kwargs)


def prepare_ours(shape: Shape, bshd: Sequence[torch.Tensor]) -> Prepared:
    from . import flash_attn_func

    q, k, v, dout = bshd
    return _bind(lambda: flash_attn_func(q, k, v, causal=shape.causal), (q, k, v), dout)


def _sdpa_backends() -> Dict[str, Any]:
    from torch.nn.attention import SDPBackend

    return {"sdpa_flash": SDPBackend.FLASH_ATTENTION, "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
            "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION}


def prepare_sdpa(impl: str, shape: Shape, bhsd: Sequence[torch.Tensor]) -> Prepared:
    """SDPA restricted to one backend. Its ``is_causal`` is top-left aligned, the same as ours when Sq == Sk."""
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel

    backend = _sdpa_backends()[impl]
    q, k, v, dout = bhsd
    kwargs: Dict[str, Any] = {"is_causal": shape.causal}
    if shape.nheads_k != shape.nheads:
        kwargs["enable_gqa"] = True
    return _bind(lambda: F.scaled_dot_product_attention(q, k, v, **kwargs), (q, k, v), dout,
                 context=lambda: sdpa_kernel(backend))


_COMPILED_FLEX: Optional[Callable[..., torch.Tensor]] = None


def _compiled_flex() -> Callable[..., torch.Tensor]:
    """One torch.compile'd flex_attention per process; static shapes, as flex is tuned per shape."""
    global _COMPILED_FLEX
    if _COMPILED_FLEX is None:
        import torch._dynamo
        from torch.nn.attention.flex_attention import flex_attention

        # Every grid row is a new static shape; the default recompile limit (8) would silently fall back to
        # eager flex_attention, which materialises the scores.
        config = torch._dynamo.config
        for names in (("recompile_limit", "cache_size_limit"),
                      ("accumulated_recompile_limit", "accumulated_cache_size_limit")):
            name = next((n for n in names if hasattr(config, n)), None)  # renamed in torch 2.6
            if name is not None:
                setattr(config, name, max(getattr(config, name), 1024))
        _COMPILED_FLEX = torch.compile(flex_attention, dynamic=False)
    return _COMPILED_FLEX


def prepare_flex(shape: Shape, bhsd: Sequence[torch.Tensor]) -> Prepared:
    """Compiled flex_attention; causal through a BlockMask built here, outside the timings."""
    from torch.nn.attention.flex_attention import create_block_mask

    flex = _compiled_flex()
    q, k, v, dout = bhsd
    kwargs: Dict[str, Any] = {}
    if shape.causal:
        offset = shape.seqlen_k - shape.seqlen_q  # bottom-right aligned, like ours

        def causal_mask(b, h, q_idx, kv_idx):  # noqa: ANN001 (flex passes index tensors)
            return q_idx + offset >= kv_idx

        kwargs["block_mask"] = create_block_mask(causal_mask, B=None, H=None, Q_LEN=shape.seqlen_q,
                                                 KV_LEN=shape.seqlen_k, device=q.device)
    if shape.nheads_k != shape.nheads:
        kwargs["enable_gqa"] = True
    return _bind(lambda: flex(q, k, v, **kwargs), (q, k, v), dout)


def prepare_impl(impl: str, shape: Shape, bshd: Sequence[torch.Tensor], bhsd: Sequence[torch.Tensor]) -> Prepared:
    if impl == "ours":
        return prepare_ours(shape, bshd)
    if impl == "flex":
        return prepare_flex(shape, bhsd)
    if impl in _sdpa_backends():
        return prepare_sdpa(impl, shape, bhsd)
    raise ValueError(f"unknown implementation {impl!r}; choose from {', '.join(IMPLS)}")


def as_leaves(tensors: Iterable[torch.Tensor], bhsd: bool) -> List[torch.Tensor]:
    """Leaf copies for timing: the (B, S, H, D) originals, or contiguous (B, H, S, D) copies for the anchors
    (their preferred layout; copied before timing so the copy is never timed). The last tensor is the output
    gradient and needs no grad."""
    out = []
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        t = t.detach()
        if bhsd:
            t = t.transpose(1, 2).contiguous()
        out.append(t.requires_grad_() if i < len(tensors) - 1 else t)
    return out


# --------------------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------------------


# A GPU left idle (a kernel compiling, torch.compile, the correctness check on the host) drops to its idle clocks
# (345 MHz on the H200). So that no implementation is timed on clocks still ramping after its own compile, ``fn``
# runs for SPIN_UP_S before it is timed after more than IDLE_S seconds without timing; anchors and our kernels pass
# through the same rule. A guard, not a measured fix: NOTES entry 64 did not find the clocks at fault for the row
# that prompted it.
IDLE_S = 0.5
SPIN_UP_S = 0.3
_last_timed = [0.0]


def _spin_up(fn: Callable[[], Any]) -> None:
    """Run ``fn`` for ``SPIN_UP_S`` seconds if nothing was timed for ``IDLE_S`` (see above)."""
    if time.perf_counter() - _last_timed[0] < IDLE_S or not torch.cuda.is_available():
        return
    end = time.perf_counter() + SPIN_UP_S
    while time.perf_counter() < end:
        fn()
        _sync()


def time_ms(fn: Callable[[], Any], warmup_ms: float, rep_ms: float) -> float:
    """Median GPU time of ``fn`` in ms (Triton's do_bench: L2 flushed before each call), after a spin-up where the
    GPU sat idle (``_spin_up``)."""
    from triton.testing import do_bench

    fn()  # a first call may compile; its idle time then counts toward the spin-up below
    _sync()
    _spin_up(fn)
    try:
        return float(do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median"))
    finally:
        _last_timed[0] = time.perf_counter()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    return msg if len(msg) <= ERROR_CHARS else msg[: ERROR_CHARS - 3] + "..."


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        try:
            torch.cuda.empty_cache()
        except RuntimeError:  # a sticky CUDA error: let the next rows record it rather than stop the run
            pass


def _matmul_ms(n: int, device: str, warmup_ms: float, rep_ms: float) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    return time_ms(lambda: a @ b, warmup_ms, rep_ms)


def _copy_ms(nbytes: int, device: str, warmup_ms: float, rep_ms: float) -> float:
    src = torch.randn(nbytes // 2, device=device, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    return time_ms(lambda: dst.copy_(src), warmup_ms, rep_ms)


def measure_ceilings(warmup_ms: float, rep_ms: float, device: str = "cuda", n: int = 8192,
                     nbytes: int = 1 << 30) -> List[Dict[str, Any]]:
    """The bf16 matmul ceiling (n^3, TFLOPS) and device copy bandwidth (bytes read + written, TB/s)."""
    matmul: Dict[str, Any] = {"impl": "matmul_bf16", "dtype": "bf16", "note": f"{n}x{n}x{n} torch.matmul"}
    copy: Dict[str, Any] = {"impl": "copy", "dtype": "bf16",
                            "note": f"{nbytes / 2**30:g} GiB device-to-device copy_, bytes read + written"}
    try:
        ms = _matmul_ms(n, device, warmup_ms, rep_ms)
        matmul.update(fwd_ms=ms, fwd_tflops=tflops(2.0 * n ** 3, ms))
    except Exception as exc:
        matmul["error"] = _first_line(exc)
    _free_memory()
    try:
        ms = _copy_ms(nbytes, device, warmup_ms, rep_ms)
        copy.update(fwd_ms=ms, tb_per_s=2 * nbytes / (ms * 1e-3) / 1e12)
    except Exception as exc:
        copy["error"] = _first_line(exc)
    _free_memory()
    return [matmul, copy]


def bench_impl(impl: str, shape: Shape, prep: Prepared, warmup_ms: float, rep_ms: float,
               first_calls: Optional[FirstCalls]) -> Dict[str, Any]:
    """Time one implementation on one shape; failures become the row's ``error`` (first line)."""
    rec: Dict[str, Any] = {"impl": impl}
    notes = [prep.note] if prep.note else []
    with prep.context():
        try:
            if impl == "ours" and first_calls is not None:
                first_calls.call(shape.combo, f"grid row {shape.label()}", prep.fwd)
            else:
                _sync()
                t0 = time.perf_counter()
                prep.fwd()
                _sync()
                if impl == "flex":  # includes torch.compile for this shape
                    notes.append(f"first call {time.perf_counter() - t0:.1f}s")
            fwd_ms = time_ms(prep.fwd, warmup_ms, rep_ms)
            rec.update(fwd_ms=fwd_ms, fwd_tflops=tflops(attn_flops(shape), fwd_ms))
        except Exception as exc:
            rec["error"] = _first_line(exc)
        if "error" not in rec:
            try:
                both_ms = time_ms(prep.fwd_bwd, warmup_ms, rep_ms)
                bwd_ms = both_ms - rec["fwd_ms"]
                rec.update(fwd_bwd_ms=both_ms, bwd_ms=bwd_ms, bwd_tflops=tflops(bwd_flops(shape), bwd_ms))
                rec["peak_mem_gib"] = _peak_memory_gib(prep.fwd_bwd)
            except Exception as exc:
                rec["error"] = "backward: " + _first_line(exc)
    if notes:
        rec["note"] = "; ".join(notes)
    return rec


def _peak_memory_gib(fn: Callable[[], Any]) -> Optional[float]:
    """Peak device memory (GiB) allocated while ``fn`` runs once, inputs included."""
    if not torch.cuda.is_available():
        return None
    _sync()
    torch.cuda.reset_peak_memory_stats()
    fn()
    _sync()
    return torch.cuda.max_memory_allocated() / 2**30


def bench_shape(shape: Shape, impls: Sequence[str], warmup_ms: float, rep_ms: float,
                first_calls: Optional[FirstCalls], seed: int = 0, device: str = "cuda") -> List[Dict[str, Any]]:
    """All implementations on one shape, on the same random data; never raises."""
    rows: List[Dict[str, Any]] = []
    try:
        base = make_inputs(shape, device, seed)
    except Exception as exc:
        err = "inputs: " + _first_line(exc)
        _free_memory()
        return [{"impl": impl, "error": err} for impl in impls]
    bshd: Optional[List[torch.Tensor]] = None
    bhsd: Optional[List[torch.Tensor]] = None
    for impl in impls:
        try:
            if impl == "ours":
                bshd = bshd or as_leaves(base, bhsd=False)
            else:
                bhsd = bhsd or as_leaves(base, bhsd=True)
            prep = prepare_impl(impl, shape, bshd or [], bhsd or [])
        except Exception as exc:
            rows.append({"impl": impl, "error": _first_line(exc)})
            _free_memory()
            continue
        rows.append(bench_impl(impl, shape, prep, warmup_ms, rep_ms, first_calls))
        del prep
        _free_memory()  # after an OOM the next implementation should start from a clean allocator
    del base, bshd, bhsd
    if "flex" in impls:
        import torch._dynamo

        torch._dynamo.reset()  # drop this shape's compiled graphs (and their memory); no shape comes back
    _free_memory()
    return rows


# --------------------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


class CsvWriter:
    """Append-as-you-go CSV writer: each row is flushed, so a crash mid-run keeps everything timed so far."""

    def __init__(self, path: str | Path, columns: Sequence[str] = CSV_COLUMNS,
                 common: Optional[Dict[str, Any]] = None) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.common = dict(common or {})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns)
        self._writer.writeheader()
        self._file.flush()

    def write(self, row: Dict[str, Any]) -> None:
        full = {**self.common, **row}
        unknown = set(full) - set(self.columns)
        if unknown:
            raise KeyError(f"unknown CSV columns: {sorted(unknown)}")
        self._writer.writerow({c: _fmt(full.get(c)) for c in self.columns})
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "CsvWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def default_out_path(gpu_name: str, date: Optional[_dt.date] = None,
                     directory: str | Path = Path("benchmarks") / "results") -> Path:
    """``benchmarks/results/<gpu-slug>-<YYYY-MM-DD>.csv`` (relative to the working directory); a second run on
    the same day gets ``-2``, ``-3``... rather than overwriting the first."""
    date = date or _dt.date.today()
    stem = f"{slugify(gpu_name)}-{date.isoformat()}"
    path = Path(directory) / f"{stem}.csv"
    n = 2
    while path.exists():
        path = Path(directory) / f"{stem}-{n}.csv"
        n += 1
    return path


def environment() -> Dict[str, Any]:
    """The columns every CSV row shares."""
    import triton

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda or "",
        "cudnn": cudnn or "",
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------------------------

_SHAPE_KEYS = ("dtype", "D", "causal", "B", "H", "Hk", "Sq", "Sk")


def _num(rec: Optional[Dict[str, Any]], key: str) -> Optional[float]:
    if rec is None:
        return None
    value = rec.get(key)
    if value in (None, ""):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _shape_order(shape: Dict[str, Any]) -> Tuple[Any, ...]:
    """Sort key: dtype, head_dim, causal, seqlen (values may be strings when read back from a CSV)."""
    def as_int(x: Any) -> int:
        try:
            return int(x)
        except (TypeError, ValueError):
            return 0

    causal = str(shape["causal"]).lower() in ("true", "1", "yes")
    return (str(shape["dtype"]), as_int(shape["D"]), causal, as_int(shape["Sq"]), as_int(shape["Sk"]))


def _pair(a: Optional[float], b: Optional[float], fmt: str, failed: bool = False) -> str:
    def one(x: Optional[float]) -> str:
        return ("err" if failed else "-") if x is None else format(x, fmt)

    return f"{one(a)}/{one(b)}"


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def table_rows(rows: Sequence[Dict[str, Any]], anchors: Sequence[str] = ANCHORS) -> Tuple[List[str], List[List[str]]]:
    """Header and string cells: one line per shape; every cell is "forward/backward"."""
    matmul = next((_num(r, "fwd_tflops") for r in rows if r.get("impl") == "matmul_bf16"), None)
    by_shape: Dict[Tuple[Any, ...], Dict[str, Dict[str, Any]]] = {}
    for r in rows:
        if r.get("impl") in ("matmul_bf16", "copy"):
            continue
        key = tuple(r.get(k) for k in _SHAPE_KEYS)
        by_shape.setdefault(key, {})[r["impl"]] = r
    present = [a for a in anchors if any(a in impls for impls in by_shape.values())]
    header = ["dtype", "D", "causal", "B", "H", "S", "ours TFLOPS f/b", "% matmul f/b"]
    for a in present:
        header += [f"{IMPL_LABELS[a]} f/b", f"ours/{IMPL_LABELS[a]}"]
    cells: List[List[str]] = []
    for key, impls in sorted(by_shape.items(), key=lambda kv: _shape_order(dict(zip(_SHAPE_KEYS, kv[0])))):
        shape = dict(zip(_SHAPE_KEYS, key))
        ours = impls.get("ours")
        of, ob = _num(ours, "fwd_tflops"), _num(ours, "bwd_tflops")
        failed = bool(ours and ours.get("error"))
        s = str(shape["Sq"]) if shape["Sq"] == shape["Sk"] else f"{shape['Sq']}/{shape['Sk']}"
        h = str(shape["H"]) if shape["H"] == shape["Hk"] else f"{shape['H']}/{shape['Hk']}"
        causal = str(shape["causal"]).lower() in ("true", "1")
        line = [str(shape["dtype"]), str(shape["D"]), "yes" if causal else "no", str(shape["B"]), h, s,
                _pair(of, ob, ".0f", failed)]
        pct = (lambda x: None if x is None or not matmul else 100 * x / matmul)
        line.append(_pair(pct(of), pct(ob), ".0f"))
        for a in present:
            rec = impls.get(a)
            af, ab = _num(rec, "fwd_tflops"), _num(rec, "bwd_tflops")
            line += [_pair(af, ab, ".0f", bool(rec and rec.get("error"))), _pair(_ratio(of, af), _ratio(ob, ab), ".2f")]
        cells.append(line)
    return header, cells


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    """Plain-text table (columns padded); see ``table_rows``."""
    header, cells = table_rows(rows)
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    fmt = lambda line: "  ".join(x.rjust(w) for x, w in zip(line, widths))  # noqa: E731
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(c) for c in cells])


def print_table(rows: Sequence[Dict[str, Any]], ceilings: Sequence[Dict[str, Any]] = ()) -> None:
    """The results table, with rich when installed, else plain text."""
    title = "TFLOPS forward/backward; ratios are ours/anchor"
    for c in ceilings:
        if c.get("impl") == "matmul_bf16" and c.get("fwd_tflops"):
            title += f"; bf16 matmul ceiling {c['fwd_tflops']:.0f} TFLOPS"
        if c.get("impl") == "copy" and c.get("tb_per_s"):
            title += f"; copy {c['tb_per_s']:.2f} TB/s"
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        print(format_table(list(ceilings) + list(rows)))
        return
    header, cells = table_rows(list(ceilings) + list(rows))
    table = Table(title=title, show_lines=False)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < 3 else "right", no_wrap=True)
    for c in cells:
        table.add_row(*c)
    # Wide enough for every column: rich would otherwise squeeze cells to the terminal (80 when piped).
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    Console(width=max(len(title), sum(widths) + 3 * len(widths) + 1)).print(table)


# --------------------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------------------


def _progress(items: Sequence[Any]) -> Tuple[Iterable[Any], Callable[[str], None]]:
    """tqdm over ``items`` (and its ``write`` for messages) when tqdm is installed, else plain iteration."""
    try:
        from tqdm import tqdm
    except ImportError:
        return items, lambda msg: print(msg, flush=True)
    bar = tqdm(items, desc="bench", unit="shape", dynamic_ncols=True)
    return bar, bar.write


def run_benchmark(shapes: Sequence[Shape], impls: Sequence[str], out_path: Optional[Path], warmup_ms: float,
                  rep_ms: float, first_calls: Optional[FirstCalls], check_ok: Optional[bool], seed: int = 0,
                  device: str = "cuda") -> Tuple[Path, List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Ceilings, then every shape; returns the CSV path, the ceiling rows and the implementation rows."""
    env = environment()
    path = out_path or default_out_path(env["gpu"])
    print(f"{env['gpu']}: torch {env['torch']}, triton {env['triton']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}",
          flush=True)
    ceilings = measure_ceilings(warmup_ms, rep_ms, device)
    for c in ceilings:
        value = (f"{c['fwd_tflops']:.0f} TFLOPS" if c.get("fwd_tflops") else
                 f"{c['tb_per_s']:.2f} TB/s" if c.get("tb_per_s") else c.get("error", "?"))
        print(f"ceiling {c['impl']}: {value} ({c['note']})", flush=True)
    matmul = next((c.get("fwd_tflops") for c in ceilings if c["impl"] == "matmul_bf16"), None)
    rows: List[Dict[str, Any]] = []
    reported: set = set()
    with CsvWriter(path, common=env) as writer:
        for c in ceilings:
            writer.write(c)
        items, log = _progress(shapes)
        for shape in items:
            for rec in bench_shape(shape, impls, warmup_ms, rep_ms, first_calls, seed, device):
                rec.update(shape.csv_fields())
                for phase in ("fwd", "bwd"):
                    if rec.get(f"{phase}_tflops") is not None and matmul:
                        rec[f"{phase}_frac_matmul"] = rec[f"{phase}_tflops"] / matmul
                if rec["impl"] == "ours":
                    _add_first_call(rec, shape, first_calls, reported)
                    if check_ok is False:
                        rec["note"] = "; ".join(filter(None, [rec.get("note"), "correctness check FAILED"]))
                if rec.get("error"):
                    log(f"{shape.label()} {rec['impl']}: {rec['error']}")
                writer.write(rec)
                rows.append(rec)
    return path, ceilings, rows


def _add_first_call(rec: Dict[str, Any], shape: Shape, first_calls: Optional[FirstCalls], reported: set) -> None:
    """Put the combo's first-call latency on its first grid row (once per combo)."""
    if first_calls is None or shape.combo in reported or shape.combo not in first_calls.times:
        return
    reported.add(shape.combo)
    seconds, where = first_calls.times[shape.combo]
    rec["first_call_s"] = seconds
    if where.startswith("correctness check"):
        rec["note"] = "; ".join(filter(None, [rec.get("note"), f"first call was in the {where}"]))


def _int_list(text: str) -> List[int]:
    return [int(x) for x in text.replace(" ", ",").split(",") if x]


def _str_list(text: str) -> List[str]:
    return [x for x in text.replace(" ", ",").split(",") if x]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flash-attention-bench",
        description="Correctness check, then FlashAttention (Triton) vs SDPA flash/cuDNN/efficient and flex "
                    "timings on a CUDA GPU. Without a GPU only the check runs (on CPU).",
    )
    p.add_argument("--quick", action="store_true",
                   help="bf16, head_dim 128, seqlen 2048 and 8192, no 64K row (explicit options still win)")
    p.add_argument("--dtypes", type=_str_list, help="comma list from bf16,fp16 (default: both)")
    p.add_argument("--head-dims", type=_int_list, help="comma list (default: 64,128)")
    p.add_argument("--seqlens", type=_int_list,
                   help=f"comma list (default: {','.join(map(str, DEFAULT_SEQLENS))}); batch = {TOKENS} // seqlen")
    p.add_argument("--causal", choices=("both", "yes", "no"), default="both", help="which masks to time")
    p.add_argument("--impls", type=_str_list, help=f"subset of {','.join(IMPLS)} (default: all)")
    p.add_argument("--no-long", action="store_true", help=f"skip the B=1 S={LONG_SEQLEN} rows")
    p.add_argument("--long-only", action="store_true", help=f"time only the B=1 S={LONG_SEQLEN} rows")
    p.add_argument("--no-check", action="store_true", help="skip the correctness check")
    p.add_argument("--check-only", action="store_true", help="run the correctness check only")
    p.add_argument("--out", type=Path, help="CSV path (default: benchmarks/results/<gpu>-<date>.csv)")
    p.add_argument("--warmup-ms", type=float, default=25.0, help="do_bench warmup per measurement (ms)")
    p.add_argument("--rep-ms", type=float, default=100.0, help="do_bench repetition time per measurement (ms)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--keep-triton-cache", action="store_true",
                   help="measure first_call_s with Triton's usual on-disk cache (default: a fresh empty one, so "
                        "the first call includes compilation)")
    return p


def resolve_grid(args: argparse.Namespace) -> Tuple[List[Shape], List[str]]:
    """The shapes and implementations the options ask for (``--quick`` only changes defaults)."""
    dtypes = args.dtypes or (["bf16"] if args.quick else ["bf16", "fp16"])
    head_dims = args.head_dims or ([128] if args.quick else [64, 128])
    seqlens = args.seqlens or ([2048, 8192] if args.quick else list(DEFAULT_SEQLENS))
    impls = args.impls or list(IMPLS)
    bad = [d for d in dtypes if d not in ("bf16", "fp16")]
    if bad:
        raise SystemExit(f"--dtypes: unknown {bad}; choose from bf16, fp16")
    bad = [i for i in impls if i not in IMPLS]
    if bad:
        raise SystemExit(f"--impls: unknown {bad}; choose from {', '.join(IMPLS)}")
    causals = {"both": [False, True], "yes": [True], "no": [False]}[args.causal]
    long = not (args.no_long or args.quick)
    if args.long_only:
        seqlens, long = [], True
    return shapes_grid(dtypes, head_dims, seqlens, causals, long), impls


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    shapes, impls = resolve_grid(args)
    has_cuda = torch.cuda.is_available()
    device = "cuda" if has_cuda else "cpu"
    first_calls = FirstCalls(fresh_cache=has_cuda and not args.keep_triton_cache)
    try:
        check_ok: Optional[bool] = None
        if not args.no_check:
            check_ok = run_check(device, first_calls=first_calls)
        if not has_cuda:
            print("No CUDA GPU found: timings need a CUDA GPU, so only the correctness check ran (on CPU).")
            return 0 if check_ok is not False else 1
        if args.check_only:
            return 0 if check_ok is not False else 1
        if check_ok is False:
            print("WARNING: the correctness check failed; timing anyway (ours' rows are marked in the CSV).",
                  flush=True)
        print(f"Timing {len(shapes)} shapes x {len(impls)} implementations ({', '.join(impls)})", flush=True)
        path, ceilings, rows = run_benchmark(shapes, impls, args.out, args.warmup_ms, args.rep_ms, first_calls,
                                             check_ok, args.seed)
        print_table(rows, ceilings)
        first = [f"{dt} D{d} {'causal' if c else 'full'}: {s:.2f}s" for (dt, d, c), (s, _) in
                 sorted(first_calls.times.items())]
        if first:
            print("ours first call (compile included" + ("" if first_calls.fresh_cache else ", warm Triton cache")
                  + "): " + ", ".join(first))
        print(f"Wrote {path}")
        return 0 if check_ok is not False else 1
    finally:
        first_calls.close()


if __name__ == "__main__":
    sys.exit(main())
