#!/bin/bash
# Prepared in the twelfth session (2026-12-03) for a later device call, not run yet: the full benchmark with
# whatever policy calls r/s settle, one dtype per call (each under the 600 s limit), and with bf16 the features
# table (its rows predate entry 50). $1 = bf16 or fp16.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
B=h200-next-full
timeout 200 python -m flash_attention.bench --dtypes $1 --head-dims 128 --out $OUT/$B-$1-d128.csv > $OUT/$B-$1-d128.log 2>&1
echo "$1 d128 exit $?"; grep -c PASS $OUT/$B-$1-d128.log; grep "FAIL\|Error" $OUT/$B-$1-d128.log | head -3
timeout 150 python -m flash_attention.bench --dtypes $1 --head-dims 64 --no-long --no-check --out $OUT/$B-$1-d64.csv > $OUT/$B-$1-d64.log 2>&1
echo "$1 d64 exit $?"
for f in $OUT/$B-$1-*.csv; do python benchmarks/make_table.py $f 2>&1 | tail -16; done
if [ "$1" = bf16 ]; then
  timeout 150 python -m flash_attention.bench_features --quick --out $OUT/$B-features.csv > $OUT/$B-features.log 2>&1
  echo "features exit $?"; grep -A40 "^name" $OUT/$B-features.log | head -45
fi
