"""Accuracy checks shared by the test suites (CPU and GPU) and the benchmark's correctness pass.

The criterion: compared with a float64 reference, our error (max abs and relative L2) may be at most twice
the error PyTorch makes computing the same attention in the same low precision, plus a small absolute slack.
NaN never passes. Kernel outputs are poisoned with NaN before each launch so an unwritten element fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch

from .features import Features
from .reference import attention_ref

__all__ = ["AttnCase", "random_inputs", "compare", "check_case", "low_precision_reference"]


@dataclass(frozen=True)
class AttnCase:
    batch: int
    seqlen_q: int
    seqlen_k: int
    nheads: int
    nheads_k: int
    head_dim: int
    causal: bool = False
    window_size: Tuple[int, int] = (-1, -1)
    softcap: float = 0.0
    alibi: str = ""  # "", "heads" (nheads,) or "batch" (batch, nheads)
    bias: str = ""  # "", "full" (b, h, sq, sk), "broadcast" (1, h, 1, sk) or "grad" (full, requires grad)
    mask: str = ""  # "", "full" (b, 1, sq, sk) random keep, "rows" (some query rows see nothing)
    dropout_p: float = 0.0

    def __str__(self) -> str:
        w = "" if self.window_size == (-1, -1) else f"-w{self.window_size[0]}_{self.window_size[1]}"
        extra = "".join(f"-{name}{getattr(self, name)}" for name in ("softcap", "alibi", "bias", "mask", "dropout_p")
                        if getattr(self, name))
        return (f"b{self.batch}-q{self.seqlen_q}-k{self.seqlen_k}-h{self.nheads}_{self.nheads_k}-d{self.head_dim}"
                f"{'-causal' if self.causal else ''}{w}{extra}")


def random_inputs(case: AttnCase, dtype: torch.dtype, device, layout: str = "bshd", seed: Optional[int] = None):
    """Fresh random q, k, v, dout in ``(batch, seqlen, heads, headdim)`` shape.

    ``layout="bhsd"`` returns the same shapes as transposed views of ``(batch, heads, seqlen, headdim)``
    storage, so the kernels see non-trivial strides.
    """
    g = _generator(seed)

    def make(s, h):
        if layout == "bhsd":
            t = torch.randn(case.batch, h, s, case.head_dim, generator=g)
            return t.to(device=device, dtype=dtype).transpose(1, 2)
        return torch.randn(case.batch, s, h, case.head_dim, generator=g).to(device=device, dtype=dtype)

    return (make(case.seqlen_q, case.nheads), make(case.seqlen_k, case.nheads_k),
            make(case.seqlen_k, case.nheads_k), make(case.seqlen_q, case.nheads))


def direct_inputs(case: AttnCase, dtype: torch.dtype, device, seed: Optional[int] = None):
    """``(q, k, v, dout, features)`` of a case for direct calls of the ops' forward and backward, which take a
    ``Features``: ALiBi slopes per head where the case has them, and a fixed dropout seed and Philox offset, so
    calls under different switches draw the same pattern."""
    q, k, v, dout = random_inputs(case, dtype, device, seed=seed)
    slopes = torch.rand(q.shape[2], device=device) * 0.1 if case.alibi else None
    f = Features(case.head_dim ** -0.5, case.causal, window_size=case.window_size, alibi_slopes=slopes,
                 dropout_p=case.dropout_p, seed=11, offset=3)
    return q, k, v, dout, f


def _generator(seed: Optional[int]) -> torch.Generator:
    """Fresh random inputs whose seed comes from torch's default generator, so ``torch.manual_seed`` (the test
    fixture, a fuzz example's seed) reproduces a failing case."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(torch.randint(0, 2**62, (1,))) if seed is None else seed)
    return g


