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

    def __str__(self) -> str:
        w = "" if self.window_size == (-1, -1) else f"-w{self.window_size[0]}_{self.window_size[1]}"
        return (f"b{self.batch}-q{self.seqlen_q}-k{self.seqlen_k}-h{self.nheads}_{self.nheads_k}-d{self.head_dim}"
                f"{'-causal' if self.causal else ''}{w}")


def random_inputs(case: AttnCase, dtype: torch.dtype, device, layout: str = "bshd", seed: Optional[int] = None):
    """Fresh random q, k, v, dout in ``(batch, seqlen, heads, headdim)`` shape.

    ``layout="bhsd"`` returns the same shapes as transposed views of ``(batch, heads, seqlen, headdim)``
    storage, so the kernels see non-trivial strides.
    """
    g = torch.Generator(device="cpu")
    if seed is not None:
        g.manual_seed(seed)
    else:
        g.seed()

    def make(s, h):
        if layout == "bhsd":
            t = torch.randn(case.batch, h, s, case.head_dim, generator=g)
            return t.to(device=device, dtype=dtype).transpose(1, 2)
        return torch.randn(case.batch, s, h, case.head_dim, generator=g).to(device=device, dtype=dtype)

    return (make(case.seqlen_q, case.nheads), make(case.seqlen_k, case.nheads_k),
            make(case.seqlen_k, case.nheads_k), make(case.seqlen_q, case.nheads))


def low_precision_reference(q, k, v, dout, case: AttnCase, softmax_scale=None, grads=True):
    """PyTorch's attention computed in the inputs' own dtype (the error budget), plus its gradients."""
    leaves = [t.detach().clone().requires_grad_(grads) for t in (q, k, v)]
    out, lse = attention_ref(*leaves, softmax_scale=softmax_scale, causal=case.causal,
                             window_size=case.window_size, upcast=False)
    dq = dk = dv = None
    if grads:
        dq, dk, dv = torch.autograd.grad(out, leaves, dout)
    return out.detach(), lse, dq, dk, dv


def float64_reference(q, k, v, dout, case: AttnCase, softmax_scale=None, grads=True):
    leaves = [t.detach().to(torch.float64).requires_grad_(grads) for t in (q, k, v)]
    out, lse = attention_ref(*leaves, softmax_scale=softmax_scale, causal=case.causal,
                             window_size=case.window_size, upcast=True)
    dq = dk = dv = None
    if grads:
        dq, dk, dv = torch.autograd.grad(out, leaves, dout.to(torch.float64))
    return out.detach(), lse, dq, dk, dv


def compare(name: str, ours: torch.Tensor, ref: torch.Tensor, low: torch.Tensor, slack: float) -> Dict[str, float]:
    """Raise AssertionError unless ``ours`` is within 2x ``low``'s error of ``ref`` (+ slack); return the errors."""
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
    scale = max(1.0, ref.abs().max().item())
    assert err <= 2 * err_low + slack * scale, (
        f"{name}: max error {err:.3e} > 2 x PyTorch low-precision error {err_low:.3e} + slack {slack * scale:.1e}")
    assert rel <= 2 * rel_low + slack, (
        f"{name}: relative error {rel:.3e} > 2 x PyTorch low-precision error {rel_low:.3e} + slack {slack:.1e}")
    return {"max": err, "max_low": err_low, "rel": rel, "rel_low": rel_low}


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
) -> Dict[str, Dict[str, float]]:
    """Run the Triton kernels directly (outputs preallocated and poisoned) and check them against float64.

    On CPU tensors this needs Triton's interpreter. Returns the measured errors per tensor.
    """
    from .ops.backward import attention_backward
    from .ops.forward import attention_forward

    q, k, v, dout = random_inputs(case, dtype, device, layout)
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(case.head_dim)
    slack = default_slack(dtype) if slack is None else slack
    out = _poisoned(q)
    lse = torch.full((case.batch, case.nheads, case.seqlen_q), float("nan"), device=q.device)
    out, lse = attention_forward(q, k, v, scale, case.causal, case.window_size, out=out, lse=lse)
    ref = float64_reference(q, k, v, dout, case, scale, grads=backward)
    low = low_precision_reference(q, k, v, dout, case, scale, grads=backward)
    errors = {"out": compare("out", out, ref[0], low[0], slack)}
    # lse: -inf exactly where the reference has it; elsewhere finite and close.
    ref_lse = ref[1].to(lse.device)
    assert not torch.isnan(lse).any(), "lse: NaN (unwritten or invalid)"
    assert torch.equal(torch.isneginf(lse), torch.isneginf(ref_lse)), "lse: -inf rows differ from the reference"
    finite = torch.isfinite(ref_lse)
    if finite.any():
        lse_err = (lse[finite].double() - ref_lse[finite].double()).abs().max().item()
        assert lse_err <= 1e-3 * max(1.0, ref_lse[finite].abs().max().item()), f"lse: error {lse_err:.3e}"
    if backward:
        grads = tuple(_poisoned(t) for t in (q, k, v))
        dq, dk, dv = attention_backward(dout, q, k, v, out, lse, scale, case.causal, case.window_size, grads=grads)
        for name, ours, r, lo in (("dq", dq, ref[2], low[2]), ("dk", dk, ref[3], low[3]), ("dv", dv, ref[4], low[4])):
            errors[name] = compare(name, ours, r, lo, slack)
    return errors


def check_api(
    fn,
    case: AttnCase,
    dtype: torch.dtype,
    device,
    layout: str = "bshd",
    slack: Optional[float] = None,
    **kwargs,
) -> Dict[str, Dict[str, float]]:
    """Check a public function ``fn(q, k, v, causal=..., window_size=..., **kwargs)`` through autograd."""
    q, k, v, dout = random_inputs(case, dtype, device, layout)
    slack = default_slack(dtype) if slack is None else slack
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    out = fn(*leaves, causal=case.causal, window_size=case.window_size, **kwargs)
    dq, dk, dv = torch.autograd.grad(out, leaves, dout)
    scale = kwargs.get("softmax_scale")
    ref = float64_reference(q, k, v, dout, case, scale)
    low = low_precision_reference(q, k, v, dout, case, scale)
    errors = {"out": compare("out", out, ref[0], low[0], slack)}
    for name, ours, r, lo in (("dq", dq, ref[2], low[2]), ("dk", dk, ref[3], low[3]), ("dv", dv, ref[4], low[4])):
        errors[name] = compare(name, ours, r, lo, slack)
    return errors


def cases_product(seqlens: Sequence[Tuple[int, int]], causals=(False, True), heads=((4, 2),), head_dims=(64,),
                  batch: int = 2, windows=((-1, -1),)):
    """All combinations as a list of ``AttnCase`` (for ``pytest.mark.parametrize``)."""
    return [AttnCase(batch, sq, sk, h, hk, d, c, w)
            for (sq, sk) in seqlens for c in causals for (h, hk) in heads for d in head_dims for w in windows]
