#!/bin/bash
# Device round 2026-12-02 (fourth session), call 4: the benchmark with the Gluon backward on by default (dQ fused
# through TMA reductions; split dQ for head_dim-128 causal below 4K keys): bf16 head_dim 128 (check first, S=64K
# row), bf16 head_dim 64, fp16 head_dim 128 (what the time left allows; rows are written as they are timed).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 280 python -m flash_attention.bench --dtypes bf16 --head-dims 128 \
  --out $OUT/h200-2026-12-02-gluon-bwd-bf16-d128.csv > $OUT/h200-2026-12-02-gluon-bwd-bf16-d128.log 2>&1
echo "bench bf16 d128 exit $?"
timeout 165 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --no-long --no-check \
  --out $OUT/h200-2026-12-02-gluon-bwd-bf16-d64.csv > $OUT/h200-2026-12-02-gluon-bwd-bf16-d64.log 2>&1
echo "bench bf16 d64 exit $?"
timeout 130 python -m flash_attention.bench --dtypes fp16 --head-dims 128 --no-long --no-check \
  --out $OUT/h200-2026-12-02-gluon-bwd-fp16-d128.csv > $OUT/h200-2026-12-02-gluon-bwd-fp16-d128.log 2>&1
echo "bench fp16 d128 exit $?"
grep -c PASS $OUT/h200-2026-12-02-gluon-bwd-bf16-d128.log; grep "FAIL\|Error" $OUT/h200-2026-12-02-gluon-bwd-bf16-d128.log | head -3
for f in $OUT/h200-2026-12-02-gluon-bwd-*.csv; do python benchmarks/make_table.py $f 2>&1 | grep "^| .f16"; done
