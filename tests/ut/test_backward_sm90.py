"""The experimental Gluon dK/dV kernel (ops/backward_sm90.py) without a GPU: it stays off unless switched on, it
declines what it does not cover, its shared memory plan fits, and it compiles for sm_90. Its numerics are for the
GPU suite (tests/st/test_gpu_backward_sm90.py)."""

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


def test_off_by_default_and_never_on_cpu():
    q = torch.randn(1, 256, 2, 128, dtype=torch.bfloat16)
    assert configs.BWD_GLUON is False
    assert not backward_sm90.supported(q, q, q, q, q, q, Features(0.1))
    with mock.patch.object(configs, "BWD_GLUON", True):
        assert not backward_sm90.supported(q, q, q, q, q, q, Features(0.1))


@pytest.mark.parametrize("head_dim,stages", [(128, 4), (64, 4)])
def test_stages_fit_shared_memory(head_dim, stages):
    assert backward_sm90.stages_for(head_dim) == stages
    used = (2 * backward_sm90.BLOCK_N.value + 2 * stages * backward_sm90.BLOCK_M.value) * head_dim * 2
    assert used <= SMEM_LIMIT - 1024


@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("causal", [0, 1])
def test_compiles_for_sm90(head_dim, causal):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # Gluon compiles outside it only
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "inspect_sm90.py"), "--kernel", "gluon-dkdv",
                          "--seqlen", "1000", "--d", str(head_dim), "--causal", str(causal), "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["shared"] <= SMEM_LIMIT and r["wgmma"] > 0 and {"24", "240"} <= set(r["setmaxnreg"]), r
    if head_dim == 64:
        assert r["ldl"] == 0 and r["stl"] == 0, r
