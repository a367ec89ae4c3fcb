"""GPU suite for the Gluon Hopper forward (ops/forward_sm90.py): against the float64 reference through the same
``check_case`` as the tl kernels, at ragged lengths, both diagonals, GQA and strided views; and a check that these
calls really take the Gluon kernel. Skipped without an sm_90 GPU."""

from unittest import mock

import pytest
import torch

from flash_attention.ops import configs, forward_sm90
from flash_attention.testing import (BAND_CASES, DROPOUT_CASES, AttnCase, cases_product, check_case,
                                     direct_inputs)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] != 9, reason="needs an sm_90 GPU")]
DTYPES = [torch.float16, torch.bfloat16]
SEQLENS = [(1, 1), (17, 17), (63, 200), (200, 63), (1000, 1000), (1024, 1024), (2049, 2049), (4096, 1024),
           (1024, 4096), (1, 4096), (129, 129)]


@pytest.fixture
def gluon_calls():
    """Counts the Gluon launches, so a silent fallback to the tl kernels fails the test. Forces the kernel on where
    it applies (the default picks it by head_dim and length, ``configs.forward_gluon``)."""
    with mock.patch.object(forward_sm90, "attention_forward_sm90", wraps=forward_sm90.attention_forward_sm90) as m, \
            mock.patch.object(configs, "FWD_GLUON", True):
        yield m


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", cases_product(SEQLENS, heads=((8, 2),), head_dims=(64, 128)), ids=str)
def test_gluon_forward(case, dtype, gluon_calls):
    check_case(case, dtype, "cuda", backward=False)
    assert gluon_calls.call_count == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_gluon_forward_gqa_strided(causal, layout, dtype, gluon_calls):
    check_case(AttnCase(2, 1500, 1700, 16, 4, 128, causal), dtype, "cuda", layout=layout)
    assert gluon_calls.call_count == 1


@pytest.mark.parametrize("block_n,stages,overlap,pingpong", [
    (128, 2, False, False), (128, 3, False, False), (64, 4, False, False), (128, 2, True, False),
    (128, 3, True, False), (64, 4, True, False), (128, 3, True, True), (64, 4, True, True)])
@pytest.mark.parametrize("case", [AttnCase(2, 777, 1500, 8, 8, 128), AttnCase(2, 777, 1500, 8, 8, 128, causal=True),
                                  AttnCase(1, 1500, 700, 8, 2, 64, causal=True), AttnCase(2, 129, 129, 4, 4, 64),
                                  AttnCase(1, 1, 1, 2, 2, 128, causal=True)], ids=str)
def test_gluon_forward_tiles(block_n, stages, overlap, pingpong, case, gluon_calls):
    """Every key-tile size, stage count and loop form the benchmarks try gives the reference's answer."""
    with mock.patch.multiple(configs, GLUON_BLOCK_N=block_n, GLUON_OVERLAP=overlap, GLUON_PINGPONG=pingpong), \
            mock.patch.object(forward_sm90, "stages_for", return_value=stages):
        check_case(case, torch.bfloat16, "cuda", backward=False)
    assert gluon_calls.call_count == 1


def test_gluon_declines_other_features(gluon_calls):
    """Softcap, an additive bias and head dims other than 64/128 go to the tl kernels (and still pass). (Dropout
    too, but ``check_case`` leaves dropout to ``check_api``.)"""
    for case in (AttnCase(2, 300, 300, 4, 4, 128, softcap=30.0), AttnCase(2, 300, 300, 4, 4, 96),
                 AttnCase(2, 300, 300, 4, 4, 128, bias="broadcast")):
        check_case(case, torch.bfloat16, "cuda", backward=False)
    assert gluon_calls.call_count == 0


@pytest.mark.parametrize("case,dtype", [(c, torch.bfloat16) for c in BAND_CASES]
                         + [(c, torch.float16) for c in BAND_CASES[::4]], ids=str)
def test_gluon_forward_window_alibi(case, dtype, gluon_calls):
    """Token windows (either side bounded, with or without causal) and ALiBi in the form the policy picks (one tile,
    persistent for a head_dim-64 window without a causal mask), at ragged lengths, both diagonals and GQA; the tl
    backward takes the forward's lse."""
    check_case(case, dtype, "cuda", backward=True)
    assert gluon_calls.call_count >= 1


@pytest.fixture
def persistent_calls(gluon_calls):
    """Forces the persistent form and records the kernels launched, so a test fails if the call took the other."""
    with mock.patch.object(configs, "FWD_GLUON_PERSISTENT", True), \
            mock.patch.object(forward_sm90, "launch", wraps=forward_sm90.launch) as m:
        yield m


