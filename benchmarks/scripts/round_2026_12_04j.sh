#!/bin/bash
# Seventeenth session (2026-12-04): GPU tests of the forward policy from rounds g and i (head_dim 64 short rows with
# two consumers, dropout under a causal mask one tile per program), then part a of the full run (head_dim 128).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04j
timeout 210 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_forward_sm90.py \
  -k "default_forms or bf16_consumers or test_persistent_forward or test_gluon_forward_dropout" \
  > $OUT/$L-tests.log 2>&1
echo "tests exit $?"; tail -3 $OUT/$L-tests.log
bash benchmarks/scripts/full_run.sh $L a
