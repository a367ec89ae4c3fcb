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
    # Each attribute read once: this runs on every call, and at short sequences its host time counts.
    dtype, device = q.dtype, q.device
    allowed = GPU_DTYPES if device.type == "cuda" else CPU_DTYPES
    if dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(f"q must have dtype in ({names}) on {device.type}, got {dtype}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != dtype:
            raise TypeError(f"{name} must have the same dtype as q ({dtype}), got {t.dtype}")
        if t.device != device:
            raise ValueError(f"{name} must be on the same device as q ({device}), got {t.device}")
    q_shape, k_shape, v_shape = q.shape, k.shape, v.shape
    batch, _, nheads, head_dim = q_shape
    if k_shape[0] != batch or v_shape[0] != batch:
        raise ValueError(f"k and v must have batch {batch} like q, got k {tuple(k_shape)}, v {tuple(v_shape)}")
    if v_shape[:3] != k_shape[:3]:
        raise ValueError(f"v must have shape (batch, seqlen_k, nheads_k, headdim) = {tuple(k_shape)}, "
                         f"got {tuple(v_shape)}")
    if k_shape[3] != head_dim or v_shape[3] != head_dim:
        raise ValueError(f"k and v must have headdim {head_dim} like q, got k {k_shape[3]}, v {v_shape[3]}")
    if head_dim % 8 != 0 or not 8 <= head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"headdim must be a multiple of 8 between 8 and {MAX_HEAD_DIM}, got {head_dim}")
    nheads_k = k_shape[2]
    if nheads_k == 0 or nheads % nheads_k != 0:
        raise ValueError(f"nheads of q ({nheads}) must be a multiple of nheads_k of k/v ({nheads_k})")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.stride(-1) != 1 and t.numel() > 0:
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
    check_softcap(softcap)
    check_alibi(alibi_slopes, batch, nheads, q.device)
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


def check_softcap(softcap: float) -> None:
    if isinstance(softcap, bool) or not isinstance(softcap, (int, float)) or not softcap >= 0:
        raise ValueError(f"softcap must be a float >= 0 (0 disables it), got {softcap!r}")


def check_alibi(alibi_slopes: Optional[torch.Tensor], batch: int, nheads: int, device: torch.device) -> None:
    if alibi_slopes is None:
        return
    if not isinstance(alibi_slopes, torch.Tensor):
        raise TypeError(f"alibi_slopes must be a torch.Tensor, got {type(alibi_slopes).__name__}")
    if alibi_slopes.dtype != torch.float32:
        raise TypeError(f"alibi_slopes must be float32, got {alibi_slopes.dtype}")
    if tuple(alibi_slopes.shape) not in ((nheads,), (batch, nheads)):
        raise ValueError(f"alibi_slopes must have shape (nheads,) = ({nheads},) or (batch, nheads) = "
                         f"({batch}, {nheads}), got {tuple(alibi_slopes.shape)}")
    if alibi_slopes.device != device:
        raise ValueError(f"alibi_slopes must be on {device}, got {alibi_slopes.device}")


def data_checks_allowed() -> bool:
    """Checks that read tensor values need a device sync: skipped while compiling or capturing a CUDA graph
    (the kernels then rely on their masked loads alone)."""
    if torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def _check_packed(name: str, t: object, layout: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    check_tensor(name, t, 3, layout)
    if t.dtype != dtype:
        raise TypeError(f"{name} must have the same dtype as q ({dtype}), got {t.dtype}")
    if t.device != device:
        raise ValueError(f"{name} must be on the same device as q ({device}), got {t.device}")
    if t.numel() > 0 and t.stride(-1) != 1:
        raise ValueError(f"{name} must have a contiguous last dimension (stride 1), got strides {t.stride()}")
    return t


def check_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                 cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int) -> int:
    """Packed ``(total, heads, headdim)`` q/k/v and their int32 ``cu_seqlens``; returns the batch size."""
    check_tensor("q", q, 3, "(total_q, nheads, headdim)")
    allowed = GPU_DTYPES if q.device.type == "cuda" else CPU_DTYPES
    if q.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(f"q must have dtype in ({names}) on {q.device.type}, got {q.dtype}")
    _check_packed("q", q, "(total_q, nheads, headdim)", q.dtype, q.device)
    _check_packed("k", k, "(total_k, nheads_k, headdim)", q.dtype, q.device)
    _check_packed("v", v, "(total_k, nheads_k, headdim)", q.dtype, q.device)
    if v.shape != k.shape:
        raise ValueError(f"v must have the shape of k (total_k, nheads_k, headdim) = {tuple(k.shape)}, "
                         f"got {tuple(v.shape)}")
    head_dim = q.shape[2]
    if k.shape[2] != head_dim:
        raise ValueError(f"k and v must have headdim {head_dim} like q, got {k.shape[2]}")
    if head_dim % 8 != 0 or not 8 <= head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"headdim must be a multiple of 8 between 8 and {MAX_HEAD_DIM}, got {head_dim}")
    if k.shape[1] == 0 or q.shape[1] % k.shape[1] != 0:
        raise ValueError(f"nheads of q ({q.shape[1]}) must be a multiple of nheads_k of k/v ({k.shape[1]})")
    for name, cu in (("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k", cu_seqlens_k)):
        check_tensor(name, cu, 1, "(batch + 1,)")
        if cu.dtype != torch.int32:
            raise TypeError(f"{name} must be int32, got {cu.dtype}")
        if cu.device != q.device:
            raise ValueError(f"{name} must be on the same device as q ({q.device}), got {cu.device}")
        if cu.numel() < 1:
            raise ValueError(f"{name} must hold batch + 1 >= 1 offsets, got an empty tensor")
    if cu_seqlens_q.numel() != cu_seqlens_k.numel():
        raise ValueError(f"cu_seqlens_q and cu_seqlens_k must have the same length (batch + 1), got "
                         f"{cu_seqlens_q.numel()} and {cu_seqlens_k.numel()}")
    for name, m in (("max_seqlen_q", max_seqlen_q), ("max_seqlen_k", max_seqlen_k)):
        if isinstance(m, bool) or not isinstance(m, int):
            raise TypeError(f"{name} must be an int, got {type(m).__name__}")
        if m < 0:
            raise ValueError(f"{name} must be >= 0, got {m}")
    if data_checks_allowed():
        for name, cu, total, longest, tname in (("cu_seqlens_q", cu_seqlens_q, q.shape[0], max_seqlen_q, "q"),
                                                ("cu_seqlens_k", cu_seqlens_k, k.shape[0], max_seqlen_k, "k")):
            offsets = cu.tolist()
            lengths = [b - a for a, b in zip(offsets[:-1], offsets[1:])]
            if offsets[0] != 0 or any(n < 0 for n in lengths):
                raise ValueError(f"{name} must start at 0 and never decrease, got {offsets}")
            if offsets[-1] != total:
                raise ValueError(f"{name}[-1] must equal the number of tokens in {tname} ({total}), got {offsets[-1]}")
            if lengths and max(lengths) > longest:
                raise ValueError(f"max_seqlen_{tname} ({longest}) is below the longest sequence in {name} "
                                 f"({max(lengths)})")
    return cu_seqlens_q.numel() - 1
