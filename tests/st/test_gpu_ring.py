"""Ring attention's chunk-pair math with the GPU kernels (every rank simulated in one process), bf16/fp16, real
head dims, against the float64 reference. The multi-GPU transport runs in ``python -m flash_attention.bench_ring``
under torchrun (NCCL); the CPU suite runs it over gloo."""

import pytest
import torch

from flash_attention.parallel.checks import check_simulated_ring

pytestmark = pytest.mark.gpu

CASES = {  # world, layout, causal, window, alibi, softcap, dropout
    "contig2": (2, "contiguous", False, (-1, -1), False, 0.0, 0.0),
    "zigzag2_causal": (2, "zigzag", True, (-1, -1), False, 0.0, 0.0),
    "zigzag4_causal_alibi": (4, "zigzag", True, (-1, -1), True, 0.0, 0.0),
    "contig3_window": (3, "contiguous", True, (700, 0), False, 0.0, 0.0),
    "zigzag2_softcap_window": (2, "zigzag", False, (300, 200), False, 20.0, 0.0),
    "zigzag2_dropout": (2, "zigzag", True, (-1, -1), False, 0.0, 0.15),
}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("name", list(CASES))
def test_ring_chunk_pairs(name, head_dim, dtype):
    check_simulated_ring(*CASES[name], dtype=dtype, device="cuda", seqlen_per_rank=512, nheads=8, head_dim=head_dim)
