"""The Gluon backward kernel (ops/backward_sm90.py) without a GPU: it never takes a CPU call, the default choice of
fused or split dQ follows the measurements, its shared memory plan fits, and it compiles for sm_90 in both modes
with no register spills where the benchmarks run it. Its numerics are for the GPU suite
(tests/st/test_gpu_backward_sm90.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

from flash_attention.features import Features
from flash_attention.ops import backward_sm90, configs

ROOT = Path(__file__).resolve().parents[2]
SMEM_LIMIT = 227 * 1024


def test_never_on_cpu():
    q = torch.randn(1, 256, 2, 128, dtype=torch.bfloat16)
    assert configs.BWD_GLUON is None  # auto: wherever it applies
    assert not backward_sm90.supported(q, q, q, q, q, q, Features(0.1))
    with mock.patch.object(configs, "BWD_GLUON", True):
        assert not backward_sm90.supported(q, q, q, q, q, q, Features(0.1))


def test_backward_gluon_choice():
    # From 1K keys at every head_dim (below, the call is host-bound and the tl kernels keep it); the switch overrides.
    assert configs.backward_gluon(128, False, 1024) and configs.backward_gluon(128, True, 1024)
    assert configs.backward_gluon(64, True, 1024) and not configs.backward_gluon(128, False, 512)
    assert configs.backward_gluon(64, False, 1024) and not configs.backward_gluon(64, False, 1000)
    with mock.patch.object(configs, "BWD_GLUON", True):
        assert configs.backward_gluon(64, False, 64)
    with mock.patch.object(configs, "BWD_GLUON", False):
        assert not configs.backward_gluon(128, True, 65536)


def test_fused_dq_choice():
    # Split dQ only where it measured faster: below 2K keys at head_dim 64, below 1K at 128; at head_dim 128 causal
    # below 4K only without the one-loop masked form.
    assert configs.backward_gluon_dq(128, False, 1024) and not configs.backward_gluon_dq(128, False, 512)
    assert configs.backward_gluon_dq(128, True, 4096) and configs.backward_gluon_dq(128, True, 1024)
    with mock.patch.object(configs, "GLUON_BWD_MASK_EVERY_TILE", False):
        assert not configs.backward_gluon_dq(128, True, 2048) and configs.backward_gluon_dq(128, True, 4096)
    with mock.patch.object(configs, "GLUON_DQ_MIN_SEQLEN_128", 2048):
        assert not configs.backward_gluon_dq(128, False, 1024) and configs.backward_gluon_dq(128, False, 2048)
    assert configs.backward_gluon_dq(64, True, 2048) and not configs.backward_gluon_dq(64, True, 1024)
    with mock.patch.object(configs, "BWD_GLUON_DQ", False):
        assert not configs.backward_gluon_dq(128, False, 8192)


@pytest.mark.parametrize("staged_rows", [False, True])
@pytest.mark.parametrize("fuse_dq", [False, True])
@pytest.mark.parametrize("head_dim,stages", [(128, 4), (64, 4)])
def test_stages_fit_shared_memory(head_dim, stages, fuse_dq, staged_rows):
    n, m = backward_sm90.BLOCK_N.value, backward_sm90.BLOCK_M.value
    got = backward_sm90.stages_for(head_dim, fuse_dq, staged_rows=staged_rows)
    used = (2 * n + 2 * got * m) * head_dim * 2 + (got * 2 * m * 4 if staged_rows else 0)  # (lse2, delta) per stage
    if fuse_dq:
        used += 2 * n * m * 2 + 2 * m * backward_sm90.dq_cols(head_dim) * 4  # dS^T slots, dQ staging tiles
    assert used <= SMEM_LIMIT - 1024
    assert got == (3 if fuse_dq and head_dim == 128 else stages)


def _compile(kernel: str, head_dim: int, causal: int, seqlen: int, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # Gluon compiles outside it only
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "inspect_sm90.py"), "--kernel", kernel,
                          "--seqlen", str(seqlen), "--d", str(head_dim), "--causal", str(causal), "--json", *extra],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["shared"] <= SMEM_LIMIT and r["wgmma"] > 0 and {"24", "240"} <= set(r["setmaxnreg"]), r
    return r


@pytest.mark.parametrize("kernel", ["gluon-dkdv", "gluon-dkdv-dq"])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("causal", [0, 1])
def test_compiles_for_sm90(head_dim, causal, kernel):
    """At the benchmarks' lengths (multiples of 16): no spills, except in the fused head_dim-128 causal kernel,
    which reloads a few loop-invariant shared-memory addresses per tile (benchmarks/NOTES.md)."""
    r = _compile(kernel, head_dim, causal, 8192)
    if not (kernel == "gluon-dkdv-dq" and head_dim == 128 and causal):
        assert r["ldl"] <= 1 and r["stl"] <= 1, r


@pytest.mark.parametrize("causal", [0, 1])
def test_compiles_for_ragged_lengths(causal):
    # A length with no 16-divisibility hint compiles too (Triton specializes integer arguments on it).
    _compile("gluon-dkdv-dq", 128, causal, 1000)


def test_windows_and_alibi_policy():
    """Windows and ALiBi in the Gluon backward (``configs.GLUON_BWD_BANDS``, on since measured): dQ from the split
    kernel at head_dim 128, where the fused kernel spills; switched off, the tl kernels take them."""
    slopes = torch.rand(4)
    f = Features(0.1, True, window_size=(64, 0), alibi_slopes=slopes)
    assert backward_sm90.covers_backward(torch.bfloat16, 128, f)
    assert not backward_sm90.covers_backward(torch.bfloat16, 128, Features(0.1, alibi_slopes=slopes, softcap=2.0))
    with mock.patch.object(configs, "GLUON_BWD_BANDS", False):
        assert not backward_sm90.covers_backward(torch.bfloat16, 128, f)
    assert backward_sm90.covers_backward(torch.bfloat16, 128, Features(0.1, True))
    # Windows and ALiBi fuse dQ from 2K keys, the head_dim-128 kernels in the one-loop masked form.
    assert configs.backward_gluon_dq(128, True, 8192, banded=True) and configs.backward_gluon_dq(128, True, 8192)
    assert configs.backward_gluon_dq(64, True, 8192, banded=True)
    assert configs.backward_gluon_dq(128, False, 8192, banded=True, alibi_only=True)
    assert configs.backward_gluon_dq(128, True, 8192, banded=True, alibi_only=True)
    assert configs.backward_gluon_dq(128, False, 1024, banded=True, alibi_only=True)
    assert not configs.backward_gluon_dq(64, False, 1024, banded=True)
    with mock.patch.object(configs, "GLUON_BWD_MASK_EVERY_TILE", False):
        # The two-loop form spills fused at head_dim 128, except ALiBi alone without a causal mask, staged.
        assert not configs.backward_gluon_dq(128, True, 8192, banded=True)
        assert configs.backward_gluon_dq(128, False, 8192, banded=True, alibi_only=True)
        assert not configs.backward_gluon_dq(128, True, 8192, banded=True, alibi_only=True)
        with mock.patch.object(configs, "GLUON_BWD_STAGED_ROWS", False):
            assert not configs.backward_gluon_dq(128, False, 8192, banded=True, alibi_only=True)


def test_staged_rows_policy():
    """lse2/delta staged by the producer everywhere but the head_dim-128 causal kernel with dQ fused (no dropout),
    where the staged form spills around every tile's products; the switch forces it either way."""
    assert configs.backward_staged_rows(128, False, True) and configs.backward_staged_rows(128, True, False)
    assert configs.backward_staged_rows(64, True, True) and configs.backward_staged_rows(128, True, True, dropout=True)
    assert not configs.backward_staged_rows(128, True, True)
    for forced in (False, True):
        with mock.patch.object(configs, "GLUON_BWD_STAGED_ROWS", forced):
            assert configs.backward_staged_rows(128, True, True) is forced
            assert configs.backward_staged_rows(64, False, False) is forced


