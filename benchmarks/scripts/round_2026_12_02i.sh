#!/bin/bash
# Device round 2026-12-02 (third session), call 4: the benchmark (correctness check first) in bf16, head_dim 128
# (with the S=64K row) and 64, with the Gluon forward on by default (head_dim 128; head_dim 64 from 8K keys).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 290 python -m flash_attention.bench --dtypes bf16 --head-dims 128 \
  --out $OUT/h200-2026-12-02-gluon-bf16-d128.csv > $OUT/h200-2026-12-02-gluon-bf16-d128.log 2>&1
echo "bench d128 exit $?"
timeout 200 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --no-long --no-check \
  --out $OUT/h200-2026-12-02-gluon-bf16-d64.csv > $OUT/h200-2026-12-02-gluon-bf16-d64.log 2>&1
echo "bench d64 exit $?"
for f in $OUT/h200-2026-12-02-gluon-bf16-d128.csv $OUT/h200-2026-12-02-gluon-bf16-d64.csv; do
  [ -f $f ] && python benchmarks/make_table.py $f 2>&1 | grep "^| bf16"
done
grep -c PASS $OUT/h200-2026-12-02-gluon-bf16-d128.log; grep FAIL $OUT/h200-2026-12-02-gluon-bf16-d128.log | head -3