def _ran_persistent(m) -> bool:
    return m.call_count == 1 and m.call_args.args[0] is forward_sm90._attn_fwd_sm90_persistent


@pytest.mark.parametrize("case", cases_product(SEQLENS, heads=((8, 2),), head_dims=(64, 128)), ids=str)
def test_persistent_forward(case, persistent_calls):
    check_case(case, torch.float16, "cuda", backward=False)
    assert _ran_persistent(persistent_calls)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", cases_product(SEQLENS, heads=((8, 2),), head_dims=(64,)), ids=str)
def test_persistent_forward_d64_six_stages(case, dtype, persistent_calls):
    """``configs.GLUON_D64_TWO_CONSUMER_STAGES`` = 6 (prepared, measured faster at 1K, NOTES entry 94): the two-consumer
    ring of six K/V stages at ragged lengths, both diagonals, fewer key tiles than stages, GQA."""
    with mock.patch.object(configs, "GLUON_D64_TWO_CONSUMER_STAGES", 6), \
            mock.patch.object(forward_sm90, "consumers_for", return_value=2):
        check_case(case, dtype, "cuda", backward=False)
    assert _ran_persistent(persistent_calls)
    kw = persistent_calls.call_args.args[3]
    assert kw["NC"] == 2 and kw["STAGES"] == 6


@pytest.mark.parametrize("consumers", [2, 3])
@pytest.mark.parametrize("case", [AttnCase(2, 1000, 1000, 8, 2, 64), AttnCase(2, 1000, 1000, 8, 2, 64, causal=True),
                                  AttnCase(2, 700, 1500, 8, 8, 64, causal=True),
                                  AttnCase(2, 1500, 700, 8, 8, 128, causal=True)], ids=str)
def test_persistent_forward_bf16_consumers(case, consumers, persistent_calls):
    """bf16, and both consumer counts at head_dim 64 (its default: 2 for short rows, 3 beyond; 128 always takes 2)."""
    nc = consumers if case.head_dim == 64 else 2
    with mock.patch.object(forward_sm90, "consumers_for", return_value=nc):
        check_case(case, torch.bfloat16, "cuda", backward=False)
    assert _ran_persistent(persistent_calls)
    assert persistent_calls.call_args.args[3]["NC"] == nc  # launch(jitfn, grid, args, kwargs, roles)


@pytest.mark.parametrize("case", [AttnCase(4, 3000, 3000, 16, 4, 128, causal=True), AttnCase(4, 3000, 2000, 16, 4, 64),
                                  AttnCase(3, 2000, 3000, 16, 16, 64, causal=True),
                                  AttnCase(1, 8192, 8192, 4, 1, 128, causal=True)], ids=str)
def test_persistent_forward_many_tiles(case, persistent_calls):
    """More query tiles than SMs: each program walks several, its K/V ring and barriers carried across them (odd
    rounds backwards under a causal mask); the backward takes the forward's lse."""
    check_case(case, torch.bfloat16, "cuda", backward=True)
    assert _ran_persistent(persistent_calls)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_persistent_forward_gqa_strided(causal, layout, persistent_calls):
    check_case(AttnCase(2, 1500, 1700, 16, 4, 128, causal), torch.float16, "cuda", layout=layout, backward=False)
    assert _ran_persistent(persistent_calls)


@pytest.mark.parametrize("case", [AttnCase(2, 1000, 1000, 8, 2, 64, causal=True), AttnCase(3, 2000, 3000, 16, 16, 64,
                                                                                           causal=True),
                                  AttnCase(2, 1500, 700, 8, 8, 128, causal=True), AttnCase(2, 777, 1500, 8, 8, 64)],
                         ids=str)
def test_persistent_kernel_one_tile_per_program(case, gluon_calls):
    """The persistent kernel launched with one program per query tile (``tile_per_program``, an A/B option)."""
    import functools

    launcher = functools.partial(gluon_calls, persistent=True, tile_per_program=True)
    with mock.patch.object(forward_sm90, "attention_forward_sm90", launcher):
        check_case(case, torch.bfloat16, "cuda", backward=False)
    assert gluon_calls.call_count == 1 and gluon_calls.call_args.kwargs["tile_per_program"]


