"""Input checks for the public API: each failure names the argument and what was expected."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch

GPU_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
CPU_DTYPES = GPU_DTYPES + (torch.float64,)
MAX_HEAD_DIM = 256


def check_tensor(name: str, t: object, ndim: int, layout: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(t).__name__}")
    if t.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {layout}, got shape {tuple(t.shape)}")
    return t


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Shapes, dtypes, devices and strides of ``(batch, seqlen, heads, headdim)`` q/k/v."""
    check_tensor("q", q, 4, "(batch, seqlen_q, nheads, headdim)")
    check_tensor("k", k, 4, "(batch, seqlen_k, nheads_k, headdim)")
    check_tensor("v", v, 4, "(batch, seqlen_k, nheads_k, headdim)")
    allowed = GPU_DTYPES if q.device.type == "cuda" else CPU_DTYPES
    if q.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(f"q must have dtype in ({names}) on {q.device.type}, got {q.dtype}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise TypeError(f"{name} must have the same dtype as q ({q.dtype}), got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name} must be on the same device as q ({q.device}), got {t.device}")
    batch, _, nheads, head_dim = q.shape
    if k.shape[0] != batch or v.shape[0] != batch:
        raise ValueError(f"k and v must have batch {batch} like q, got k {tuple(k.shape)}, v {tuple(v.shape)}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v must have shape (batch, seqlen_k, nheads_k, headdim) = {tuple(k.shape)}, "
                         f"got {tuple(v.shape)}")
    if k.shape[3] != head_dim or v.shape[3] != head_dim:
        raise ValueError(f"k and v must have headdim {head_dim} like q, got k {k.shape[3]}, v {v.shape[3]}")
    if head_dim % 8 != 0 or not 8 <= head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"headdim must be a multiple of 8 between 8 and {MAX_HEAD_DIM}, got {head_dim}")
    nheads_k = k.shape[2]
    if nheads_k == 0 or nheads % nheads_k != 0:
        raise ValueError(f"nheads of q ({nheads}) must be a multiple of nheads_k of k/v ({nheads_k})")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.numel() > 0 and t.stride(-1) != 1:
            raise ValueError(f"{name} must have a contiguous last dimension (stride 1), got strides {t.stride()}")


def check_options(
    softmax_scale: Optional[float],
    window_size: Sequence[int],
    dropout_p: float,
    head_dim: int,
) -> Tuple[float, Tuple[int, int]]:
    """Validate scalar options; returns the resolved ``(softmax_scale, window_size)``."""
    if softmax_scale is None:
        softmax_scale = 1.0 / math.sqrt(head_dim)
    if isinstance(softmax_scale, bool) or not isinstance(softmax_scale, (int, float)):
        raise TypeError(f"softmax_scale must be a float or None, got {type(softmax_scale).__name__}")
    if not math.isfinite(softmax_scale) or softmax_scale <= 0:
        raise ValueError(f"softmax_scale must be a positive finite number, got {softmax_scale}")
    if not isinstance(window_size, (tuple, list)) or len(window_size) != 2:
        raise ValueError(f"window_size must be a pair (left, right), got {window_size!r}")
    left, right = window_size
    for side, w in (("left", left), ("right", right)):
        if isinstance(w, bool) or not isinstance(w, int):
            raise TypeError(f"window_size {side} must be an int, got {type(w).__name__}")
        if w < -1:
            raise ValueError(f"window_size {side} must be -1 (unbounded) or >= 0, got {w}")
    if not isinstance(dropout_p, (int, float)) or not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be a float in [0, 1), got {dropout_p!r}")
    return float(softmax_scale), (int(left), int(right))


def check_features(
    q: torch.Tensor,
    k: torch.Tensor,
    softcap: float,
    alibi_slopes: Optional[torch.Tensor],
    attn_bias: Optional[torch.Tensor],
    attn_mask: Optional[torch.Tensor],
) -> None:
    """Softcap, ALiBi slopes, additive bias and boolean mask against the shapes of q and k."""
    batch, seqlen_q, nheads, _ = q.shape
    seqlen_k = k.shape[1]
    if isinstance(softcap, bool) or not isinstance(softcap, (int, float)) or not softcap >= 0:
        raise ValueError(f"softcap must be a float >= 0 (0 disables it), got {softcap!r}")
    if alibi_slopes is not None:
        if not isinstance(alibi_slopes, torch.Tensor):
            raise TypeError(f"alibi_slopes must be a torch.Tensor, got {type(alibi_slopes).__name__}")
        if alibi_slopes.dtype != torch.float32:
            raise TypeError(f"alibi_slopes must be float32, got {alibi_slopes.dtype}")
        if tuple(alibi_slopes.shape) not in ((nheads,), (batch, nheads)):
            raise ValueError(f"alibi_slopes must have shape (nheads,) = ({nheads},) or (batch, nheads) = "
                             f"({batch}, {nheads}), got {tuple(alibi_slopes.shape)}")
        if alibi_slopes.device != q.device:
            raise ValueError(f"alibi_slopes must be on {q.device}, got {alibi_slopes.device}")
    target = (batch, nheads, seqlen_q, seqlen_k)
    for name, t, kinds in (("attn_bias", attn_bias, "float"), ("attn_mask", attn_mask, "bool")):
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if kinds == "bool" and t.dtype != torch.bool:
            raise TypeError(f"attn_mask must be a bool tensor (True = may attend), got {t.dtype}")
        if kinds == "float" and not t.dtype.is_floating_point:
            raise TypeError(f"attn_bias must be a floating-point tensor, got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name} must be on {q.device}, got {t.device}")
        try:
            ok = t.dim() <= 4 and torch.broadcast_shapes(t.shape, target) == target
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"{name} must broadcast to (batch, nheads, seqlen_q, seqlen_k) = {target}, "
                             f"got {tuple(t.shape)}")
