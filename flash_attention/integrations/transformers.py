"""Hugging Face transformers backend: ``flash_attn_func`` behind transformers' ``AttentionInterface``.

Usage::

    from flash_attention.integrations.transformers import register
    name = register()  # "fa2_triton"
    model = AutoModelForCausalLM.from_config(config, attn_implementation=name)
    # or, on an existing model: model.set_attn_implementation(name)

The attention function follows the calling convention transformers 5.x uses for every registered
implementation (that of ``transformers.integrations.sdpa_attention.sdpa_attention_forward``, shared by 5.17 and
5.23): ``query`` ``(batch, heads, seqlen_q, head_dim)``, ``key``/``value`` ``(batch, kv_heads, seqlen_k, head_dim)``,
returning ``(attn_output, None)`` with ``attn_output`` ``(batch, seqlen_q, heads, head_dim)``.

transformers itself is imported only by ``register``; the attention function needs torch alone.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Tuple

import torch

from flash_attention import flash_attn_func, flash_attn_varlen_func

__all__ = ["DEFAULT_NAME", "flash_attention_forward", "register"]

# transformers treats every implementation name containing "flash" as a flash-attn package or hub kernel
# (``is_flash_attention_requested`` is a substring test) and tries to load one when the name is set on a model,
# which fails for ours; so the name must avoid that word.
DEFAULT_NAME = "fa2_triton"

_logger = logging.getLogger(__name__)
_warned_output_attentions = False


def _mask_and_bias(
    attention_mask: Optional[torch.Tensor], seqlen_k: int
) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Split transformers' ``attention_mask`` into our ``(attn_mask, attn_bias)`` keywords.

    With the sdpa mask function registered for our name, transformers passes ``None`` (plain causal or full
    attention, no padding) or a bool ``(batch, 1, seqlen_q, seqlen_k)`` mask, True = attend. A caller may still
    hand the model a ready 4-D float mask (additive, large negative = masked), which transformers forwards as is.
    """
    if attention_mask is None:
        return None, None
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"attention_mask must be a torch.Tensor or None, got {type(attention_mask).__name__} "
                        "(a flex_attention BlockMask is not supported)")
    if attention_mask.shape[-1] > seqlen_k:
        # Masks built for a static cache may be longer than the keys handed to us; sdpa slices them the same way.
        attention_mask = attention_mask[..., :seqlen_k]
    if attention_mask.dtype == torch.bool:
        return attention_mask, None
    if not attention_mask.dtype.is_floating_point:
        raise TypeError(f"attention_mask must be bool (True = attend) or an additive float mask, "
                        f"got {attention_mask.dtype}")
    # Masked entries are finfo.min (or -inf); half of min separates them from any real bias value. The
    # visible entries are kept as a bias because a custom float mask may carry more than 0 there.
    visible = attention_mask > torch.finfo(attention_mask.dtype).min / 2
    return visible, attention_mask.masked_fill(~visible, 0.0)


