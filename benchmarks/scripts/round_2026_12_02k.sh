#!/bin/bash
# Device round 2026-12-02 (fourth session), call 1: first GPU run of the experimental Gluon dK/dV kernel
# (tests, then same-process A/B against the tl dK/dV kernel), the host-side forward changes of the last session
# (Gluon forward tests on GQA/strided inputs), and the host time per call.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 170 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_backward_sm90.py \
  > $OUT/h200-2026-12-02-gluon-bwd-tests.log 2>&1
echo "bwd tests exit $?"; tail -n 15 $OUT/h200-2026-12-02-gluon-bwd-tests.log
timeout 80 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_forward_sm90.py -k "strided or declines" \
  > $OUT/h200-2026-12-02-gluon-fwd-tests-d.log 2>&1
echo "fwd tests exit $?"; tail -n 3 $OUT/h200-2026-12-02-gluon-fwd-tests-d.log
timeout 150 python benchmarks/ab_backward.py --switch BWD_GLUON --variants default --dtypes bf16 \
  --shapes 128:0:2048,128:1:2048,128:0:8192,128:1:8192,128:1:16384,64:0:8192,64:1:8192 \
  --out $OUT/h200-2026-12-02-gluon-bwd-ab-bf16.csv > $OUT/h200-2026-12-02-gluon-bwd-ab-bf16.log 2>&1
echo "ab exit $?"; cat $OUT/h200-2026-12-02-gluon-bwd-ab-bf16.log | tail -n 40
timeout 40 python benchmarks/host_overhead.py --causal 0 > $OUT/h200-2026-12-02-host-overhead-b.log 2>&1
echo "host exit $?"; tail -n 9 $OUT/h200-2026-12-02-host-overhead-b.log
