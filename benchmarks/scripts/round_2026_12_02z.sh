#!/bin/bash
# Device round 2026-12-02 (seventh session), calls 3-4: the full benchmark with the forward policy of entry 32
# (head_dim 64 persistent + dynamic schedule, causal from 8K keys; head_dim 128 causal persistent up to 2K keys).
# $1 = bf16 or fp16.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
B=h200-2026-12-02-dynamic
if [ "$1" = bf16 ]; then
timeout 200 python -m flash_attention.bench --dtypes bf16 --head-dims 128 --out $OUT/$B-bf16-d128.csv > $OUT/$B-bf16-d128.log 2>&1
echo "bf16 d128 exit $?"; grep -c PASS $OUT/$B-bf16-d128.log; grep "FAIL\|Error" $OUT/$B-bf16-d128.log | head -3
timeout 140 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --no-long --no-check --out $OUT/$B-bf16-d64.csv > $OUT/$B-bf16-d64.log 2>&1
echo "bf16 d64 exit $?"
else
timeout 200 python -m flash_attention.bench --dtypes fp16 --head-dims 128 --no-check --out $OUT/$B-fp16-d128.csv > $OUT/$B-fp16-d128.log 2>&1
echo "fp16 d128 exit $?"
timeout 140 python -m flash_attention.bench --dtypes fp16 --head-dims 64 --no-long --no-check --out $OUT/$B-fp16-d64.csv > $OUT/$B-fp16-d64.log 2>&1
echo "fp16 d64 exit $?"
fi
for f in $OUT/$B-*.csv; do python benchmarks/make_table.py $f 2>&1 | tail -30; done
