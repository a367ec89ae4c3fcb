"""Tile shapes, warps and pipeline depths for each kernel, chosen by head_dim, dtype and device.

The GPU tables were picked from sweeps on an H100 (see benchmarks/NOTES.md). Under Triton's interpreter
(``TRITON_INTERPRET=1``, the CPU test suite) tiles are small, so that short test sequences still cross many
tile boundaries and exercise every masking path.

Each table lists configurations best first; ``launch_with_fallback`` moves down the list when a config does not
fit the device (shared memory), so smaller or older GPUs still run, only slower.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, List, Sequence

import torch


@dataclass(frozen=True)
class KernelConfig:
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


# Triton reads TRITON_INTERPRET when a kernel is decorated (at import), so one read here agrees with it.
_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def set_switches(specs: Iterable[str]) -> None:
    """Set boolean switches of this module from ``NAME=0|1`` strings (the benchmark scripts' ``--set``)."""
    module = sys.modules[__name__]
    for spec in specs:
        name, _, value = spec.partition("=")
        if not name.isupper() or not hasattr(module, name) or value not in ("0", "1"):
            raise ValueError(f"expected NAME=0|1 with NAME a switch of flash_attention.ops.configs, got {spec!r}")
        setattr(module, name, value == "1")


def interpreting() -> bool:
    """True when Triton runs kernels in its interpreter (the CPU test suite)."""
    return _INTERPRET


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for host ints (``triton.cdiv`` is a constexpr function: several times slower from Python)."""
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def dot_precision(dtype: torch.dtype) -> str:
    # float32 inputs get true float32 products: tf32 would lose to PyTorch's own float32 attention.
    return "ieee" if dtype == torch.float32 else "tf32"


# Banded attention (causal, windows): every kernel walks its tiles in one loop and masks only the tiles at the
# band's edges, instead of three runs of tiles (masked, unmasked, masked), so the software pipeline fills once per
# program. Measured +7-12% on the causal backward at head_dim 128 (benchmarks/NOTES.md, 2026-11-25). A switch
# for same-process A/B measurements.
ONE_LOOP = True

# Forward: whole key/value tiles through TMA tensor descriptors (ops/forward.py, kv_descriptors) where the strides
# allow it. None = where it measured faster (forward_tma below); True/False force it on/off (A/B scripts, tests).
FWD_TMA: bool | None = None


# Launch plans (ops/launch.py) for the tl forward too: a call shaped like an earlier one, without ALiBi, bias, mask,
# dropout or packed sequences, relaunches the recorded tl kernel without Triton's argument binding (the Gluon
# kernels' calls are planned already). For the short rows the tl forward takes (head_dim 64 causal below 8K keys;
# NOTES entries 64, 69, 70). H200, bf16, off / on, median TFLOPS of five (results/diagnostics/
# h200-2026-12-03zz-timing-spread-plans{0,1}.csv): causal 1K 308 / 314, 2K 338 / 336, and the same from a CUDA
# graph, so level in kernel time; their effect on a training step's host time is not measured. Off.
TL_FORWARD_PLANS = False


def forward_tma(head_dim: int, block_d: int, local: bool) -> bool:
    """Whether the forward loads K/V tiles through TMA descriptors. Same-process A/B on the H200, bf16, 16K tokens
    (benchmarks/results/sweeps/h200-2026-12-02-fwd-tma-bf16.csv): head_dim 128 causal +6-7% (16K 489 -> 523
    TFLOPS, 2K 379 -> 403, 1K 299 -> 317 with 128x128 tiles; +5-7% with 64x64), non-causal within +-1%, head_dim 64
    -2..-6%. So: banded head_dim 128 only (other head dims up to 128 would pad the box: not measured)."""
    if FWD_TMA is not None:
        return FWD_TMA
    return head_dim == block_d == 128 and local


# Forward on Hopper: the warp-specialized Gluon kernel (ops/forward_sm90.py) where it covers the call. None = where
# it measured faster (forward_gluon below); True/False force it on/off wherever it applies (A/B scripts, tests).
FWD_GLUON: bool | None = None
# Its key rows per stage, its overlapped loop (tile j's S = Q K^T issued before tile j-1's P V) and the consumers'
# turn-taking; A/B in benchmarks/ab_gluon.py.
GLUON_BLOCK_N = 128
GLUON_OVERLAP = True
GLUON_PINGPONG = False
GLUON_D64_MIN_SEQLEN = 8192  # head_dim 64 in the one-tile form (windows, ALiBi, dropout under a mask)
GLUON_D64_PERSISTENT_MIN_SEQLEN = 1024  # head_dim 64 without a mask, in the persistent form
GLUON_D64_DROPOUT_MIN_SEQLEN = 2048  # the same with dropout (not measured below 2K since two consumers came in)
GLUON_D64_CAUSAL_MIN_SEQLEN = 2048  # head_dim 64 under a plain causal mask, in the persistent form
# Head_dim 64's persistent form with three consumers (192-row tiles) from these many keys, two below
# (forward_sm90.consumers_for; not with windows, whose rows were measured with three).
GLUON_D64_THREE_CONSUMERS_MIN_SEQLEN = 2048
GLUON_D64_CAUSAL_THREE_CONSUMERS_MIN_SEQLEN = 8192
# K/V stages of head_dim 64's two-consumer persistent form without ALiBi or dropout (the ring is otherwise capped at
# 4; 6 fit: 213 KB, no spills). H200, bf16, ab_gluon, stages 4 / 5 / 6, two fresh processes in opposite orders
# (results/sweeps/h200-2026-12-04s-d64-stages-{nc,causal}-{1,2}.csv, TFLOPS): 1K without a mask 396-401 / 403 /
# 407-410, causal 2K 356-361 / 358-359 / 359-360, causal 4K 390-391 / 391-392 / 393-394; outputs against the tl
# kernel within the 4-stage form's difference. Three consumers level (h200-2026-12-04t-d64-stages-nc3-*.csv: 2K,
# 16K, causal 8K and 16K within 1%). Prepared at 4: 6 waits for the GPU suite's ragged cases
# (tests/st/test_gpu_forward_sm90.py::test_persistent_forward_d64_six_stages), which ran out of device time.
GLUON_D64_TWO_CONSUMER_STAGES = 4


def forward_gluon(head_dim: int, seqlen_k: int, causal: bool = False, banded: bool = False,
                  dropout: bool = False) -> bool:
    """Whether a call the Gluon forward covers takes it (``banded``: a window or ALiBi). H200, bf16, the Gluon
    kernel against the tl kernel in the same process (results/sweeps/h200-2026-12-02-gluon-fwd-ab-bf16-{b,c}.csv,
    direct kernel calls): head_dim 128 ahead at every length (16K 593 vs 537 TFLOPS, 1K 512 vs 444; causal 4K 561 vs
    467); head_dim 64 in the one-tile form behind at 1K-2K (1K 358 vs 402, 2K 402 vs 432, causal 2K 324 vs 343),
    even at 4K (422 vs 426), ahead from 8K (438 vs 422, causal 421 vs 397; 16K 451 vs 440). Head_dim 64 without a
    mask in the persistent form with three consumers (results/sweeps/h200-2026-12-02-persistent-ab-bf16{,-b}.csv):
    ahead from 2K (2K 440-463 vs 414-431, 4K 467 vs 425, 16K 515 vs 432), behind at 1K (366-369 vs 383-400); under
    a causal mask (results/sweeps/h200-2026-12-03y-fwd-gluon-d64-ab-bf16.csv, tl / Gluon) causal 1K 328-329 /
    168-170, 2K 336-338 / 286-289, 4K 373-375 / 381-382. With two consumers on 128-row tiles (output through the K
    tile; results/sweeps/h200-2026-12-04{g,i}-d64-two-consumers.csv, TFLOPS two consumers / tl, bf16 then fp16):
    without a mask 1K 401-405 / 398, 394-404 / 373-375; causal 1K 271-281 / 325, 2K 357-362 / 343, 352-358 / 340,
    4K 389-390 / 378, 388 / 361. So head_dim 64 from 1K keys without a mask, from 2K under a causal mask; windows,
    ALiBi and dropout under a mask (the one-tile form) from 8K. The causal 1K row again, bf16, in three fresh
    processes each (results/sweeps/h200-2026-12-04m-d64-causal-1k-ab-{1,2,3}.csv): two consumers 279-281, tl 321-328,
    cuDNN 335-337; the full benchmark's own row (h200-2026-12-04m-d64-causal-bench-{1,2,3}.csv) read the tl kernel at
    313, 323 and 272 (the full runs' 177-194 did not recur). The tl kernel keeps that row."""
    if FWD_GLUON is not None:
        return FWD_GLUON
    if head_dim == 128:
        return True
    if banded or not forward_gluon_persistent(head_dim, causal, seqlen_k, dropout=dropout):
        return seqlen_k >= GLUON_D64_MIN_SEQLEN
    if causal:
        return seqlen_k >= GLUON_D64_CAUSAL_MIN_SEQLEN
    return seqlen_k >= (GLUON_D64_DROPOUT_MIN_SEQLEN if dropout else GLUON_D64_PERSISTENT_MIN_SEQLEN)


# Token windows and ALiBi in the Gluon forward's one-tile form (True), or left to the tl kernels (False). H200, bf16,
# B2 H16 S8K head_dim 128, slowdown against plain attention (results/h200-2026-12-02-features.csv with the tl kernels
# -> h200-2026-12-02-bands-features.csv with these): ALiBi +32% -> +23% forward, causal +46% -> +12%; a 2K window
# +28% -> +16%, causal +54% -> +16%.
GLUON_FWD_BANDS = True
# Dropout in the Gluon forward (True), its Philox draws unpacked in the accumulator's registers (ops/scores.py), or
# left to the tl forward (False). H200, bf16, B2 H16 S8K head_dim 128, p = 0.1, same process
# (results/sweeps/h200-2026-12-03d-dropout-ab-bf16.log): forward +39-40% over plain against +67% with the tl forward,
# causal +41-43% against +72%; head_dim 64 (H32) level (+70-72% both).
GLUON_FWD_DROPOUT = True
# Each key tile's Philox words drawn right after its products are issued, before the wait for S (``DROPOUT`` 2 in
# forward_sm90._attend), so the generator overlaps Q K^T as well as P V; unpacked after the softmax as before.
# H200, bf16, p = 0.1, 8K keys, off / on (results/sweeps/h200-2026-12-03zz-fwd-dropout-early-ab-bf16.csv): head_dim
# 128 465-480 / 455-459 TFLOPS, causal 439-451 / 389-393; head_dim 64 324-327 / 295. Slower: off (NOTES 68, 70).
GLUON_FWD_DROPOUT_EARLY = False
# Dropout's keep decisions made four keys per Philox word at once and applied to the 16-bit probabilities two keys
# per register (forward_sm90.keep_pairs: about 3.5 integer instructions per two keys instead of an unpacked byte, a
# compare and a select per key). None = where it measured faster (gluon_dropout_pairs below), True/False force it.
GLUON_FWD_DROPOUT_PAIRS: bool | None = None
# Each Philox round's high and low products from one 32 x 32 -> 64-bit multiply in the Gluon forward
# (forward_sm90._philox): compiled for sm_90 the two products are otherwise two instructions (IMAD.HI.U32 and IMAD),
# 4 calls x 7 rounds x 2 per thread and 128-key tile. H200, bf16, p = 0.1, 8K keys, off / on, two runs each, same
# process, outputs equal (results/sweeps/h200-2026-12-04l-philox-wide-ab.csv, TFLOPS): head_dim 128 475-476 /
# 481, causal 433-436 / 446-460; head_dim 64 316-322 / 334-336, causal 296-298 / 305-306. Faster everywhere: on.
GLUON_FWD_PHILOX_WIDE = True


def gluon_dropout_pairs(head_dim: int) -> bool:
    """Whether the Gluon forward takes dropout's pair form: at head_dim 64 only. H200, bf16, p = 0.1, 8K keys, wide
    multiplies on, pairs off / on, two runs each, same process, outputs equal
    (results/sweeps/h200-2026-12-04l-dropout-pairs-ab.csv, ms): head_dim 128 2.274-2.277 / 2.366-2.392 (5% slower),
    causal 1.248-1.261 / 1.247-1.249 (level); head_dim 64 3.300-3.304 / 3.166-3.176 (4% faster), causal 1.795-1.806 /
    1.755-1.766 (2% faster)."""
    if GLUON_FWD_DROPOUT_PAIRS is not None:
        return GLUON_FWD_DROPOUT_PAIRS
    return head_dim == 64


# ALiBi off the diagonal as a key term in the scores and a query term per row (one FMA per score instead of four
# or five operations). None = where it measured faster (gluon_alibi_split below), True/False force it on/off.
GLUON_ALIBI_SPLIT: bool | None = None


def gluon_alibi_split(head_dim: int, causal: bool) -> bool:
    """Whether the Gluon forward takes ALiBi's split form: everywhere. H200, bf16, same process, the policy's kernel
    split / exact, two runs each (results/sweeps/h200-2026-12-03c-alibi-split-ab-bf16.csv, TFLOPS): head_dim 128
    8K 562-573 / 525-534, causal 8K 530-538 / 479-485, causal 16K 566-570 / 513-518, causal 2K 431-432 / 394; head_dim
    64 8K 369-370 / 349-351, causal 385-389 / 324. (Round cc had the causal head_dim-128 rows level or behind, when the
    split form found its tile's side through a reduction over the rows and kept the exact form on the diagonal
    tile: NOTES entry 42.)"""
    if GLUON_ALIBI_SPLIT is not None:
        return GLUON_ALIBI_SPLIT
    return True


# The persistent form of the Gluon forward (one program per SM walking a list of query tiles, ops/forward_sm90.py):
# None = where it measured faster (forward_gluon_persistent below), True/False force it on/off.
FWD_GLUON_PERSISTENT: bool | None = None
# Token windows in the persistent form where it measured faster (None: gluon_persistent_bands below), everywhere
# plain calls of the same mask take it (True), or never (False); ALiBi and windows otherwise run the one-tile form.
GLUON_PERSISTENT_BANDS: bool | None = None


def gluon_persistent_bands(head_dim: int, causal: bool, alibi: bool, seqlen_k: int = 0) -> bool:
    """Whether a window or ALiBi takes the persistent form. H200, bf16, 8K keys, 16K tokens, same process, TFLOPS
    persistent / one tile (results/sweeps/h200-2026-12-03d-persistent-bands-ab-bf16.csv, two runs each): only a
    head_dim-64 window without a causal mask gains (2K each side: 486-490 / 451-454, three consumers); head_dim 128
    ALiBi 522-527 / 551-558, causal 524-527 / 517-523, causal 2K 404-413 / 424-425; 2K windows 599-604 / 642-652,
    causal 532-536 / 571-573, causal 16K with 4K 548-558 / 613-631; head_dim 64 ALiBi 367-369 / 369-372, causal
    382-385 / 384-386, causal window 376-377 / 383-391. ALiBi spills in the persistent form at head_dim 128; why
    windows lose there is not known (benchmarks/NOTES.md entry 44). With the dynamic schedule (one tile / persistent,
    results/sweeps/h200-2026-12-04e-window-persistent-dynamic-ab.csv): head_dim 128 causal with a 2K window at 8K
    547-570 / 602-623, causal 16K with 4K 592-642 / 651-668; a 2K window each side without a causal mask 643-721 /
    656-659, head_dim 64 causal with 2K 392 / 372-376. So also head_dim 128 causal windows where a causal mask takes
    the dynamic schedule (forward_gluon_dynamic), beyond GLUON_CAUSAL_ROUNDS_MAX_SEQLEN keys."""
    if GLUON_PERSISTENT_BANDS is not None:
        return GLUON_PERSISTENT_BANDS
    if alibi:
        return False
    if head_dim <= 64:
        return not causal
    return causal and seqlen_k > GLUON_CAUSAL_ROUNDS_MAX_SEQLEN


# The persistent form's output through the K half of the tile's last K/V stage and a TMA store (True), or stored
# from registers (False); only where the tile's rows fit one K tile (two consumers), and not with ALiBi or masked
# dropout (forward_sm90.out_smem: their consumers spill more so). Nsight Compute at 1K keys
# (NOTES entry 71): the register stores, 4-byte pieces over 8 rows per warp, stalled the consumers on the store
# queue for ~7.5% of their samples. H200, same process, off / on (results/sweeps/
# h200-2026-12-03z3-fwd-out-smem-ab-{bf16,fp16}.csv, TFLOPS, NOTES entry 72): bf16 head_dim 128 1K 514-521 /
# 564-568, 2K 561-576 / 592-623, 16K level, causal 1K 374-375 / 421-430, causal 2K 471-475 / 510-521; fp16 1K
# 500-505 / 549-554, causal 1K 361-362 / 410-419; head_dim 64 with ALiBi level, dropout at 8K 463-468 / 478. Head_dim
# 64 with two consumers (results/sweeps/h200-2026-12-04r-d64-out-smem-ab.csv, off / on, each twice): bf16 1K 382-384
# / 392-393, causal 2K 343-345 / 358-362, causal 4K 385-386 / 388-394; fp16 1K 369-370 / 384-397, causal 2K 337-339 /
# 348-354, causal 4K level. (Nsight Compute counts 1.5M shared-store bank conflicts on this kernel, 70% of its
# shared-store wavefronts, against cuDNN's 0.1-0.4M: results/diagnostics/h200-2026-12-04q-ncu-*; NOTES entry 93.)
GLUON_PERSISTENT_OUT_SMEM = True
# With three consumers (head_dim 64 without ALiBi or dropout: a 192-row tile, past one 128-key K tile) the third
# consumer's output through the first rows of the same stage's V tile, after every consumer's last P V (True), or
# all three from registers (False). Off: correct (tests/st/logs/h200-2026-12-04a-tests.log) but slower everywhere it
# applies (results/sweeps/h200-2026-12-04a-fwd-out-smem-v-ab.csv, bf16 TFLOPS off / on, each twice: 1K 394-399 /
# 383-385, 2K 453-469 / 433-440, 4K 470-472 / 439-452, 16K 518 / 495-497; fp16 likewise): the stage's V tile is
# held until the third consumer's store has left, so the loader waits (NOTES entries 75, 77).
GLUON_PERSISTENT_OUT_SMEM_V = False
# Head_dim 128 under a causal mask hands the persistent form's tiles out by rounds up to this many keys, and through
# the atomic counter beyond (forward_gluon_dynamic below).
GLUON_CAUSAL_ROUNDS_MAX_SEQLEN = 4096
# Its tiles handed out through an atomic counter in the list's order rather than by rounds: None = where it measured
# faster (forward_gluon_dynamic below), True/False force it on/off.
GLUON_DYNAMIC_SCHEDULE: bool | None = None


def forward_gluon_persistent(head_dim: int, causal: bool, seqlen_k: int = 0, banded: bool = False,
                             alibi: bool = False, dropout: bool = False) -> bool:
    """Whether the Gluon forward runs in its persistent form. H200, bf16, same process, against the one-tile form
    (results/sweeps/h200-2026-12-02-persistent-ab-bf16{,-b}.csv, TFLOPS persistent / one tile per program): without
    a mask ahead, head_dim 128 1K 522 / 497-503, 2K 574-578 / 559-598, 4K 603 / 592, 16K 625 / 586, head_dim 64
    (three consumers) 2K 440-463 / 394-401, 16K 515 / 446. Under a causal mask, head_dim 128, level or ahead up to
    2K keys (1K 379-380 / 373-376, 2K 474-485 / 461-465; results/sweeps/h200-2026-12-02-persistent-options-ab-bf16.csv)
    and behind from 4K (4K 536-542 / 530-579, 16K 477-481 / 620-625: tiles of unequal work leave the programs at
    different heads, whose K and V then no longer share L2; the hardware's own scheduling of one-tile programs keeps
    them together). Head_dim 64 under a causal mask (where the Gluon forward then ran, from 8K keys) takes it with
    the dynamic schedule, which keeps the programs on few heads as the hardware does: 16K 466 against 448 one-tile.
    Since the output goes through shared memory (GLUON_PERSISTENT_OUT_SMEM), head_dim 128 under a causal mask again
    (results/sweeps/h200-2026-12-04a-fwd-causal-persistent-ab.csv, one tile / persistent, each twice): bf16 4K 529-534
    / 562-577, 8K 568-580 / 573-590, 16K 601-620 / 471-486; fp16 4K 510-520 / 543-545, 8K 547-555 / 535-560, 16K
    585-595 / 459-465: by rounds, behind from 16K as before. Handed out through the atomic counter instead
    (results/sweeps/h200-2026-12-04b-causal-dynamic-ab.csv, persistent forced, by rounds / dynamic): bf16 4K 559-568 /
    543-562, 8K 580-588 / 582-585, 16K 471-473 / 625-674; fp16 4K 529-532 / 530-590, 8K 562-564 / 557, 16K 455-457 /
    602-650, ahead of one tile per program at 16K across the two rounds (a's 601-620 bf16, 585-595 fp16; not yet in
    one process: round g below). So persistent at every length, by rounds up to 4K keys and dynamic beyond
    (forward_gluon_dynamic). In one process (results/sweeps/h200-2026-12-04g-causal-counter-ab.csv, one tile /
    dynamic, each twice): bf16 8K 578-595 / 594-597, 16K 619-626 / 623-625; fp16 8K 557-563 / 576, 16K 600-605 /
    608-622: the counter level or ahead. Dropout (p = 0.1) under a causal mask, whose persistent consumers store
    their output from registers (forward_sm90.out_smem), is the exception (results/sweeps/
    h200-2026-12-04{g-causal-counter,i-dropout-persistent}-ab.csv, one tile / persistent): bf16 head_dim 128 2K
    350-354 / 340, 4K 406-408 / 382-383, 8K 440-444 / 396-402, 16K 468-473 / 426-440; fp16 likewise; head_dim 64
    8K 295-297 / 292-294, 16K 317-320 / 305-307; without a mask the persistent form stays ahead (head_dim 128 8K
    455-463 / 463-469, head_dim 64 315-316 / 321-322). So dropout under a causal mask takes one tile per program.
    With a window too (results/sweeps/h200-2026-12-04o-dropout-window-persistent-ab.csv, bf16, 8K keys, p = 0.1, ms
    one tile / persistent, each twice): head_dim 128 causal 2K window 0.584-0.610 / 0.619-0.642, head_dim 64 2K each
    side 1.560-1.562 / 1.577-1.587. So dropout under any mask takes one tile per program."""
    if FWD_GLUON_PERSISTENT is not None:
        return FWD_GLUON_PERSISTENT
    if dropout and (causal or banded):
        return False
    if banded and not gluon_persistent_bands(head_dim, causal, alibi, seqlen_k):
        return False
    return True


def forward_gluon_dynamic(head_dim: int, causal: bool, seqlen_k: int = 0) -> bool:
    """Whether the persistent form takes its tiles from the atomic counter. H200, bf16, same process
    (results/sweeps/h200-2026-12-02-persistent-options-ab-bf16.csv, TFLOPS dynamic / by rounds): head_dim 64 (three
    consumers, 192-row tiles whose count rarely divides evenly among the programs) 2K 469 / 440, 16K 513 / 513,
    causal 16K 466 / 402; head_dim 128 a little behind (1K 532 / 540, 16K 627 / 633; causal 2K 463 / 485) except
    under a causal mask beyond GLUON_CAUSAL_ROUNDS_MAX_SEQLEN keys (forward_gluon_persistent's numbers). Head_dim 64
    under a causal mask up to those keys (two consumers since rounds g and i) a little ahead by rounds
    (results/sweeps/h200-2026-12-04g-d64-two-consumers.csv, by rounds / dynamic): bf16 2K 362 / 357, 4K 390 / 389;
    fp16 2K 358 / 352, 4K 388 / 381. So by rounds under a causal mask up to GLUON_CAUSAL_ROUNDS_MAX_SEQLEN keys,
    dynamic beyond; head_dim 64 without a mask dynamic everywhere."""
    if GLUON_DYNAMIC_SCHEDULE is not None:
        return GLUON_DYNAMIC_SCHEDULE
    if causal:
        return seqlen_k > GLUON_CAUSAL_ROUNDS_MAX_SEQLEN
    return head_dim <= 64


# Backward on Hopper: the warp-specialized Gluon dK/dV kernel (ops/backward_sm90.py) where it covers the call, with
# dQ fused into it or from the split dQ kernel. None = the measured choice (backward_gluon_dq below); True/False
# force the kernel / the fused dQ on or off wherever they apply (A/B scripts, tests).
BWD_GLUON: bool | None = None
BWD_GLUON_DQ: bool | None = None
GLUON_BWD_MIN_SEQLEN = 1024
GLUON_DQ_MIN_SEQLEN = 2048
GLUON_DQ_MIN_SEQLEN_128 = 1024
GLUON_DQ_MIN_CAUSAL_SEQLEN_128 = 4096
# Token windows and ALiBi in the Gluon backward (True), or left to the tl kernels (False). H200, bf16, same process,
# ``attention_backward`` on / off, two runs each (results/sweeps/h200-2026-12-02-bwd-bands-ab-bf16.csv, TFLOPS of
# the visible pairs): 2K window at 8K keys, head_dim 128 433-434 / 403-417, causal 430-437 / 371-404; head_dim 64
# causal 395-396 / 337; 4K window at 16K keys causal 475-476 / 410-446. GPU tests: 22 passed
# (tests/st/logs/h200-2026-12-02-bwd-bands-tests.log).
GLUON_BWD_BANDS = True
# Dropout in the Gluon backward (``DROPOUT`` in ops/backward_sm90.py: each tile's Philox words drawn query-major
# during the previous tile's last products, read back transposed from shared memory). H200, bf16, B2 S8K, slowdown
# of the backward against plain in the same process (results/sweeps/h200-2026-12-03{g,i}-dropout-bwd-ab-bf16.csv):
# head_dim 128 +24-25% (tl kernels +90%), causal +36% with dQ split (+44-45% fused, tl +79%); head_dim 64 +39-41%,
# causal +42% (tl +108% / +115%).
GLUON_BWD_DROPOUT = True
# The Gluon backward's Philox rounds with each round's high and low products from one wide multiply, as the forward's
# (GLUON_FWD_PHILOX_WIDE); the same words (gradients bit-equal, tests/st/logs/h200-2026-12-04p-tests.log). Compiled
# for sm_90 the head_dim-128 dK/dV kernel drops 3040 -> 2936 SASS instructions, spills unchanged, yet it measured
# slower where it matters: H200, bf16, B2 S8K, p = 0.1, ms off / on, each twice, same process
# (results/sweeps/h200-2026-12-04p-bwd-philox-wide-ab.csv): head_dim 128 6.12-6.16 / 6.30-6.31, causal 3.27-3.32 /
# 3.27-3.33; head_dim 64 7.95-8.02 / 8.05-8.06, causal 4.21-4.22 / 4.15-4.17. Off (NOTES entry 92).
GLUON_BWD_PHILOX_WIDE = False


# The Gluon backward's causal and window masks as one compare and one select per score in PTX (``_keep_where_le``)
# instead of ``gl.where``, from which LLVM packs the predicates into bit masks and unpacks them per select (32
# ``selp.b16`` and 176 more SASS instructions per masked tile loop; the head_dim-128 window kernel spilled 20 values,
# now 2). H200, bf16, same process, off / on, ms (results/sweeps/h200-2026-12-03l-ptx-masks-ab-bf16.csv): causal 1K
# 0.601-0.610 / 0.586-0.601, 2K 0.992-1.005 / 0.989-0.992, head_dim 64 causal 2K 1.086-1.094 / 1.081-1.090, 2K
# window at 8K 1.581-1.615 / 1.564-1.625, causal 1.604-1.813 / 1.573-1.596: level to 2% faster.
GLUON_BWD_PTX_MASKS = True
# Each query tile's lse2 and delta loaded by the Gluon backward's producer warps and handed to the consumers in the
# (Q, dO) stage, instead of loaded from global memory by every consumer thread at the tile's start (where Nsight
# Compute put half of the kernel's stall samples). None = the measured choice (backward_staged_rows below);
# True/False force it.
GLUON_BWD_STAGED_ROWS: bool | None = None


def backward_staged_rows(head_dim: int, causal: bool, fuse_dq: bool, dropout: bool = False,
                         mask_every_tile: bool = False) -> bool:
    """Whether the Gluon backward's producer stages lse2 and delta (``STAGED_ROWS``). H200, bf16, B2 S8K, same
    process, off / on (results/sweeps/h200-2026-12-03o-staged-rows-ab-bf16.csv, TFLOPS): head_dim 128 493-494 /
    541-544 (cuDNN 525), causal 2K (dQ split) 355-359 / 365-367; head_dim 64 427-437 / 429-436, causal 408-413 /
    404-410. With features (results/sweeps/h200-2026-12-03p-staged-features-ab-bf16.csv, the policy's dQ mode):
    dropout 390-392 / 439-440, causal 313-314 / 326-336, head_dim 64 301-304 / 331; ALiBi 451-455 / 459-466; a 2K
    window level (431-433 / 432-433, causal 377-428 / 429-435). But head_dim 128 causal with dQ fused, 8K 437-442 /
    416-418, 16K 470-472 / 444-447: that kernel is at its register limit, and with the vectors from shared memory
    the compiler spills 16 values around the products of every unmasked tile (17 stores per tile, 3 before), so it
    keeps the global loads, unless its tiles all take the mask in one loop (``mask_every_tile``), which compiles
    without spills staged."""
    if GLUON_BWD_STAGED_ROWS is not None:
        return GLUON_BWD_STAGED_ROWS
    return mask_every_tile or not (head_dim > 64 and causal and fuse_dq and not dropout)


# With lse2/delta staged, the producer stages the accumulators' starting values themselves (-lse2 / qk_scale and
# -delta, once per stage) and the consumers broadcast them without arithmetic (NOTES entry 58). None = the measured
# choice (backward_prescaled_rows below); True/False force it wherever lse2/delta are staged.
GLUON_BWD_PRESCALED_ROWS: bool | None = None


def backward_prescaled_rows(head_dim: int, masked: bool) -> bool:
    """Whether the staged starting values come prescaled (``PRESCALED``). Compiled for sm_90 with the conversion
    kernel's unscaled dQ shares, 487 -> 416 instructions per tile at head_dim 64 and 504 -> 433 at 128; but the
    loop was not issue-bound there. H200, bf16, B2 S8K, same process, off / on, TFLOPS
    (results/sweeps/h200-2026-12-03u-prescaled-ab-bf16.csv): head_dim 64 444-444 / 452-458, causal 425-434 /
    424-427; head_dim 128 546 / 543-544, causal 508-511 / 514. On where it gained in both repetitions."""
    if GLUON_BWD_PRESCALED_ROWS is not None:
        return GLUON_BWD_PRESCALED_ROWS
    return masked if head_dim > 64 else not masked


# The Gluon backward's causal/window tiles walked in one loop that masks every tile (``MASK_EVERY_TILE``), instead
# of the masked edge tiles in a loop of their own before the unmasked ones. None = the policy below; True/False force
# it wherever a mask applies.
GLUON_BWD_MASK_EVERY_TILE: bool | None = None


# In the one-loop form, the mask only on the tiles the band cuts, chosen per tile by a uniform branch
# (``backward_sm90._band_hides``) instead of on every tile: the unmasked tiles skip the compare and select per score
# (compiled for sm_90: no spills, 97 of ~568 instructions skipped per unmasked causal tile; NOTES entries 62-63).
# H200, bf16, head_dim 128, dQ fused, same process, off / on, TFLOPS
# (results/sweeps/h200-2026-12-03x-mask-branch-ab-bf16.csv): causal 4K 463-467 / 470-471, 16K 539-547 / 552; a 2K
# window at 8K 464-502 / 521-522, causal 499-502 / 522-528. GPU tests: 24 passed forced on, and the window/ALiBi,
# dropout and default-path tests as the default (tests/st/logs/h200-2026-12-03{x,y,z}-tests.log).
GLUON_BWD_MASK_BRANCH = True


def backward_mask_every_tile(head_dim: int, fuse_dq: bool) -> bool:
    """Whether a masked Gluon backward walks all its query tiles in one masked loop (the mask folded into S^T's
    starting value) rather than its masked edge tiles in a loop of their own. Compiled for sm_90 (bf16, 8K keys,
    causal, dQ fused, lse2/delta staged), head_dim 128: the two-loop form spills 55 values (17 stores per unmasked
    tile), the one-loop form none. H200, bf16, same process, off / on, TFLOPS
    (results/sweeps/h200-2026-12-03r-mask-every-tile-ab-bf16.csv, the policy's dQ mode then): causal 4K 390-393 /
    428-438, 8K 422-442 / 482-485, 16K 468-469 / 521-522 (cuDNN 512), 2K (dQ split) 353-354 / 352-362; a 2K window
    at 8K with dQ split 436-443 / 419-423. With dQ fused it is what lets the masked head_dim-128 kernels fuse dQ
    at all (``backward_gluon_dq``): so on there; with dQ split (below 2K keys) it stays off. Head_dim 64 compiles
    without spills in both forms, and the one loop lost there: every tile masked -5% (results/sweeps/
    h200-2026-12-03u-d64-mask-every-tile-ab-bf16.csv), and with the per-tile branch two loops / one loop, TFLOPS
    (results/sweeps/h200-2026-12-03y-d64-mask-branch-ab-bf16.csv): causal 2K 344 / 337-341, 8K 420-427 / 411-415,
    16K 444-448 / 443-444; a 2K causal window at 8K 422 / 428-437. So off at head_dim 64."""
    if GLUON_BWD_MASK_EVERY_TILE is not None:
        return GLUON_BWD_MASK_EVERY_TILE
    return head_dim > 64 and fuse_dq


def backward_gluon(head_dim: int, causal: bool, seqlen_k: int) -> bool:
    """Whether a call the Gluon backward covers takes it. H200, bf16, same process, ``attention_backward`` with the
    kernel on and off (results/sweeps/h200-2026-12-02-gluon-bwd-1k-ab-bf16.csv, TFLOPS Gluon / tl, two runs each):
    S=1K head_dim 128 373 / 360-364, causal 279-281 / 260-264, head_dim 64 causal 239-240 / 223-229, but head_dim 64
    without a mask 327-328 / 340-341; from 2K every row favours it (head_dim 64 2K 381-385 / 371-383,
    results/sweeps/h200-2026-12-02-gluon-bwd-dq-ab-bf16.csv). Since the staged rows, prescaled starting values and
    the conversion kernel, head_dim 64 without a mask leads at 1K too (results/sweeps/
    h200-2026-12-03x-gluon-bwd-1k-ab-bf16.csv, Gluon / tl: 355-358 / 345-348, cuDNN 361; causal 266-268 / 227-230,
    head_dim 128 causal 323-327 / 262-264), so every head_dim takes it from 1K keys. Below 1K it is not measured
    (the call is host-bound there), so the tl kernels keep it."""
    if BWD_GLUON is not None:
        return BWD_GLUON
    return seqlen_k >= GLUON_BWD_MIN_SEQLEN


def backward_gluon_dq(head_dim: int, causal: bool, seqlen_k: int, banded: bool = False,
                      dropout: bool = False, alibi_only: bool = False) -> bool:
    """Whether the Gluon backward adds dQ itself (TMA reductions into a float32 buffer, 5 products per tile pair)
    rather than leaving it to the split dQ kernel (7 products). H200, same process
    (results/sweeps/h200-2026-12-02-gluon-bwd-dq-ab-*.csv, TFLOPS fused / split / tl): bf16 head_dim 128 4K
    484-494 / 443-447 / 427-429, causal 16K 470-476 / 442 / 423, causal 8K 437-440 / 417-427 / 391-402, but causal
    2K 337 / 356-366 / 327-329; head_dim 64 2K 381-385 / 353-357 / 371-383, causal 2K 315 / 303-305 / 278-279;
    fp16 within a few percent of bf16. At 1K keys (results/sweeps/h200-2026-12-02-gluon-dq-short-ab-bf16.csv, fused /
    split) head_dim 128 372-373 / 372-379, causal 256-258 / 267-268, head_dim 64 causal 238 / 248-249, as the float32
    buffer's zeroing and conversion weighed against a short backward; at 2K fused still led (head_dim 128 436-437 /
    414-416, head_dim 64 381-386 / 353, causal 314 / 295). Since the conversion kernel, the staged rows and the
    one-loop masked form, head_dim 128 fuses from 1K and every masked head_dim-128 kernel fuses (2026-12-03r/u
    below); head_dim 64 keeps 2K."""
    if BWD_GLUON_DQ is not None:
        return BWD_GLUON_DQ
    if seqlen_k < (GLUON_DQ_MIN_SEQLEN if head_dim <= 64 else GLUON_DQ_MIN_SEQLEN_128):
        # At 1K keys (results/sweeps/h200-2026-12-03u-dq-modes-1k-ab-bf16.csv, split / fused, TFLOPS) head_dim 128
        # fuses since the conversion kernel and the one-loop masked form (390-393 / 439-452, causal 296-299 /
        # 322-324; before them 372-379 / 372-373 and 267-268 / 256-258), head_dim 64 causal not (270-279 / 268-270).
        return False
    if head_dim > 64 and (causal or banded) and backward_mask_every_tile(head_dim, True):
        # Masked head_dim-128 kernels with every tile in one masked loop compile without spills fused, staged
        # (backward_mask_every_tile). H200, bf16, same process, split / fused, TFLOPS (results/sweeps/
        # h200-2026-12-03r-mask-every-tile-dq-modes-ab-bf16.csv): causal 2K 346-350 / 378-381 (cuDNN 368), 4K
        # 387-391 / 445-448 (cuDNN 443); a 2K window at 8K 354-425 / 477-478, causal 417-426 / 477; causal ALiBi
        # 411 / 496-502; causal dropout 328-341 / 387-390.
        return True
    if banded and head_dim > 64 and not (alibi_only and not causal and backward_staged_rows(head_dim, False, True)):
        # Without the one-loop form (forced off), windows and ALiBi at head_dim 128 spill fused (windows 112 loads /
        # 94 stores compiled for sm_90, ALiBi 35-59; the split kernel 0-2), so dQ comes from the split dQ kernel.
        # ALiBi alone without a causal mask is the exception since lse2/delta are staged (backward_staged_rows): the
        # fused kernel spills 1 value then, and measured 535-537 TFLOPS against 457-459 split (bf16, B2 S8K, same
        # process, results/sweeps/h200-2026-12-03p-staged-dq-modes-ab-bf16.csv).
        return False
    if dropout and causal and head_dim > 64:
        # Dropout at head_dim 128 under a causal mask in the two-loop form: the fused kernel spilled (240 loads,
        # 179 stores for sm_90; 73 / 69 with lse2/delta staged); staged, the two measured level (331 / 327-330
        # TFLOPS, results/sweeps/h200-2026-12-03p-staged-dq-modes-ab-bf16.csv), so split.
        return False
    return not (causal and head_dim == 128 and seqlen_k < GLUON_DQ_MIN_CAUSAL_SEQLEN_128)


# The Gluon backward's float32 dQ staging tile in a 32-byte swizzle instead of 128 (backward_sm90.dq_staging_layout):
# conflict-free stores from the accumulator, 8 TMA reductions per tile instead of 2. Compiled for sm_90: the same
# 16 stores per tile from one base register (4 before). H200, bf16, B2 S8K, same process, off / on, TFLOPS
# (results/sweeps/h200-2026-12-03u-dq-narrow-swizzle-ab-bf16.csv): head_dim 128 546 / 499-500, causal 504-510 /
# 460-472, head_dim 64 451-452 / 443-446: four times the reductions cost more than the conflicts, so off (entry 56).
GLUON_BWD_DQ_NARROW_SWIZZLE = False

# dQ from the float32 accumulator of the fused/atomic backward through ops/dq_convert.py's kernel (True) or
# ``Tensor.copy_`` (False); None = the policy below.
DQ_CONVERT_KERNEL: bool | None = None


def dq_convert_kernel(device_type: str) -> bool:
    """Whether the float32 dQ buffer goes to dQ through the conversion kernel. Nsight Compute timed PyTorch's
    transposing copy at 96 us for 16K tokens at hidden 2048 on the H200 (~2 TB/s against a 4.25 TB/s copy;
    results/diagnostics/h200-2026-12-03o-ncu-ours-staged-bwd-d128-8k-summary.txt), 2% of an S=8K backward and ~8%
    of an S=2K one (where dQ comes from the split kernel there is no buffer); the kernel reads and writes whole
    rows. It also applies the softmax scale, so the Gluon backward adds its dQ shares unscaled: compiled for sm_90,
    504 -> 472 instructions per tile at head_dim 128, 487 -> 454 at 64 (no multiply per share element). H200, bf16,
    same process, off / on, TFLOPS (results/sweeps/h200-2026-12-03r-dq-convert-ab-bf16.csv): head_dim 128 2K
    472 / 486-489, 8K 493-529 / 537, causal 4K 391-392 / 402-407; head_dim 64 2K 389-395 / 402-405, causal 2K
    325-329 / 339. On wherever Triton can launch it (a GPU, or the interpreter when forced)."""
    if DQ_CONVERT_KERNEL is not None:
        return DQ_CONVERT_KERNEL and (device_type == "cuda" or interpreting())
    return device_type == "cuda"


# Backward: Q/dO tiles of the dK/dV programs and K/V tiles of the dQ programs through TMA descriptors
# (ops/backward.py). None = where it measured faster (backward_tma below); True/False force it on/off.
BWD_TMA: bool | None = None


def backward_tma(head_dim: int, block_d: int, local: bool) -> bool:
    """Whether the backward kernels load their streamed tiles through TMA descriptors. Same-process A/B on the
    H200, bf16, 16K tokens (benchmarks/results/sweeps/h200-2026-12-02-bwd-tma-bf16.csv): head_dim 128 +1-2% at
    S=16K (causal and not, both dQ modes; within noise at S=1K), head_dim 64 -2..-5%. So: head_dim 128 only."""
    if BWD_TMA is not None:
        return BWD_TMA
    return head_dim == block_d == 128


_INTERP = [KernelConfig(32, 16, 4, 1)]


def forward_configs(block_d: int, dtype: torch.dtype, local: bool, device: torch.device,
                    seqlen_q: int = 0) -> List[KernelConfig]:
    """``block_m`` query rows per program; ``block_n`` key rows per step. ``seqlen_q``: the (longest) sequence."""
    if interpreting() or device.type != "cuda":
        return _INTERP
    if dtype == torch.float32:
        return [KernelConfig(64, 32, 4, 2), KernelConfig(32, 32, 4, 1)]
    # Short sequences: 64x64 tiles with 4 warps (two programs per SM) beat the long-sequence tiles
    # (2026-11-25 sweep, results/sweeps/h100-2026-11-25-fwd-short.csv): head_dim 128 at 1K 425 vs 398 dense,
    # 308 vs 273 causal, causal 2K 372 vs 366; head_dim 64 causal 1K 293 vs 277. Equal or worse from 4K up.
    short = [KernelConfig(64, 64, 4, 3)]
    if block_d <= 64:
        # H100 sweep, bf16 S=8K: (128, 64, 4 warps, 3 stages) 453 TFLOPS dense / 419 causal.
        tuned = [KernelConfig(128, 64, 4, 3), KernelConfig(64, 64, 4, 2), KernelConfig(64, 32, 4, 1)]
        return short + tuned if local and 0 < seqlen_q <= 1024 else tuned
    if block_d <= 128:
        # (128, 128, 8, 3): 508 dense / 484 causal; 4 warps spill the 128x128 accumulator (~230-400).
        tuned = [KernelConfig(128, 128, 8, 3), KernelConfig(128, 64, 8, 3), KernelConfig(64, 64, 4, 2),
                 KernelConfig(64, 32, 4, 1)]
        if not local:
            # 256 query rows per program (128 per warp group) halve the K/V tile traffic per row. H200, bf16, same
            # process (results/sweeps/h200-2026-12-02-fwd-tiles-bf16{,-b}.csv): vs (128, 128, 8, 3) 1K 450 vs 406,
            # 2K 491 vs 467, 8K 522 vs 488, 16K 524 vs 508 TFLOPS (at 1K the earlier 64x64 short tiles gave 405);
            # with a band it lost (16K causal 475 vs 527). Up to 512 rows (not measured) the short tiles stay.
            return (short if 0 < seqlen_q <= 512 else [KernelConfig(256, 64, 8, 3)]) + tuned
        return short + tuned if 0 < seqlen_q <= 2048 else tuned
    return [KernelConfig(128, 64, 8, 2), KernelConfig(64, 64, 4, 2), KernelConfig(64, 32, 4, 1),
            KernelConfig(32, 32, 4, 1)]


def dkdv_configs(block_d: int, dtype: torch.dtype, local: bool, device: torch.device) -> List[KernelConfig]:
    """``block_n`` key rows per program; ``block_m`` query rows per step."""
    if interpreting() or device.type != "cuda":
        return [KernelConfig(16, 32, 4, 1)]
    if dtype == torch.float32:
        return [KernelConfig(32, 64, 4, 1), KernelConfig(16, 32, 4, 1)]
    if block_d <= 64:
        if local:
            # 2026-11-25 sweep, causal S=8K: 64x128 with 8 warps 291-312 TFLOPS vs 238 with 4 warps.
            return [KernelConfig(64, 128, 8, 3), KernelConfig(64, 64, 4, 3), KernelConfig(16, 32, 4, 1)]
        return [KernelConfig(64, 64, 4, 3), KernelConfig(32, 64, 4, 2), KernelConfig(16, 32, 4, 1)]
    if block_d <= 128:
        return [KernelConfig(64, 128, 8, 3), KernelConfig(64, 128, 8, 2), KernelConfig(32, 64, 4, 2),
                KernelConfig(16, 32, 4, 1)]
    return [KernelConfig(32, 64, 8, 2), KernelConfig(32, 64, 4, 1), KernelConfig(16, 32, 4, 1)]


def dkdv_atomic_configs(block_d: int, dtype: torch.dtype, local: bool, device: torch.device) -> List[KernelConfig]:
    """The dK/dV kernel when it also adds dQ (one more product and a float32 tile reduction per step): in the
    2026-11-25 sweep the 8-warp tiles of the causal lists were its best (or within 5%) for masked and unmasked
    attention alike."""
    return dkdv_configs(block_d, dtype, True, device)


def dq_configs(block_d: int, dtype: torch.dtype, local: bool, device: torch.device) -> List[KernelConfig]:
    """``block_m`` query rows per program; ``block_n`` key rows per step."""
    if interpreting() or device.type != "cuda":
        return _INTERP
    if dtype == torch.float32:
        return [KernelConfig(64, 32, 4, 1), KernelConfig(32, 16, 4, 1)]
    if block_d <= 64:
        if local:
            # 2026-11-25 sweep, causal: 64x64 with 4 warps best at S=8K (312) and S=2K (260).
            return [KernelConfig(64, 64, 4, 3), KernelConfig(64, 128, 4, 3), KernelConfig(32, 16, 4, 1)]
        return [KernelConfig(128, 64, 8, 3), KernelConfig(64, 64, 4, 3), KernelConfig(32, 16, 4, 1)]
    if block_d <= 128:
        return [KernelConfig(128, 64, 8, 3), KernelConfig(128, 64, 8, 2), KernelConfig(64, 32, 4, 2),
                KernelConfig(32, 16, 4, 1)]
    return [KernelConfig(64, 64, 8, 2), KernelConfig(64, 32, 4, 1), KernelConfig(32, 16, 4, 1)]


_chosen: dict = {}


def launch_with_fallback(name: str, launch: Callable[[KernelConfig], None], configs: Sequence[KernelConfig]) -> None:
    """Launch with the first config that fits the device; remember the choice per config list."""
    from triton.runtime.errors import OutOfResources

    key = (name, tuple(configs))
    start = _chosen.get(key, 0)
    last_err: Exception | None = None
    for i in range(start, len(configs)):
        try:
            launch(configs[i])
            _chosen[key] = i
            return
        except OutOfResources as err:  # shared memory or registers: try a smaller tile
            last_err = err
    raise RuntimeError(f"flash_attention: no {name} kernel configuration fits this device") from last_err


@dataclass(frozen=True)
class TilingStrategy:
    """A named tiling for the seed layer's ``tiling_stgy_name``.

    ``block`` is the block size of the local block-sparse window (``prev_block_num``/``next_block_num`` count
    blocks of this many tokens). ``forward``/``dkdv``/``dq`` override the tuned per-head_dim kernel configs
    (None keeps them).
    """

    name: str
    block: int
    description: str
    forward: KernelConfig | None = None
    dkdv: KernelConfig | None = None
    dq: KernelConfig | None = None


TILING_STRATEGIES = {
    s.name: s
    for s in (
        TilingStrategy("sparse", 128, "the seed's default: 128-token blocks, kernels tuned per head_dim (H100 sweep)"),
        TilingStrategy("sparse64", 64, "64-token blocks for a finer block-sparse window; tuned kernels"),
        TilingStrategy("small", 64, "64-token blocks and 64x64 tiles, 4 warps, 2 stages: least shared memory, "
                       "for smaller GPUs or when many attention calls share an SM",
                       KernelConfig(64, 64, 4, 2), KernelConfig(64, 64, 4, 2), KernelConfig(64, 64, 4, 2)),
        TilingStrategy("large", 128, "128-token blocks and the largest tiles (128x128 forward, 8 warps, "
                       "3 stages): best throughput on Hopper for head_dim <= 128",
                       KernelConfig(128, 128, 8, 3), KernelConfig(64, 128, 8, 3), KernelConfig(128, 64, 8, 3)),
    )
}
