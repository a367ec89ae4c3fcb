"""Adapters that plug ``flash_attn_func`` into other libraries.

Each adapter is its own submodule and imports its library only when that submodule is imported, so
``import flash_attention`` never pulls in optional dependencies such as transformers.
"""