def feature_inputs(case: AttnCase, dtype: torch.dtype, device, seed: Optional[int] = None) -> Dict[str, object]:
    """The case's extra arguments (softcap, alibi_slopes, attn_bias, attn_mask, dropout_p), freshly drawn."""
    g = _generator(seed)
    b, h, sq, sk = case.batch, case.nheads, case.seqlen_q, case.seqlen_k
    kw: Dict[str, object] = {}
    if case.softcap:
        kw["softcap"] = case.softcap
    if case.alibi:
        shape = (h,) if case.alibi == "heads" else (b, h)
        kw["alibi_slopes"] = (torch.rand(shape, generator=g) * 0.3 + 0.01).to(device)
    if case.bias:
        shape = (1, h, 1, sk) if case.bias == "broadcast" else (b, h, sq, sk)
        kw["attn_bias"] = torch.randn(shape, generator=g).to(device=device, dtype=dtype)
        if case.bias == "grad":
            kw["attn_bias"].requires_grad_()
    if case.mask:
        keep = torch.rand(b, 1, sq, sk, generator=g) > 0.3
        if case.mask == "rows":
            keep[:, :, ::3] = False  # every third query row sees nothing: output 0, lse -inf
        kw["attn_mask"] = keep.to(device)
    if case.dropout_p:
        kw["dropout_p"] = case.dropout_p
    return kw


def _ref_kwargs(case: AttnCase, kw: Dict[str, object], keep: Optional[torch.Tensor]) -> Dict[str, object]:
    ref = {name: kw[name] for name in ("softcap", "alibi_slopes", "attn_mask") if name in kw}
    if keep is not None:
        ref.update(dropout_p=case.dropout_p, dropout_keep=keep)
    return ref


def low_precision_reference(q, k, v, dout, case: AttnCase, softmax_scale=None, grads=True, kw=None, keep=None):
    """PyTorch's attention computed in the inputs' own dtype (the error budget), plus its gradients."""
    kw = kw or {}
    leaves = [t.detach().clone().requires_grad_(grads) for t in (q, k, v)]
    bias = kw.get("attn_bias")
    if bias is not None:
        bias = bias.detach().clone().requires_grad_(grads and case.bias == "grad")
    out, lse = attention_ref(*leaves, softmax_scale=softmax_scale, causal=case.causal,
                             window_size=case.window_size, upcast=False, attn_bias=bias,
                             **_ref_kwargs(case, kw, keep))
    result = [out.detach(), lse, None, None, None, None]
    if grads:
        inputs = leaves + ([bias] if case.bias == "grad" else [])
        result[2:2 + len(inputs)] = torch.autograd.grad(out, inputs, dout)
    return result


def float64_reference(q, k, v, dout, case: AttnCase, softmax_scale=None, grads=True, kw=None, keep=None):
    kw = kw or {}
    leaves = [t.detach().to(torch.float64).requires_grad_(grads) for t in (q, k, v)]
    bias = kw.get("attn_bias")
    if bias is not None:
        bias = bias.detach().to(torch.float64).requires_grad_(grads and case.bias == "grad")
    out, lse = attention_ref(*leaves, softmax_scale=softmax_scale, causal=case.causal,
                             window_size=case.window_size, upcast=True, attn_bias=bias,
                             **_ref_kwargs(case, kw, keep))
    result = [out.detach(), lse, None, None, None, None]
    if grads:
        inputs = leaves + ([bias] if case.bias == "grad" else [])
        result[2:2 + len(inputs)] = torch.autograd.grad(out, inputs, dout.to(torch.float64))
    return result