def flash_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    is_causal: Optional[bool] = None,
    **kwargs: Any,
) -> Tuple[torch.Tensor, None]:
    """Attention for transformers models through ``flash_attn_func``.

    Args:
        module: the calling attention layer (read for ``training``, ``is_causal`` and ``config``).
        query: ``(batch, heads, seqlen_q, head_dim)``.
        key, value: ``(batch, kv_heads, seqlen_k, head_dim)``; ``kv_heads`` divides ``heads`` (GQA runs natively,
            kv heads are not repeated).
        attention_mask: None, bool (True = attend) or additive float, broadcastable to
            ``(batch, heads, seqlen_q, seqlen_k)``; a given mask already encodes causality and sliding windows.
        dropout: attention dropout probability, applied only while ``module.training``.
        scaling: softmax scale; None means ``head_dim ** -0.5``.
        is_causal: overrides ``module.is_causal``.
        **kwargs: ``softcap``, ``sliding_window`` and ``position_bias`` are used, and ``cu_seq_lens_q``/``_k`` with
            ``max_length_q``/``_k`` (packed sequences, e.g. from ``DataCollatorWithFlattening``) select
            ``flash_attn_varlen_func`` on the batch-1 packed input instead of a block-diagonal mask;
            ``deterministic`` (default: the environment's ``FLASH_ATTENTION_DETERMINISTIC=1``, as transformers reads
            it for flash-attn) is passed on; other model kwargs are ignored.

    Returns:
        ``(attn_output, None)``: ``attn_output`` is ``(batch, seqlen_q, heads, head_dim)``; no attention weights.
    """
    global _warned_output_attentions
    if kwargs.get("output_attentions", False) and not _warned_output_attentions:
        _logger.warning("flash_attention_forward does not return attention weights (output_attentions=True); "
                        "use attn_implementation='eager' for them")
        _warned_output_attentions = True
    if kwargs.get("s_aux") is not None:
        raise NotImplementedError("attention sinks (s_aux) are not supported by flash_attention_forward")
    cache = kwargs.get("cache")
    if cache is not None and type(cache).__name__ == "PagedAttentionCache":
        raise NotImplementedError("continuous batching (PagedAttentionCache) is not supported by "
                                  "flash_attention_forward")

    seqlen_q, seqlen_k = query.shape[2], key.shape[2]
    position_bias: Optional[torch.Tensor] = kwargs.get("position_bias")
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    # As in sdpa: a single query (decoding) sees every cached key, and a given mask replaces the causal flag.
    causal = bool(is_causal) and seqlen_q > 1 and attention_mask is None
    if causal and seqlen_k > seqlen_q:
        # transformers skips the mask only here for a prefill into an empty static cache, relying on sdpa's
        # top-left aligned causal mask; ours is bottom-right aligned, so drop the empty slots past the queries.
        key, value = key[:, :, :seqlen_q], value[:, :, :seqlen_q]
        if position_bias is not None:
            position_bias = position_bias[..., :seqlen_q]
        seqlen_k = seqlen_q

    attn_mask, attn_bias = _mask_and_bias(attention_mask, seqlen_k)
    if position_bias is not None:  # T5-style relative bias, may be learned: it keeps its gradient as attn_bias
        attn_bias = position_bias if attn_bias is None else attn_bias + position_bias

    if "softcap" in kwargs:  # Gemma-2 style layers pass it explicitly (None = off)
        softcap = kwargs["softcap"]
    else:
        softcap = getattr(getattr(module, "config", None), "attn_logit_softcapping", None)

    window = (-1, -1)
    sliding_window = kwargs.get("sliding_window")
    # Only without a mask: a materialised mask already holds the window, and may widen it on purpose (e.g.
    # bidirectional image blocks OR-ed onto a sliding window), so narrowing it here could be wrong. transformers'
    # window keeps the last ``sliding_window`` keys, the query's own included.
    if sliding_window is not None and sliding_window > 0 and attention_mask is None and is_causal:
        window = (int(sliding_window) - 1, -1)

    if key.dtype != query.dtype:  # e.g. a float32 cache under a bf16 model; our kernels need one dtype
        key, value = key.to(query.dtype), value.to(query.dtype)
    q, k, v = (t.transpose(1, 2) for t in (query, key, value))  # strided views, no copies
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))

    deterministic = kwargs.get("deterministic")
    if deterministic is None:
        deterministic = os.environ.get("FLASH_ATTENTION_DETERMINISTIC", "0") == "1"
    cu_q, cu_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    if cu_q is not None and cu_k is not None and q.shape[0] == 1 and position_bias is None:
        # Packed documents: each attends to itself only; the (block-diagonal) mask is then redundant.
        out = flash_attn_varlen_func(
            q[0], k[0], v[0], cu_q.to(torch.int32), cu_k.to(torch.int32), int(kwargs["max_length_q"]),
            int(kwargs["max_length_k"]), dropout_p=dropout if module.training else 0.0, softmax_scale=scaling,
            causal=bool(is_causal) and seqlen_q > 1, window_size=window if attention_mask is None else (-1, -1),
            softcap=float(softcap) if softcap else 0.0, deterministic=bool(deterministic))
        return out[None], None

    attn_output = flash_attn_func(
        q, k, v,
        dropout_p=dropout if module.training else 0.0,
        softmax_scale=scaling,
        causal=causal,
        window_size=window,
        softcap=float(softcap) if softcap else 0.0,
        attn_mask=attn_mask,
        attn_bias=attn_bias,
        deterministic=bool(deterministic),
    )
    return attn_output, None


def register(name: str = DEFAULT_NAME) -> str:
    """Register ``flash_attention_forward`` with transformers under ``name`` and return ``name``.

    The sdpa mask builder is registered under the same name: for names it does not know, transformers builds
    no mask at all, which would silently drop padding.
    """
    if "flash" in name.lower():
        raise ValueError(f"name {name!r} contains 'flash': transformers would then try to load a flash-attn "
                         f"package or hub kernel for it; choose another name (default {DEFAULT_NAME!r})")
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(name, flash_attention_forward)
    AttentionMaskInterface.register(name, sdpa_mask)
    return name
