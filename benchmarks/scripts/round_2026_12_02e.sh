#!/bin/bash
# Device round 2026-12-02 (second session), extra call: the fp16 benchmark rows with the same defaults as
# round d (head_dim 128 and 64, 1K-16K).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 175 python -m flash_attention.bench --dtypes fp16 --head-dims 128 --no-long \
  --out $OUT/h200-2026-12-02-tiles-fp16-d128.csv > $OUT/h200-2026-12-02-tiles-fp16-d128.log 2>&1
echo "bench fp16 d128 exit $?"
timeout 150 python -m flash_attention.bench --dtypes fp16 --head-dims 64 --no-long --no-check \
  --out $OUT/h200-2026-12-02-tiles-fp16-d64.csv > $OUT/h200-2026-12-02-tiles-fp16-d64.log 2>&1
echo "bench fp16 d64 exit $?"
for f in $OUT/h200-2026-12-02-tiles-fp16-d128.csv $OUT/h200-2026-12-02-tiles-fp16-d64.csv; do
  [ -f $f ] && python benchmarks/make_table.py $f 2>&1 | grep "^| fp16"
done