def compare(name: str, ours: torch.Tensor, ref: torch.Tensor, low: torch.Tensor, slack: float,
            magnitude: float = 1.0) -> Dict[str, float]:
    """Raise AssertionError unless ``ours`` is within 2x ``low``'s error of ``ref`` (+ slack); return the errors.

    The slack scales with ``max(magnitude, |ref|)``: ``magnitude`` states the size of the terms the result is a
    difference of, when that can exceed the result (see ``grad_magnitude``)."""
    assert ours.shape == ref.shape, f"{name}: shape {tuple(ours.shape)} != reference {tuple(ref.shape)}"
    ours64, low64 = ours.detach().to(torch.float64), low.detach().to(torch.float64)
    ref = ref.detach().to(torch.float64).to(ours64.device)
    low64 = low64.to(ours64.device)
    assert not torch.isnan(ours64).any(), f"{name}: NaN in output ({int(torch.isnan(ours64).sum())} elements)"
    if ours.numel() == 0:
        return {"max": 0.0, "max_low": 0.0, "rel": 0.0, "rel_low": 0.0}
    err = (ours64 - ref).abs().max().item()
    err_low = (low64 - ref).abs().nan_to_num(0.0).max().item()
    norm = ref.norm().item()
    # An all-zero reference (e.g. dq with a single key) has no relative error; the max check covers it.
    rel = (ours64 - ref).norm().item() / norm if norm > 0 else 0.0
    rel_low = (low64 - ref).nan_to_num(0.0).norm().item() / norm if norm > 0 else 0.0
    scale = max(1.0, magnitude, ref.abs().max().item())
    assert err <= 2 * err_low + slack * scale, (
        f"{name}: max error {err:.3e} > 2 x PyTorch low-precision error {err_low:.3e} + slack {slack * scale:.1e}")
    # Where the result is a cancellation of larger terms (magnitude > |ref|) the relative error of a tiny result
    # says little; the max check above bounds the absolute error by the terms' size instead.
    rel_slack = slack * max(1.0, magnitude / max(ref.abs().max().item(), 1e-30))
    assert rel <= 2 * rel_low + rel_slack, (
        f"{name}: relative error {rel:.3e} > 2 x PyTorch low-precision error {rel_low:.3e} + slack {rel_slack:.1e}")
    return {"max": err, "max_low": err_low, "rel": rel, "rel_low": rel_low}


def grad_magnitude(dout: torch.Tensor, out_ref: torch.Tensor) -> float:
    """The size of ``D = rowsum(dO * O)``, which dS = P * (dP - D) cancels: FlashAttention's backward computes D
    from the stored low-precision O, so dQ/dK carry its rounding even where the exact result is 0 (one key:
    P = 1 and dS = 0; PyTorch's softmax backward cancels exactly there)."""
    if dout.numel() == 0:
        return 1.0
    return float(dout.detach().abs().max().item() * out_ref.detach().abs().max().item())


def default_slack(dtype: torch.dtype) -> float:
    # About a quarter of an ulp at 1.0 for half types: absorbs rounding ties on tiny problems (where PyTorch's
    # own error can be exactly 0, e.g. a single key), far below a real bug's error.
    return {torch.float16: 2.5e-4, torch.bfloat16: 2e-3, torch.float32: 5e-5}.get(dtype, 1e-12)


def _poisoned(t: torch.Tensor) -> torch.Tensor:
    return torch.full_like(t, float("nan"))


