#!/bin/bash
# Device round 2026-12-02 (fifth session), call 2: launch plans (ops/launch.py). Their GPU tests, the host breakdown
# with plans on and off, the short rows of the benchmark (bf16, S=1K/2K, where the host time counts), then the
# Gluon backward's GQA/strided GPU tests.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 150 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_plans.py > $OUT/h200-2026-12-02-plans-tests.log 2>&1
echo "plans tests exit $?"; tail -n 30 $OUT/h200-2026-12-02-plans-tests.log
timeout 100 python benchmarks/host_breakdown.py --seqlen 1024 --calls 200 > $OUT/h200-2026-12-02-host-breakdown-plans.log 2>&1
echo "breakdown exit $?"; cat $OUT/h200-2026-12-02-host-breakdown-plans.log
timeout 200 python -m flash_attention.bench --dtypes bf16 --head-dims 64,128 --seqlens 1024,2048 --no-long --no-check \
  --out $OUT/h200-2026-12-02-plans-short-bf16.csv > $OUT/h200-2026-12-02-plans-short-bf16.log 2>&1
echo "bench exit $?"; tail -n 40 $OUT/h200-2026-12-02-plans-short-bf16.log
timeout 150 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k "gqa" \
  > $OUT/h200-2026-12-02-gluon-bwd-tests-e.log 2>&1
echo "gqa tests exit $?"; tail -n 5 $OUT/h200-2026-12-02-gluon-bwd-tests-e.log
