"""The fuzz strategies of ``tests/ut/test_fuzz.py`` on the GPU, bf16 included, at real head dims.

``FLASH_ATTENTION_FUZZ_EXAMPLES`` sets the budget (default 40 per test; the committed long run used more); the
compute-sanitizer run uses this file too, since it covers odd lengths, every feature, varlen and paged caches.
"""

import zlib

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from flash_attention import attention
from flash_attention.fuzzing import attn_cases, fuzz_settings, kvcache_cases, varlen_cases
from flash_attention.testing import check_api, check_kvcache, check_varlen

pytestmark = pytest.mark.gpu
DTYPES = st.sampled_from([torch.bfloat16, torch.float16])


@fuzz_settings(40)
@given(case=attn_cases(max_seqlen=300), dtype=DTYPES, layout=st.sampled_from(["bshd", "bhsd"]))
def test_gpu_fuzz_attention(case, dtype, layout):
    torch.manual_seed(zlib.crc32(repr((case, dtype, layout)).encode()))  # reproducible example
    check_api(attention, case, dtype, "cuda", layout)


@fuzz_settings(40)
@given(case=varlen_cases(max_seqlen=300), dtype=DTYPES)
def test_gpu_fuzz_varlen(case, dtype):
    torch.manual_seed(zlib.crc32(repr((case, dtype)).encode()))  # reproducible example
    check_varlen(dtype=dtype, device="cuda", **case)


@fuzz_settings(40)
@given(case=kvcache_cases(), dtype=DTYPES)
def test_gpu_fuzz_kvcache(case, dtype):
    torch.manual_seed(zlib.crc32(repr((case, dtype)).encode()))  # reproducible example
    check_kvcache("cuda", dtype, **case)