def check_case(
    case: AttnCase,
    dtype: torch.dtype,
    device,
    layout: str = "bshd",
    backward: bool = True,
    softmax_scale: Optional[float] = None,
    slack: Optional[float] = None,
    dq_mode: Optional[str] = None,
) -> Dict[str, Dict[str, float]]:
    """Run the Triton kernels directly (outputs preallocated and poisoned) and check them against float64.

    On CPU tensors this needs Triton's interpreter. Returns the measured errors per tensor. Dropout cases go
    through ``check_api`` (they need the public function to rebuild the keep pattern). ``dq_mode`` picks the
    backward's dQ strategy (see ``ops.backward.attention_backward``).
    """
    from .features import Features
    from .ops.backward import attention_backward
    from .ops.forward import attention_forward

    q, k, v, dout = random_inputs(case, dtype, device, layout)
    kw = feature_inputs(case, dtype, device)
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(case.head_dim)
    slack = default_slack(dtype) if slack is None else slack
    f = Features(scale, case.causal, case.window_size, float(case.softcap), kw.get("alibi_slopes"),
                 kw.get("attn_bias"), kw.get("attn_mask"))
    out = _poisoned(q)
    lse = torch.full((case.batch, case.nheads, case.seqlen_q), float("nan"), device=q.device)
    out, lse = attention_forward(q, k, v, f, out=out, lse=lse)
    ref = float64_reference(q, k, v, dout, case, scale, grads=backward, kw=kw)
    low = low_precision_reference(q, k, v, dout, case, scale, grads=backward, kw=kw)
    errors = {"out": compare("out", out, ref[0], low[0], slack)}
    _check_lse(lse, ref[1])
    if backward:
        grads = tuple(_poisoned(t) for t in (q, k, v))
        dq, dk, dv, dbias = attention_backward(dout, q, k, v, out, lse, f, bias_grad=case.bias == "grad",
                                               grads=grads, dq_mode=dq_mode)
        named = [("dq", dq, ref[2], low[2]), ("dk", dk, ref[3], low[3]), ("dv", dv, ref[4], low[4])]
        if case.bias == "grad":
            named.append(("dbias", dbias, ref[5], low[5]))
        mag = grad_magnitude(dout, ref[0])
        for name, ours, r, lo in named:
            errors[name] = compare(name, ours, r, lo, slack, mag if name in ("dq", "dk", "dbias") else 1.0)
    return errors


def _check_lse(lse: torch.Tensor, ref_lse: torch.Tensor, low_lse: Optional[torch.Tensor] = None) -> None:
    """lse: -inf exactly where the reference has it; elsewhere finite and close (within 1e-3 relative, plus twice
    the error of ``low_lse``, the reference computed from inputs rounded to the low precision, when given: rotary
    embeddings round the rotated q/k to bf16 before the scores)."""
    ref_lse = ref_lse.to(lse.device)
    assert not torch.isnan(lse).any(), "lse: NaN (unwritten or invalid)"
    assert torch.equal(torch.isneginf(lse), torch.isneginf(ref_lse)), "lse: -inf rows differ from the reference"
    finite = torch.isfinite(ref_lse)
    if finite.any():
        lse_err = (lse[finite].double() - ref_lse[finite].double()).abs().max().item()
        low_err = 0.0
        if low_lse is not None:
            low_err = (low_lse.to(lse.device)[finite].double() - ref_lse[finite].double()).abs().max().item()
        tol = 1e-3 * max(1.0, ref_lse[finite].abs().max().item()) + 2 * low_err
        assert lse_err <= tol, f"lse: error {lse_err:.3e} > {tol:.3e}"


def check_api(
    fn,
    case: AttnCase,
    dtype: torch.dtype,
    device,
    layout: str = "bshd",
    slack: Optional[float] = None,
    **kwargs,
) -> Dict[str, Dict[str, float]]:
    """Check a public function ``fn(q, k, v, causal=..., window_size=..., **features)`` through autograd.

    With dropout, ``fn`` must accept ``return_attn_probs=True``: the returned ``S_dmask`` gives the keep
    pattern the reference then applies, so the comparison is exact, not statistical.
    """
    q, k, v, dout = random_inputs(case, dtype, device, layout)
    kw = feature_inputs(case, dtype, device)
    slack = default_slack(dtype) if slack is None else slack
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    inputs = leaves + ([kw["attn_bias"]] if case.bias == "grad" else [])
    call_kw = dict(kw)
    call_kw.update(kwargs)
    keep = None
    if case.dropout_p:
        out, lse, s_dmask = fn(*leaves, causal=case.causal, window_size=case.window_size, return_attn_probs=True,
                               **call_kw)
        keep = ~(s_dmask < 0)
    else:
        out = fn(*leaves, causal=case.causal, window_size=case.window_size, **call_kw)
    grads = torch.autograd.grad(out, inputs, dout)
    scale = kwargs.get("softmax_scale")
    ref = float64_reference(q, k, v, dout, case, scale, kw=kw, keep=keep)
    low = low_precision_reference(q, k, v, dout, case, scale, kw=kw, keep=keep)
    errors = {"out": compare("out", out, ref[0], low[0], slack)}
    if case.dropout_p:
        _check_lse(lse, ref[1])
    names = ("dq", "dk", "dv", "dbias")
    mag = grad_magnitude(dout, ref[0])
    for i, ours in enumerate(grads):
        # dq, dk and dbias are built from dS = P * (dP - D): they carry D's rounding (see grad_magnitude)
        errors[names[i]] = compare(names[i], ours, ref[2 + i], low[2 + i], slack, 1.0 if names[i] == "dv" else mag)
    return errors


