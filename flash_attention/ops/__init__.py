"""Triton kernels: ``forward`` (online-softmax forward), ``backward`` (dK/dV and dQ), shared ``masks`` and
per-device ``configs``."""

from .backward import attention_backward
from .forward import attention_forward

__all__ = ["attention_forward", "attention_backward"]