def test_prescaled_rows_policy():
    """Prescaled starting values where they gained (head_dim 128 masked, head_dim 64 without a mask); the switch
    forces them either way."""
    assert configs.backward_prescaled_rows(128, True) and not configs.backward_prescaled_rows(128, False)
    assert configs.backward_prescaled_rows(64, False) and not configs.backward_prescaled_rows(64, True)
    for forced in (False, True):
        with mock.patch.object(configs, "GLUON_BWD_PRESCALED_ROWS", forced):
            assert configs.backward_prescaled_rows(128, False) is forced


def test_mask_every_tile_policy():
    """One masked loop over every tile (``configs.backward_mask_every_tile``): on at head_dim 128 with dQ fused, as
    measured, off with dQ split and at head_dim 64; it also stages lse2/delta in the head_dim-128 causal kernel with
    dQ fused, whose two-loop form keeps the global loads."""
    assert configs.backward_mask_every_tile(128, True) and not configs.backward_mask_every_tile(128, False)
    assert not configs.backward_mask_every_tile(64, True)
    assert configs.backward_staged_rows(128, True, True, mask_every_tile=True)
    assert not configs.backward_staged_rows(128, True, True)
    with mock.patch.object(configs, "GLUON_BWD_MASK_EVERY_TILE", True):
        assert configs.backward_mask_every_tile(64, False)
    with mock.patch.object(configs, "GLUON_BWD_MASK_EVERY_TILE", False):
        assert not configs.backward_mask_every_tile(128, True)