def cu_seqlens(lengths: Sequence[int], device) -> torch.Tensor:
    """int32 cumulative offsets ``(len(lengths) + 1,)`` of packed sequences."""
    out = [0]
    for n in lengths:
        out.append(out[-1] + int(n))
    return torch.tensor(out, dtype=torch.int32, device=device)


def check_varlen(
    seqlens_q: Sequence[int],
    seqlens_k: Sequence[int],
    nheads: int,
    nheads_k: int,
    head_dim: int,
    dtype: torch.dtype,
    device,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi: str = "",
    dropout_p: float = 0.0,
    slack: Optional[float] = None,
) -> Dict[str, Dict[str, float]]:
    """``flash_attn_varlen_func`` on fresh packed inputs vs the float64 per-sequence reference (out, lse, grads).

    With dropout the returned ``S_dmask`` gives each sequence's keep pattern, so the comparison stays exact.
    """
    from .reference import varlen_attention_ref
    from .varlen import flash_attn_varlen_func

    g = _generator(None)
    cu_q, cu_k = cu_seqlens(seqlens_q, device), cu_seqlens(seqlens_k, device)
    total_q, total_k = int(sum(seqlens_q)), int(sum(seqlens_k))
    q = torch.randn(total_q, nheads, head_dim, generator=g).to(device=device, dtype=dtype)
    k = torch.randn(total_k, nheads_k, head_dim, generator=g).to(device=device, dtype=dtype)
    v = torch.randn(total_k, nheads_k, head_dim, generator=g).to(device=device, dtype=dtype)
    dout = torch.randn(total_q, nheads, head_dim, generator=g).to(device=device, dtype=dtype)
    batch = len(seqlens_q)
    slopes = None
    if alibi:
        slopes = (torch.rand((nheads,) if alibi == "heads" else (batch, nheads), generator=g) * 0.5).to(device)
    slack = default_slack(dtype) if slack is None else slack
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    max_q, max_k = max(seqlens_q, default=0), max(seqlens_k, default=0)
    opts = dict(causal=causal, window_size=window_size, softcap=softcap)
    out, lse, s_dmask = flash_attn_varlen_func(*leaves, cu_q, cu_k, max_q, max_k, dropout_p=dropout_p,
                                               alibi_slopes=slopes, return_attn_probs=True, **opts)
    keep = None
    if dropout_p:
        keep = [~(s_dmask[b, :, :lq, :lk] < 0)[None] for b, (lq, lk) in enumerate(zip(seqlens_q, seqlens_k))]
        opts["dropout_p"] = dropout_p
    grads = torch.autograd.grad(out, leaves, dout) if total_q else (torch.zeros_like(q),) * 3

    def reference(upcast: bool):
        ref_leaves = [t.detach().to(torch.float64 if upcast else dtype).requires_grad_() for t in (q, k, v)]
        o, l = varlen_attention_ref(*ref_leaves, cu_q, cu_k, alibi_slopes=slopes, dropout_keep=keep, upcast=upcast,
                                    **opts)
        gr = (torch.autograd.grad(o, ref_leaves, dout.to(o.dtype), allow_unused=True) if total_q
              else (None,) * 3)
        gr = [x if x is not None else torch.zeros_like(t) for x, t in zip(gr, ref_leaves)]
        return o.detach(), l, gr

    ref, low = reference(True), reference(False)
    errors = {"out": compare("out", out, ref[0], low[0], slack)}
    assert lse.shape == (nheads, total_q), f"lse: shape {tuple(lse.shape)} != (nheads, total_q)"
    _check_lse(lse, ref[1])
    mag = grad_magnitude(dout, ref[0])
    for name, ours, r, lo in zip(("dq", "dk", "dv"), grads, ref[2], low[2]):
        errors[name] = compare(name, ours, r, lo, slack, mag if name in ("dq", "dk") else 1.0)
    return errors