@pytest.mark.parametrize("case", [AttnCase(4, 3000, 3000, 16, 4, 128, causal=True), AttnCase(3, 2000, 3000, 16, 16, 64,
                                                                                           causal=True),
                                  AttnCase(2, 1000, 1000, 8, 2, 64), AttnCase(2, 1500, 700, 8, 8, 128, causal=True),
                                  AttnCase(1, 1, 1, 2, 2, 128, causal=True)], ids=str)
def test_persistent_dynamic_schedule(case, persistent_calls):
    """The persistent form with tiles handed out by an atomic counter (``configs.GLUON_DYNAMIC_SCHEDULE``): every
    tile computed once, whichever program takes it; the backward takes the forward's lse."""
    with mock.patch.object(configs, "GLUON_DYNAMIC_SCHEDULE", True):
        check_case(case, torch.bfloat16, "cuda", backward=True)
    assert _ran_persistent(persistent_calls) and persistent_calls.call_args.args[3]["DYNAMIC"]


def test_persistent_dynamic_schedule_planned_and_repeated():
    """Relaunches through a launch plan get a fresh counter each: repeated calls give the same output."""
    from flash_attention import flash_attn_func

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3000, 8, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    with mock.patch.object(configs, "GLUON_DYNAMIC_SCHEDULE", True), \
            mock.patch.object(configs, "FWD_GLUON_PERSISTENT", True):
        outs = [flash_attn_func(q, k, v, causal=True) for _ in range(4)]
    assert all(torch.equal(outs[0], o) for o in outs[1:])
    ref = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2).float() for t in (q, k, v)),
                                                           is_causal=True).transpose(1, 2)
    assert (outs[0].float() - ref).abs().max() < 2e-2


@pytest.mark.parametrize("case,persistent,dynamic,nc", [
    (AttnCase(1, 8192, 8192, 4, 2, 64, causal=True), True, True, 3),
    (AttnCase(2, 2048, 2048, 8, 8, 64), True, True, 3),
    (AttnCase(4, 1024, 1024, 8, 8, 64), True, True, 2),
    (AttnCase(2, 1500, 1500, 8, 4, 64), True, True, 2),
    (AttnCase(2, 2048, 2048, 8, 8, 64, causal=True), True, False, 2),
    (AttnCase(1, 4096, 4096, 8, 2, 64, causal=True), True, False, 2),
    (AttnCase(2, 2048, 2048, 8, 2, 128, causal=True), True, False, 2),
    (AttnCase(1, 8192, 8192, 8, 4, 128, causal=True), True, True, 2),
    (AttnCase(1, 4096, 4096, 8, 8, 128, causal=True), True, False, 2),
    (AttnCase(1, 8192, 8192, 8, 4, 128, causal=True, window_size=(2048, 0)), True, True, 2),
    (AttnCase(1, 4096, 4096, 8, 8, 128, causal=True, window_size=(1000, 0)), False, False, 0),
    (AttnCase(2, 1000, 1000, 8, 8, 128), True, False, 2)], ids=str)
def test_default_forms(case, persistent, dynamic, nc):
    """The measured policy, unforced (``configs.forward_gluon``, ``configs.forward_gluon_persistent``,
    ``configs.forward_gluon_dynamic``, ``forward_sm90.consumers_for``): the form each call takes, and its result
    against the reference with the backward fed by its lse."""
    with mock.patch.object(forward_sm90, "launch", wraps=forward_sm90.launch) as m:
        check_case(case, torch.bfloat16, "cuda", backward=True)
    fwd = [c for c in m.call_args_list if c.args[0] in (forward_sm90._attn_fwd_sm90_persistent,
                                                        forward_sm90._attn_fwd_sm90)]
    assert fwd and all((c.args[0] is forward_sm90._attn_fwd_sm90_persistent) == persistent for c in fwd)
    if persistent:
        assert all(c.args[3]["DYNAMIC"] == dynamic and c.args[3]["NC"] == nc for c in fwd)


@pytest.mark.parametrize("case,dtype,persistent", [
    (AttnCase(1, 4096, 4096, 8, 2, 128, causal=True, dropout_p=0.1), torch.bfloat16, False),
    (AttnCase(1, 8192, 8192, 4, 4, 64, causal=True, dropout_p=0.2), torch.float16, False),
    (AttnCase(1, 3000, 3000, 8, 8, 128, dropout_p=0.1), torch.bfloat16, True),
    (AttnCase(1, 8192, 8192, 4, 4, 64, window_size=(2048, 2048), dropout_p=0.1), torch.bfloat16, False),
    (AttnCase(1, 3000, 3000, 4, 4, 64, dropout_p=0.1), torch.float16, True)], ids=str)