@pytest.mark.parametrize("extra", [(), ("--window", "1000")])
@pytest.mark.parametrize("branch", ["0", "1"])
def test_mask_every_tile_compiles_without_spills(extra, branch):
    """The head_dim-128 causal (or windowed) kernel with dQ fused and lse2/delta staged, all tiles in one masked
    loop: no spills, where the two-loop staged form spills 55 values causal and 68 windowed; also with the mask
    behind a per-tile branch (``configs.GLUON_BWD_MASK_BRANCH``), which keeps one loop's products."""
    r = _compile("gluon-dkdv-dq", 128, 1, 8192, "--set", "GLUON_BWD_MASK_EVERY_TILE=1", "--set",
                 f"GLUON_BWD_MASK_BRANCH={branch}", *extra)
    assert r["ldl"] == 0 and r["stl"] == 0 and r["selp_b16"] == 0, r
    assert r["wgmma"] == 64, r  # one loop's products (the two-loop form compiles each loop's: 128)


@pytest.mark.parametrize("head_dim", [128, 64])
def test_prescaled_rows_and_unscaled_dq_trim_the_loop(head_dim):
    """``configs.GLUON_BWD_PRESCALED_ROWS`` and ``configs.DQ_CONVERT_KERNEL`` (dQ shares unscaled): the same kernel
    without spills and with fewer instructions (the staged starting values need no arithmetic, the shares no
    multiply); SASS counts in NOTES entries 54 and 58. Both are defaults now where they gained, so the baseline
    forces them off."""
    plain = _compile("gluon-dkdv-dq", head_dim, 0, 8192, "--set", "GLUON_BWD_PRESCALED_ROWS=0", "--set",
                     "DQ_CONVERT_KERNEL=0")
    trimmed = _compile("gluon-dkdv-dq", head_dim, 0, 8192, "--set", "GLUON_BWD_PRESCALED_ROWS=1", "--set",
                       "DQ_CONVERT_KERNEL=1")
    assert trimmed["ldl"] == 0 and trimmed["stl"] == 0, trimmed
    assert trimmed["sass_instructions"] < plain["sass_instructions"] - 50, (plain, trimmed)


@pytest.mark.parametrize("head_dim,causal", [(128, 0), (64, 1)])
def test_dq_narrow_swizzle_compiles(head_dim, causal):
    """``configs.GLUON_BWD_DQ_NARROW_SWIZZLE``: the dQ staging tile in a 32-byte swizzle compiles for sm_90 within
    shared memory and without spills (the copy engine's boxes then split the tile in 8-column slices)."""
    r = _compile("gluon-dkdv-dq", head_dim, causal, 8192, "--set", "GLUON_BWD_DQ_NARROW_SWIZZLE=1")
    assert r["ldl"] == 0 and r["stl"] == 0, r


@pytest.mark.parametrize("extra", [(), ("--alibi",)])
def test_staged_rows_compile_for_sm90(extra):
    """With lse2/delta staged (``STAGED_ROWS``) the head_dim-128 kernels with dQ fused compile within shared memory:
    without spills, and with ALiBi (fused there since staging: ``backward_gluon_dq``) with at most a couple, where
    the unstaged kernel spilled 35 values."""
    r = _compile("gluon-dkdv-dq", 128, 0, 8192, "--set", "GLUON_BWD_STAGED_ROWS=1", *extra)
    assert r["ldl"] <= 2 and r["stl"] <= 2, r


@pytest.mark.parametrize("kernel,head_dim", [("gluon-dkdv", 128), ("gluon-dkdv-dq", 64)])
def test_windows_and_alibi_compile_for_sm90(kernel, head_dim):
    """The kernels the policy above would run for windows and ALiBi compile (the head_dim-128 one with a few
    spills where both are on: NOTES entry 38)."""
    r = _compile(kernel, head_dim, 0, 8192, "--window", "1000", "--alibi")
    if head_dim == 64:
        assert r["ldl"] == 0 and r["stl"] == 0, r


def test_dropout_policy():
    """Dropout in the Gluon backward (``configs.GLUON_BWD_DROPOUT``, on since measured): dQ fused, at head_dim 128
    under a causal mask only in the one-loop masked form (the two-loop fused kernel spills); switched off, the tl
    kernels take dropout."""
    f = Features(0.1, True, dropout_p=0.1, seed=3, offset=4)
    assert backward_sm90.covers_backward(torch.bfloat16, 128, f)
    with mock.patch.object(configs, "GLUON_BWD_DROPOUT", False):
        assert not backward_sm90.covers_backward(torch.bfloat16, 128, f)
    assert not backward_sm90.covers(torch.bfloat16, 128, f)  # launch plans stay off: a fresh seed per call
    assert configs.backward_gluon_dq(128, True, 8192, dropout=True)
    with mock.patch.object(configs, "GLUON_BWD_MASK_EVERY_TILE", False):
        assert not configs.backward_gluon_dq(128, True, 8192, dropout=True)
    assert configs.backward_gluon_dq(128, False, 8192, dropout=True) and configs.backward_gluon_dq(64, True, 8192,
                                                                                                  dropout=True)