# Token windows (one-sided, two-sided, with and without causal) and ALiBi (per head, per batch), alone and combined,
# at ragged lengths, both diagonals and GQA: the cases the Gluon kernels' WINDOW/ALIBI paths are checked on.
BAND_CASES = [AttnCase(2, 1000, 1000, 8, 2, 128, causal=True, window_size=(64, 0)),
              AttnCase(2, 1000, 1500, 8, 8, 128, window_size=(100, 37)),
              AttnCase(1, 2049, 2049, 4, 4, 64, window_size=(300, -1)),
              AttnCase(2, 700, 300, 4, 4, 128, window_size=(-1, 50)),
              AttnCase(2, 300, 700, 4, 2, 64, causal=True, window_size=(129, 0)),
              AttnCase(1, 4096, 4096, 4, 4, 128, causal=True, window_size=(1000, 0)),
              AttnCase(2, 1000, 1000, 8, 2, 128, alibi="heads"),
              AttnCase(2, 1000, 1300, 8, 8, 128, causal=True, alibi="batch"),
              AttnCase(2, 1500, 1000, 8, 8, 64, causal=True, alibi="heads"),
              AttnCase(2, 1000, 1000, 8, 8, 128, causal=True, window_size=(200, 0), alibi="heads"),
              AttnCase(1, 63, 200, 2, 2, 128, window_size=(10, 10), alibi="batch")]
# Dropout cases for the GPU kernels' tests, with their dtypes: GQA, ragged lengths, causal, a window with ALiBi,
# p up to 0.5.
DROPOUT_CASES = [(AttnCase(2, 1000, 1537, 8, 2, 128, dropout_p=0.1), torch.bfloat16),
                 (AttnCase(2, 1100, 1100, 8, 8, 64, causal=True, dropout_p=0.3), torch.float16),
                 (AttnCase(1, 3000, 2000, 16, 4, 64, dropout_p=0.2), torch.bfloat16),
                 (AttnCase(2, 1500, 1500, 4, 4, 128, causal=True, window_size=(300, 0), alibi="heads",
                           dropout_p=0.15), torch.bfloat16),
                 (AttnCase(1, 63, 200, 2, 2, 128, dropout_p=0.5), torch.float16),
                 (AttnCase(2, 2048, 2048, 4, 4, 128, causal=True, dropout_p=0.1), torch.bfloat16)]


def cases_product(seqlens: Sequence[Tuple[int, int]], causals=(False, True), heads=((4, 2),), head_dims=(64,),
                  batch: int = 2, windows=((-1, -1),), **features):
    """All combinations as a list of ``AttnCase`` (for ``pytest.mark.parametrize``)."""
    return [AttnCase(batch, sq, sk, h, hk, d, c, w, **features)
            for (sq, sk) in seqlens for c in causals for (h, hk) in heads for d in head_dims for w in windows]