def test_default_forms_dropout(case, dtype, persistent):
    """Dropout's forms, unforced: one tile per program under a causal mask or a window, persistent without either;
    wide Philox multiplies, the pair form at head_dim 64; the pattern against the float64 reference (``check_api``
    applies the keep mask of ``return_attn_probs``)."""
    from flash_attention import flash_attn_func
    from flash_attention.testing import check_api

    with mock.patch.object(forward_sm90, "launch", wraps=forward_sm90.launch) as m:
        check_api(flash_attn_func, case, dtype, "cuda")
    kernels = (forward_sm90._attn_fwd_sm90, forward_sm90._attn_fwd_sm90_persistent)
    fwd = [c for c in m.call_args_list if c.args[0] in kernels]
    assert fwd and all(c.args[3]["DROPOUT"] == (13 if case.head_dim == 64 else 9) for c in fwd)
    assert all((c.args[0] is forward_sm90._attn_fwd_sm90_persistent) == persistent for c in fwd)


@pytest.mark.parametrize("split", [True, False], ids=["split", "exact"])
@pytest.mark.parametrize("case", [c for c in BAND_CASES if c.alibi]
                         + [AttnCase(1, 4096, 4096, 4, 4, 128, alibi="heads"),
                            AttnCase(1, 3000, 5000, 4, 2, 64, causal=True, alibi="batch"),
                            AttnCase(1, 8192, 8192, 2, 2, 128, causal=True, alibi="heads")], ids=str)
def test_gluon_forward_alibi_split(case, split, gluon_calls):
    """ALiBi off the diagonal as a key term and a row shift (``configs.GLUON_ALIBI_SPLIT``), both sides of the
    diagonal, tiles that straddle it, a causal band's every tile (``ONE_SIDED``), and lengths where a key term taken
    from key 0 would lose float32 precision; and the exact form (its distance in float32)."""
    with mock.patch.object(configs, "GLUON_ALIBI_SPLIT", split):
        check_case(case, torch.bfloat16, "cuda", backward=True)
    assert gluon_calls.call_count >= 1 and gluon_calls.call_args.kwargs.get("plan_key") is None


@pytest.mark.parametrize("case,dtype", [(c, torch.bfloat16) for c in BAND_CASES]
                         + [(c, torch.float16) for c in BAND_CASES[1::4]]
                         + [(AttnCase(4, 3000, 3000, 16, 4, 128, causal=True, window_size=(700, 0)), torch.bfloat16),
                            (AttnCase(3, 2000, 3000, 16, 16, 64, window_size=(500, 300)), torch.bfloat16),
                            (AttnCase(3, 3000, 2000, 16, 16, 128, alibi="heads"), torch.bfloat16),
                            (AttnCase(2, 4096, 4096, 16, 16, 64, causal=True, alibi="batch"), torch.bfloat16)],
                         ids=str)
def test_persistent_forward_window_alibi(case, dtype, persistent_calls):
    """Token windows and ALiBi in the persistent form (forced), with more query tiles than SMs in the last four
    cases (tiles without any visible key release their Q without a product); the backward takes the forward's
    lse."""
    check_case(case, dtype, "cuda", backward=case.seqlen_q <= 1000)
    assert _ran_persistent(persistent_calls)
    assert persistent_calls.call_args.args[3]["NC"] == (2 if case.alibi else forward_sm90.consumers_for(
        case.head_dim))


@pytest.mark.parametrize("persistent", [False, True], ids=["one_tile", "persistent"])
@pytest.mark.parametrize("case,dtype", DROPOUT_CASES, ids=str)
def test_gluon_forward_dropout(case, dtype, persistent, gluon_calls):
    """Dropout in the Gluon forward (``configs.GLUON_FWD_DROPOUT``), both forms: its draws, unpacked in the
    accumulator's registers, must be the pattern the tl kernels regenerate (``check_api`` applies the keep mask of
    ``return_attn_probs`` to the float64 reference, and the backward redraws it)."""
    from flash_attention import flash_attn_func
    from flash_attention.testing import check_api

    with mock.patch.object(configs, "FWD_GLUON_PERSISTENT", persistent), \
            mock.patch.object(configs, "GLUON_FWD_DROPOUT", True), \
            mock.patch.object(forward_sm90, "launch", wraps=forward_sm90.launch) as m:
        check_api(flash_attn_func, case, dtype, "cuda")
    kernels = (forward_sm90._attn_fwd_sm90, forward_sm90._attn_fwd_sm90_persistent)
    fwd = [c for c in m.call_args_list if c.args[0] in kernels]
    assert fwd and all(c.args[3]["DROPOUT"] for c in fwd)
    assert all((c.args[0] is forward_sm90._attn_fwd_sm90_persistent) == persistent for c in fwd)


