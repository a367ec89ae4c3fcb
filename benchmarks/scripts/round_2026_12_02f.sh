#!/bin/bash
# Device round 2026-12-02 (third session), call 1: the Gluon Hopper forward's GPU tests, then its A/B against the
# tl forward and SDPA cuDNN/flash (bf16, 16K tokens) for a few key-tile sizes and stage counts.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
# Smoke first: a barrier mistake would hang, so one small call under a short timeout.
timeout 90 python -c "
import torch
from flash_attention.features import Features
from flash_attention.ops import configs, forward_sm90
from flash_attention.ops.forward import attention_forward
q, k, v = (torch.randn(2, 1000, 4, 128, device='cuda', dtype=torch.bfloat16) for _ in range(3))
for causal in (False, True):
    f = Features(128 ** -0.5, causal)
    o, l = torch.empty_like(q), torch.empty(2, 4, 1000, device='cuda')
    forward_sm90.attention_forward_sm90(q, k, v, f, o, l)
    torch.cuda.synchronize()
    configs.FWD_GLUON = False
    ro, rl = attention_forward(q, k, v, f)
    configs.FWD_GLUON = None
    print('smoke causal', causal, float((o.float() - ro.float()).abs().max()), float((l - rl).abs().max()))
"
echo "smoke exit $?"
timeout 240 python -m pytest -x -q tests/st/test_gpu_forward_sm90.py > $OUT/h200-2026-12-02-gluon-fwd-tests.log 2>&1
echo "tests exit $?"; tail -5 $OUT/h200-2026-12-02-gluon-fwd-tests.log
timeout 280 python benchmarks/ab_gluon.py --out $OUT/h200-2026-12-02-gluon-fwd-ab-bf16.csv \
  > $OUT/h200-2026-12-02-gluon-fwd-ab-bf16.log 2>&1
echo "ab exit $?"; cut -c1-400 $OUT/h200-2026-12-02-gluon-fwd-ab-bf16.log | tail -30
