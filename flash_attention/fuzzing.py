"""Hypothesis strategies over shapes and feature combinations, shared by the CPU fuzz tests and the GPU fuzz run.

Each drawn example runs one public function on fresh random inputs and checks it against the float64 reference
with ``flash_attention.testing``'s criterion (forward and gradients; dropout compared exactly through the returned
keep pattern). The number of examples comes from ``FLASH_ATTENTION_FUZZ_EXAMPLES`` (CI keeps it small; the GPU
run uses hundreds), and the database is off so every run explores from the same seed.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from .testing import AttnCase


def examples(default: int) -> int:
    return int(os.environ.get("FLASH_ATTENTION_FUZZ_EXAMPLES", default))


def fuzz_settings(default_examples: int):
    """``FLASH_ATTENTION_FUZZ_NO_SHRINK=1`` reports the first failing example as drawn (shrinking one on a GPU
    can outlast a time-limited run). ``FLASH_ATTENTION_FUZZ_RANDOM=1`` turns off derandomization so that several
    processes given different ``--hypothesis-seed`` values explore different examples (the long GPU run)."""
    phases = [p for p in Phase if p != Phase.shrink] if os.environ.get("FLASH_ATTENTION_FUZZ_NO_SHRINK") else None
    derandomize = not os.environ.get("FLASH_ATTENTION_FUZZ_RANDOM")
    return settings(max_examples=examples(default_examples), deadline=None, database=None, derandomize=derandomize,
                    suppress_health_check=list(HealthCheck), print_blob=True,
                    **({"phases": phases} if phases else {}))


HEAD_DIMS = (8, 16, 24, 32, 40, 64, 72, 96, 128, 256)


@st.composite
def windows(draw):
    kind = draw(st.sampled_from(["none", "left", "right", "both"]))
    size = st.integers(0, 40)
    return {"none": (-1, -1), "left": (draw(size), -1), "right": (-1, draw(size)),
            "both": (draw(size), draw(size))}[kind]


@st.composite
def attn_cases(draw, max_seqlen: int = 70, head_dims=HEAD_DIMS, extras: bool = True):
    """A fixed-length case: any lengths (including 1 and seqlen_q > seqlen_k), MHA/GQA/MQA, every feature."""
    nheads_k = draw(st.integers(1, 3))
    return AttnCase(
        batch=draw(st.integers(1, 3)),
        seqlen_q=draw(st.integers(1, max_seqlen)),
        seqlen_k=draw(st.integers(1, max_seqlen)),
        nheads=nheads_k * draw(st.integers(1, 3)),
        nheads_k=nheads_k,
        head_dim=draw(st.sampled_from(head_dims)),
        causal=draw(st.booleans()),
        window_size=draw(windows()),
        softcap=draw(st.sampled_from([0.0, 0.0, 2.0, 30.0])),
        alibi=draw(st.sampled_from(["", "", "heads", "batch"])),
        bias=draw(st.sampled_from(["", "", "", "full", "broadcast", "grad"])) if extras else "",
        mask=draw(st.sampled_from(["", "", "", "full", "rows"])) if extras else "",
        dropout_p=draw(st.sampled_from([0.0, 0.0, 0.0, 0.17])),
    )


@st.composite
def varlen_cases(draw, max_seqlen: int = 40):
    batch = draw(st.integers(1, 4))
    lengths = st.integers(0, max_seqlen)
    nheads_k = draw(st.integers(1, 2))
    return dict(
        seqlens_q=[draw(lengths) for _ in range(batch)],
        seqlens_k=[draw(lengths) for _ in range(batch)],
        nheads=nheads_k * draw(st.integers(1, 3)),
        nheads_k=nheads_k,
        head_dim=draw(st.sampled_from((16, 32, 64))),
        causal=draw(st.booleans()),
        window_size=draw(windows()),
        softcap=draw(st.sampled_from([0.0, 0.0, 5.0])),
        alibi=draw(st.sampled_from(["", "heads", "batch"])),
        dropout_p=draw(st.sampled_from([0.0, 0.0, 0.2])),
    )


@st.composite
def kvcache_cases(draw):
    page = draw(st.sampled_from([0, 0, 16, 32]))
    nheads_k = draw(st.integers(1, 2))
    seqlen_new = draw(st.integers(0, 3))
    rotary = draw(st.sampled_from(["", "", "interleaved", "halves"]))
    return dict(
        batch=draw(st.integers(1, 3)),
        seqlen_q=draw(st.integers(1, 4)),
        seqlen_new=seqlen_new,
        nheads=nheads_k * draw(st.integers(1, 4)),
        nheads_k=nheads_k,
        head_dim=32,
        cache_len=64,
        page_size=page,
        rotary=rotary if seqlen_new else "",
        causal=draw(st.booleans()),
        window_size=draw(windows()),
        softcap=draw(st.sampled_from([0.0, 0.0, 5.0])),
        alibi=draw(st.sampled_from(["", "heads"])),
        batch_idx=draw(st.booleans()) if not page else False,
        leftpad=draw(st.booleans()) if not page else False,
        num_splits=draw(st.sampled_from([0, 1, 3])),
    )