@pytest.mark.parametrize("persistent", [False, True], ids=["one_tile", "persistent"])
@pytest.mark.parametrize("case,dtype", DROPOUT_CASES[:4], ids=str)
def test_gluon_forward_dropout_early(case, dtype, persistent, gluon_calls):
    """``configs.GLUON_FWD_DROPOUT_EARLY``: each tile's Philox words drawn before the wait for S. The same words
    and the same arithmetic, so the output and lse equal the default's bit for bit; and the pattern passes
    ``check_api`` against the float64 reference as the default's does."""
    from flash_attention import flash_attn_func
    from flash_attention.ops.forward import attention_forward
    from flash_attention.testing import check_api

    q, k, v, _, f = direct_inputs(case, dtype, "cuda")
    with mock.patch.object(configs, "FWD_GLUON_PERSISTENT", persistent), \
            mock.patch.object(configs, "GLUON_FWD_DROPOUT", True):
        with mock.patch.object(configs, "GLUON_FWD_DROPOUT_EARLY", False):
            out0, lse0 = attention_forward(q, k, v, f)
        with mock.patch.object(configs, "GLUON_FWD_DROPOUT_EARLY", True), \
                mock.patch.object(forward_sm90, "launch", wraps=forward_sm90.launch) as m:
            out1, lse1 = attention_forward(q, k, v, f)
            check_api(flash_attn_func, case, dtype, "cuda")
    kernels = (forward_sm90._attn_fwd_sm90, forward_sm90._attn_fwd_sm90_persistent)
    fwd = [c for c in m.call_args_list if c.args[0] in kernels]
    assert fwd and all(c.args[3]["DROPOUT"] & 2 for c in fwd)
    assert torch.equal(out0, out1) and torch.equal(lse0, lse1)


@pytest.mark.parametrize("switches", [dict(GLUON_FWD_DROPOUT_PAIRS=True), dict(GLUON_FWD_PHILOX_WIDE=True),
                                      dict(GLUON_FWD_DROPOUT_PAIRS=True, GLUON_FWD_PHILOX_WIDE=True),
                                      dict(GLUON_FWD_DROPOUT_PAIRS=True, GLUON_FWD_DROPOUT_EARLY=True)],
                         ids=["pairs", "wide", "pairs_wide", "pairs_early"])
@pytest.mark.parametrize("persistent", [False, True], ids=["one_tile", "persistent"])
@pytest.mark.parametrize("case,dtype", DROPOUT_CASES, ids=str)
def test_gluon_forward_dropout_pairs_wide(case, dtype, persistent, switches, gluon_calls):
    """``configs.GLUON_FWD_DROPOUT_PAIRS`` (the keep decisions four draws per word, applied to the 16-bit
    probabilities two per register) and ``configs.GLUON_FWD_PHILOX_WIDE`` (each round's products from one wide
    multiply), against the form with both off: the same draws and the same kept probabilities, so the output and lse
    equal bit for bit (the threshold of p = 0.5 is 128, the byte's top bit alone; 0.1 and 0.15 test the low seven
    bits too)."""
    from flash_attention.ops.forward import attention_forward

    off = dict(GLUON_FWD_DROPOUT_PAIRS=False, GLUON_FWD_PHILOX_WIDE=False, GLUON_FWD_DROPOUT_EARLY=False)
    q, k, v, _, f = direct_inputs(case, dtype, "cuda")
    with mock.patch.object(configs, "FWD_GLUON_PERSISTENT", persistent), \
            mock.patch.object(configs, "GLUON_FWD_DROPOUT", True):
        with mock.patch.multiple(configs, **off):
            assert forward_sm90.dropout_bits(case.dropout_p, case.head_dim) == 1
            out0, lse0 = attention_forward(q, k, v, f)
        with mock.patch.multiple(configs, **{**off, **switches}), \
                mock.patch.object(forward_sm90, "launch", wraps=forward_sm90.launch) as m:
            out1, lse1 = attention_forward(q, k, v, f)
    kernels = (forward_sm90._attn_fwd_sm90, forward_sm90._attn_fwd_sm90_persistent)
    fwd = [c for c in m.call_args_list if c.args[0] in kernels]
    want = (4 if "GLUON_FWD_DROPOUT_PAIRS" in switches else 0) | (8 if "GLUON_FWD_PHILOX_WIDE" in switches else 0)
    assert fwd and all(c.args[3]["DROPOUT"] & 12 == want for c in fwd)
    assert torch.equal(out0, out1) and torch.equal(lse0, lse1)


