#!/bin/bash
# Device round 2026-12-02 (fifth session), call 1: where the host time of a call goes (benchmarks/host_breakdown.py),
# the Gluon backward's GPU tests not yet logged after the register work (split dQ, the default path and
# deterministic=True), and a same-process A/B of the backward at S=1K (tl vs Gluon) for the 2K threshold.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 120 python benchmarks/host_breakdown.py --seqlen 1024 2048 --calls 200 > $OUT/h200-2026-12-02-host-breakdown.log 2>&1
echo "breakdown exit $?"; cat $OUT/h200-2026-12-02-host-breakdown.log
timeout 200 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k "split_dq or default_path" \
  > $OUT/h200-2026-12-02-gluon-bwd-tests-d.log 2>&1
echo "tests exit $?"; tail -n 8 $OUT/h200-2026-12-02-gluon-bwd-tests-d.log
timeout 150 python benchmarks/ab_backward.py --switch BWD_GLUON --variants default --dtypes bf16 \
  --shapes 128:0:1024,128:1:1024,64:0:1024,64:1:1024 \
  --out $OUT/h200-2026-12-02-gluon-bwd-1k-ab-bf16.csv > $OUT/h200-2026-12-02-gluon-bwd-1k-ab-bf16.log 2>&1
echo "ab exit $?"; tail -n 20 $OUT/h200-2026-12-02-gluon-bwd-1k-ab-bf16.log
