"""Layers, one module each (the seed's layout: ``flash_attention.nn.layer.flash_attention``)."""

from .flash_attention import FlashAttention

__all__ = ["FlashAttention"]
