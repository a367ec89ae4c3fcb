"""Property-based fuzzing: random shapes and feature combinations against the float64 reference.

The kernels run under Triton's interpreter and the PyTorch path on CPU tensors (both, per example); the GPU run
(``tests/st/test_gpu_fuzz.py`` with ``FLASH_ATTENTION_FUZZ_EXAMPLES=...``) draws from the same strategies.
"""

import zlib

import torch
from hypothesis import given
from hypothesis import strategies as st

from flash_attention import attention, use_backend
from flash_attention.fuzzing import attn_cases, fuzz_settings, kvcache_cases, varlen_cases
from flash_attention.testing import check_api, check_kvcache, check_varlen

DTYPES = st.sampled_from([torch.float16, torch.float32])


@fuzz_settings(25)
@given(case=attn_cases(max_seqlen=40, head_dims=(8, 16, 24, 32, 64)), dtype=DTYPES,
       layout=st.sampled_from(["bshd", "bhsd"]), backend=st.sampled_from(["triton", "torch"]))
def test_fuzz_attention(case, dtype, layout, backend):
    torch.manual_seed(zlib.crc32(repr((case, dtype, layout, backend)).encode()))  # reproducible example
    with use_backend(backend):
        check_api(attention, case, dtype, "cpu", layout)


@fuzz_settings(12)
@given(case=varlen_cases(max_seqlen=30), dtype=DTYPES, backend=st.sampled_from(["triton", "torch"]))
def test_fuzz_varlen(case, dtype, backend):
    torch.manual_seed(zlib.crc32(repr((case, dtype, backend)).encode()))  # reproducible example
    with use_backend(backend):
        check_varlen(dtype=dtype, device="cpu", **case)


@fuzz_settings(15)
@given(case=kvcache_cases(), backend=st.sampled_from(["triton", "torch"]))
def test_fuzz_kvcache(case, backend):
    torch.manual_seed(zlib.crc32(repr((case, backend)).encode()))  # reproducible example
    with use_backend(backend):
        check_kvcache("cpu", torch.float16, **case)