@pytest.mark.parametrize("head_dim,fuse_dq", [(128, False), (128, True), (64, True)])
def test_dropout_stages_fit_shared_memory(head_dim, fuse_dq):
    # Each consumer's 4 KB of draws besides the kernel's other buffers.
    n, m = backward_sm90.BLOCK_N.value, backward_sm90.BLOCK_M.value
    got = backward_sm90.stages_for(head_dim, fuse_dq, dropout=True)
    used = (2 * n + 2 * got * m) * head_dim * 2 + 2 * m * 64
    if fuse_dq:
        used += 2 * n * m * 2 + 2 * m * backward_sm90.dq_cols(head_dim) * 4
    assert 2 <= got <= backward_sm90.stages_for(head_dim, fuse_dq) and used <= SMEM_LIMIT - 1024


@pytest.mark.parametrize("kernel,head_dim,causal", [("gluon-dkdv-dq", 64, 0), ("gluon-dkdv-dq", 64, 1),
                                                    ("gluon-dkdv-dq", 128, 0), ("gluon-dkdv", 128, 1)])
def test_dropout_compiles_for_sm90(kernel, head_dim, causal):
    """The dropout kernels the policy runs compile within shared memory: no spills at head_dim 64; at 128, where
    dK and dV hold 128 of the 240 registers, the loop-invariant dropout arguments spill (reloaded from L1 per tile,
    benchmarks/NOTES.md entry 47); the bound catches a regression to the hundreds."""
    r = _compile(kernel, head_dim, causal, 8192, "--dropout", "0.1")
    if head_dim == 64:
        assert r["ldl"] == 0 and r["stl"] == 0, r
    else:
        assert r["ldl"] <= 100 and r["stl"] <= 100, r


def test_dropout_wide_multiplies_compile_for_sm90(tmp_path):
    """``configs.GLUON_BWD_PHILOX_WIDE`` (off: measured 3% slower at head_dim 128, NOTES entry 92) still compiles to
    what it promises: the Philox products as wide multiplies (no ``IMAD.HI.U32`` left), fewer instructions (3040 ->
    2936), no more spills; and the default kernel has it off."""
    assert backward_sm90.dropout_bits(0.1) == 1 and backward_sm90.dropout_bits(0.0) == 0
    with mock.patch.object(configs, "GLUON_BWD_PHILOX_WIDE", True):
        assert backward_sm90.dropout_bits(0.1) == 9
    r = {}
    for wide in (0, 1):
        r[wide] = _compile("gluon-dkdv", 128, 0, 8192, "--dropout", "0.1", "--set", f"GLUON_BWD_PHILOX_WIDE={wide}",
                           "--dump", str(tmp_path / str(wide)))
    sass = ["".join(p.read_text() for p in (tmp_path / str(w)).glob("*.sass")) for w in (0, 1)]
    assert sass[0].count("IMAD.HI.U32") >= 100 and sass[1].count("IMAD.HI.U32") == 0
    assert r[1]["sass_instructions"] < r[0]["sass_instructions"] and r[1]["ldl"] <= r[0]["ldl"], r


@pytest.mark.parametrize("causal,extra", [(1, ()), (0, ("--window", "1000")), (0, ("--dropout", "0.1"))])
def test_masks_and_dropout_without_packed_predicates(causal, extra):
    """Masks and dropout select per element in PTX (``configs.GLUON_BWD_PTX_MASKS``, ``select_kept``,
    ``_dropout_grads``): no ``selp.b16``, the mark of LLVM packing a tensor of compares into bit masks."""
    assert _compile("gluon-dkdv", 128, causal, 8192, *extra)["selp_b16"] == 0


def test_set_switches():
    """``configs.set_switches``, the benchmark scripts' ``--set NAME=0|1``: booleans by name, anything else refused."""
    with mock.patch.object(configs, "GLUON_BWD_PTX_MASKS", True), mock.patch.object(configs, "BWD_GLUON", None):
        configs.set_switches(["GLUON_BWD_PTX_MASKS=0", "BWD_GLUON=1"])
        assert configs.GLUON_BWD_PTX_MASKS is False and configs.BWD_GLUON is True
        for bad in ("NO_SUCH_SWITCH=1", "GLUON_BWD_PTX_MASKS=yes", "GLUON_BWD_PTX_MASKS", "interpreting=1"):
            with pytest.raises(ValueError, match="NAME=0|1"):
                configs.set_switches([bad])
        assert configs.GLUON_BWD_PTX_MASKS is False