class TinyAttentionBlock(torch.nn.Module):
    """Projections around ``flash_attn_func`` (GQA, causal), as a model would use it: the compile tests' model."""

    def __init__(self, dim: int = 64, heads: int = 4, kv_heads: int = 2, dropout_p: float = 0.0):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim, self.dropout_p = heads, kv_heads, dim // heads, dropout_p
        self.q = torch.nn.Linear(dim, dim)
        self.kv = torch.nn.Linear(dim, 2 * kv_heads * self.head_dim)
        self.o = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from .interface import flash_attn_func

        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.heads, self.head_dim)
        k, v = self.kv(x).view(b, s, 2, self.kv_heads, self.head_dim).unbind(2)
        y = flash_attn_func(q, k, v, dropout_p=self.dropout_p, causal=True)
        return self.o(y.reshape(b, s, -1))


def check_kvcache(
    device,
    dtype: torch.dtype,
    batch: int = 3,
    seqlen_q: int = 1,
    seqlen_new: int = 1,
    nheads: int = 4,
    nheads_k: int = 2,
    head_dim: int = 32,
    cache_len: int = 48,
    page_size: int = 0,
    batch_idx: bool = False,
    leftpad: bool = False,
    rotary: str = "",
    rotary_dim: Optional[int] = None,
    fills: Optional[Sequence[int]] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi: str = "",
    num_splits: int = 0,
    slack: Optional[float] = None,
) -> Dict[str, float]:
    """``flash_attn_with_kvcache`` on fresh random inputs vs the float64 reference; also checks the cache update.

    The test builds a logical cache per batch entry, then stores it contiguous, behind ``cache_batch_idx``
    (``batch_idx``: extra rows, shuffled) or paged (``page_size``: shuffled pages plus unused ones), so the
    reference never sees the storage layout. ``rotary`` is ``""``, ``"interleaved"`` or ``"halves"``.
    After the call, the appended slots must hold the rotated new keys (to within rounding) and every other
    element of the storage must be unchanged, bit for bit.
    """
    from .kvcache import flash_attn_with_kvcache
    from .reference import kvcache_attention_ref, rotary_ref

    g = _generator(None)

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(dtype)

    if fills is None:
        fills = torch.randint(0, cache_len - seqlen_new + 1, (batch,), generator=g).tolist()
    fills = [int(x) for x in fills]
    pads = [int(torch.randint(0, f + 1, (1,), generator=g)) for f in fills] if leftpad else [0] * batch
    k_log, v_log = rand(batch, cache_len, nheads_k, head_dim), rand(batch, cache_len, nheads_k, head_dim)
    extra: Dict[str, torch.Tensor] = {}
    if page_size:
        assert cache_len % page_size == 0, "cache_len must be a whole number of pages"
        pages = cache_len // page_size
        num_blocks = batch * pages + 3
        table = torch.randperm(num_blocks, generator=g)[:batch * pages].view(batch, pages)
        k_store, v_store = (rand(num_blocks, page_size, nheads_k, head_dim) for _ in range(2))
        k_store[table] = k_log.view(batch, pages, page_size, nheads_k, head_dim)
        v_store[table] = v_log.view(batch, pages, page_size, nheads_k, head_dim)
        extra["block_table"] = table.to(torch.int32)

        def logical(store):
            return store[table].flatten(1, 2)
    elif batch_idx:
        rows = torch.randperm(batch + 2, generator=g)[:batch]
        k_store, v_store = (rand(batch + 2, cache_len, nheads_k, head_dim) for _ in range(2))
        k_store[rows], v_store[rows] = k_log, v_log
        extra["cache_batch_idx"] = rows.to(torch.int32)

        def logical(store):
            return store[rows]
    else:
        k_store, v_store = k_log.clone(), v_log.clone()

        def logical(store):
            return store
    if leftpad:
        extra["cache_leftpad"] = torch.tensor(pads, dtype=torch.int32)
    q = rand(batch, seqlen_q, nheads, head_dim)
    k_new = rand(batch, seqlen_new, nheads_k, head_dim) if seqlen_new else None
    v_new = rand(batch, seqlen_new, nheads_k, head_dim) if seqlen_new else None
    cos = sin = None
    if rotary:
        rdim = rotary_dim or head_dim
        angles = torch.rand(cache_len + seqlen_q, rdim // 2, generator=g, dtype=torch.float64) * 2 * math.pi
        cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
    slopes = None
    if alibi:
        slopes = torch.rand((nheads,) if alibi == "heads" else (batch, nheads), generator=g) * 0.5
    slack = default_slack(dtype) if slack is None else slack

    def to(t):
        return t.to(device) if t is not None else None

    before_k, before_v = k_store.clone(), v_store.clone()
    k_dev, v_dev = to(k_store), to(v_store)
    out, lse = flash_attn_with_kvcache(
        to(q), k_dev, v_dev, to(k_new), to(v_new), to(cos), to(sin),
        cache_seqlens=torch.tensor(fills, dtype=torch.int32, device=device),
        **{name: to(t) for name, t in extra.items()}, causal=causal, window_size=window_size, softcap=softcap,
        rotary_interleaved=rotary != "halves", alibi_slopes=to(slopes), num_splits=num_splits,
        return_softmax_lse=True)

    # The expected cache and inputs, in float64 (rotary exact) and rounded to dtype (what the cache stores).
    filled = torch.tensor(fills) - torch.tensor(pads)
    local = causal or tuple(window_size) != (-1, -1)
    q64 = q.to(torch.float64)
    k_exp64, v_exp64 = k_log.to(torch.float64), v_log.to(torch.float64)
    if seqlen_new:
        k_app = k_new.to(torch.float64)
    if rotary:
        steps = torch.arange(seqlen_q)[None]
        q64 = rotary_ref(q, cos, sin, filled[:, None] + (steps if local else 0 * steps), rotary != "halves")
        if seqlen_new:
            k_app = rotary_ref(k_new, cos, sin, filled[:, None] + torch.arange(seqlen_new)[None], rotary != "halves")
    for b in range(batch):
        if seqlen_new:
            k_exp64[b, fills[b]:fills[b] + seqlen_new] = k_app[b]
            v_exp64[b, fills[b]:fills[b] + seqlen_new] = v_new[b].to(torch.float64)
    k_store_after, v_store_after = k_dev.cpu(), v_dev.cpu()
    for name, store, before, exp in (("k_cache", k_store_after, before_k, k_exp64),
                                     ("v_cache", v_store_after, before_v, v_exp64)):
        got = logical(store).to(torch.float64)
        tol = 2 * torch.finfo(dtype).eps * max(1.0, exp.abs().max().item())
        assert (got - exp).abs().max().item() <= tol, f"{name}: appended values differ from the rotated new tokens"
        touched = torch.zeros_like(store, dtype=torch.bool)
        marks = torch.zeros(batch, cache_len, *store.shape[2:], dtype=torch.bool)
        for b in range(batch):
            marks[b, fills[b]:fills[b] + seqlen_new] = True
        if page_size:
            touched[table] = marks.view(batch, -1, page_size, *store.shape[2:])
        elif batch_idx:
            touched[rows] = marks
        else:
            touched = marks
        assert torch.equal(store[~touched], before[~touched]), f"{name}: elements outside the new slots changed"

    seqlens_k = [f + seqlen_new for f in fills]
    opts = dict(causal=causal, window_size=tuple(window_size), softcap=softcap)
    ref = kvcache_attention_ref(q64, k_exp64, v_exp64, seqlens_k, pads, alibi_slopes=slopes, **opts)
    low = kvcache_attention_ref(q64.to(dtype), k_exp64.to(dtype), v_exp64.to(dtype), seqlens_k, pads,
                                alibi_slopes=slopes, upcast=False, **opts)
    errors = compare("out", out.cpu(), ref[0], low[0], slack)
    assert lse.shape == (batch, nheads, seqlen_q), f"lse: shape {tuple(lse.shape)} != (batch, nheads, seqlen_q)"
    _check_lse(lse.cpu(), ref[1], low[1])
    return errors
