"""Scale-out over ``torch.distributed``: context-parallel ring attention and the seed layer's dp x mp (x cp) mesh."""

from .layout import LAYOUTS, gather_sequence, shard_sequence, unshard_sequence
from .ring import ring_flash_attn_func

__all__ = ["LAYOUTS", "gather_sequence", "ring_flash_attn_func", "shard_sequence", "unshard_sequence"]
