#!/bin/bash
# Device round 2026-12-02 (sixth session), call 3: the full benchmark with the persistent Gluon forward as the
# default without a mask (three consumers at head_dim 64, from 2K keys): bf16 head_dim 128 (with the correctness
# check and the B=1 S=64K rows), bf16 head_dim 64, fp16 head_dim 128 (with S=64K), fp16 head_dim 64.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
B=h200-2026-12-02-persistent
timeout 190 python -m flash_attention.bench --dtypes bf16 --head-dims 128 --out $OUT/$B-bf16-d128.csv > $OUT/$B-bf16-d128.log 2>&1
echo "bf16 d128 exit $?"; grep -c PASS $OUT/$B-bf16-d128.log; grep "FAIL\|Error" $OUT/$B-bf16-d128.log | head -3
timeout 130 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --no-long --no-check --out $OUT/$B-bf16-d64.csv > $OUT/$B-bf16-d64.log 2>&1
echo "bf16 d64 exit $?"
timeout 155 python -m flash_attention.bench --dtypes fp16 --head-dims 128 --no-check --out $OUT/$B-fp16-d128.csv > $OUT/$B-fp16-d128.log 2>&1
echo "fp16 d128 exit $?"
timeout 110 python -m flash_attention.bench --dtypes fp16 --head-dims 64 --no-long --no-check --out $OUT/$B-fp16-d64.csv > $OUT/$B-fp16-d64.log 2>&1
echo "fp16 d64 exit $?"
for f in $OUT/$B-*.csv; do python benchmarks/make_table.py $f 2>&1 | grep "^| .f16"; done
