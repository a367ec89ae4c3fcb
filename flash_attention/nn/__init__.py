"""``torch.nn`` modules: the seed's ``FlashAttention`` layer."""

from .layer.flash_attention import FlashAttention

__all__ = ["FlashAttention"]
