"""flash_attention: FlashAttention-2 in Triton with a PyTorch front end.

``flash_attn_func``, its packed variants the variable-length ``flash_attn_varlen_*`` functions and
``flash_attn_with_kvcache`` (inference with a KV cache) follow Dao-AILab's FlashAttention 2 API; CUDA tensors run the
Triton kernels in ``flash_attention.ops``, CPU tensors a chunked PyTorch path with the same semantics.
"""

from .interface import (
    attention,
    flash_attn_func,
    flash_attn_kvpacked_func,
    flash_attn_qkvpacked_func,
    use_backend,
)
from .kvcache import flash_attn_with_kvcache
from .nn.layer.flash_attention import FlashAttention
from .padding import pad_input, unpad_input
from .varlen import flash_attn_varlen_func, flash_attn_varlen_kvpacked_func, flash_attn_varlen_qkvpacked_func

__version__ = "0.1.0"

__all__ = [
    "FlashAttention",
    "attention",
    "flash_attn_func",
    "flash_attn_kvpacked_func",
    "flash_attn_qkvpacked_func",
    "flash_attn_varlen_func",
    "flash_attn_varlen_kvpacked_func",
    "flash_attn_varlen_qkvpacked_func",
    "flash_attn_with_kvcache",
    "pad_input",
    "unpad_input",
    "use_backend",
    "__version__",
]
