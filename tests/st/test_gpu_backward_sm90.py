"""GPU suite for the experimental Gluon dK/dV kernel (ops/backward_sm90.py), switched on here: gradients against
the float64 reference at ragged lengths, both diagonals, GQA and strided views, and a check that the kernel ran.
Skipped without an sm_90 GPU. Not yet run (written when no device time was left; see benchmarks/NOTES.md)."""

from unittest import mock

import pytest
import torch

from flash_attention.ops import backward_sm90, configs
from flash_attention.testing import AttnCase, cases_product, check_case

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] != 9, reason="needs an sm_90 GPU")]
DTYPES = [torch.float16, torch.bfloat16]
SEQLENS = [(1, 1), (17, 17), (63, 200), (200, 63), (1000, 1000), (1024, 1024), (2049, 2049), (4096, 1024),
           (1024, 4096), (129, 129)]


@pytest.fixture
def gluon_dkdv_calls():
    with mock.patch.object(backward_sm90, "attention_backward_dkdv_sm90",
                           wraps=backward_sm90.attention_backward_dkdv_sm90) as m, \
            mock.patch.object(configs, "BWD_GLUON", True):
        yield m


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", cases_product(SEQLENS, heads=((8, 2),), head_dims=(64, 128)), ids=str)
def test_gluon_dkdv(case, dtype, gluon_dkdv_calls):
    check_case(case, dtype, "cuda")
    assert gluon_dkdv_calls.call_count == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_gluon_dkdv_gqa_strided(causal, layout, dtype, gluon_dkdv_calls):
    check_case(AttnCase(2, 1500, 1700, 16, 4, 128, causal), dtype, "cuda", layout=layout)
    assert gluon_dkdv_calls.call_count == 1