OUT_SMEM_CASES = [(AttnCase(2, 1000, 1000, 8, 2, 128), torch.bfloat16),
                  (AttnCase(4, 3000, 3000, 16, 4, 128, causal=True), torch.bfloat16),
                  (AttnCase(2, 1500, 700, 8, 8, 128, causal=True), torch.float16),
                  (AttnCase(2, 700, 1500, 8, 8, 128, causal=True), torch.bfloat16),
                  (AttnCase(1, 1, 1, 2, 2, 128, causal=True), torch.float16),
                  (AttnCase(4, 3000, 3000, 16, 4, 128, causal=True, window_size=(700, 0)), torch.bfloat16),
                  (AttnCase(16, 1024, 1024, 16, 16, 128), torch.bfloat16),
                  (AttnCase(2, 1000, 1537, 8, 2, 128, dropout_p=0.1), torch.bfloat16),
                  (AttnCase(1, 3000, 2000, 16, 4, 64, dropout_p=0.2), torch.float16)]


@pytest.mark.parametrize("case,dtype", OUT_SMEM_CASES, ids=str)
def test_persistent_out_smem(case, dtype, persistent_calls):
    """``configs.GLUON_PERSISTENT_OUT_SMEM``: the persistent form's output through the K half of the tile's last
    stage and a TMA store. The same values as the register store, bit for bit (ragged last tiles, tiles without
    a visible key, more tiles than SMs, both schedules, a window; dropout, with two consumers at head_dim 64), and
    the float64 reference passes with it on (the backward taking its lse). ALiBi, and dropout under a mask, keep
    the register store (``forward_sm90.out_smem``)."""
    _check_out_smem(case, dtype, persistent_calls, "GLUON_PERSISTENT_OUT_SMEM", nc=2)


OUT_SMEM_V_CASES = [(AttnCase(2, 1000, 1000, 8, 2, 64), torch.bfloat16),
                    (AttnCase(3, 2000, 3000, 16, 16, 64, causal=True), torch.bfloat16),
                    (AttnCase(2, 1500, 700, 8, 8, 64, causal=True), torch.float16),
                    (AttnCase(2, 700, 1500, 8, 8, 64, causal=True), torch.bfloat16),
                    (AttnCase(16, 1024, 1024, 32, 32, 64), torch.bfloat16),
                    (AttnCase(3, 2000, 3000, 16, 16, 64, window_size=(500, 300)), torch.bfloat16),
                    (AttnCase(1, 1, 1, 2, 2, 64), torch.float16)]


@pytest.mark.parametrize("case,dtype", OUT_SMEM_V_CASES, ids=str)
def test_persistent_out_smem_v(case, dtype, persistent_calls):
    """``configs.GLUON_PERSISTENT_OUT_SMEM_V``: with three consumers the third one's output through the first rows
    of the last stage's V tile, after every consumer's last ``P V``. Bit-equal to the register store and against the
    float64 reference (the dynamic schedule, ragged tiles, tiles without a visible key, a window)."""
    with mock.patch.object(configs, "GLUON_PERSISTENT_OUT_SMEM", True):
        _check_out_smem(case, dtype, persistent_calls, "GLUON_PERSISTENT_OUT_SMEM_V", nc=3)


def _check_out_smem(case, dtype, persistent_calls, switch, nc):
    from flash_attention.ops.forward import attention_forward

    q, k, v, _, f = direct_inputs(case, dtype, "cuda")
    outs = {}
    for on in (False, True):
        with mock.patch.object(configs, switch, on):
            outs[on] = attention_forward(q, k, v, f)
        kwargs = persistent_calls.call_args.args[3]
        assert kwargs["OUT_SMEM"] == on and kwargs["NC"] == nc, kwargs
    assert torch.equal(outs[False][0], outs[True][0]) and torch.equal(outs[False][1], outs[True][1])
    if not case.dropout_p:
        with mock.patch.object(configs, switch, True):
            check_case(case, dtype, "cuda", backward=case.seqlen_q <= 1500)
        assert persistent_calls.call_args.args[3]["OUT_SMEM"]
