#!/bin/bash
# Twelfth session (2026-12-03), fourth call: the full benchmark with lse2/delta staged by the Gluon backward's
# producer (configs.backward_staged_rows): bf16 head_dim 128 (with the correctness check) and 64, fp16 head_dim 128.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
B=h200-2026-12-03q-staged
timeout 195 python -m flash_attention.bench --dtypes bf16 --head-dims 128 --out $OUT/$B-bf16-d128.csv > $OUT/$B-bf16-d128.log 2>&1
echo "bf16 d128 exit $?"; grep -c PASS $OUT/$B-bf16-d128.log; grep "FAIL\|Error" $OUT/$B-bf16-d128.log | head -3
timeout 140 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --no-long --no-check --out $OUT/$B-bf16-d64.csv > $OUT/$B-bf16-d64.log 2>&1
echo "bf16 d64 exit $?"
timeout 195 python -m flash_attention.bench --dtypes fp16 --head-dims 128 --no-check --out $OUT/$B-fp16-d128.csv > $OUT/$B-fp16-d128.log 2>&1
echo "fp16 d128 exit $?"
for f in $OUT/$B-*.csv; do python benchmarks/make_table.py $f 2>&1 | tail -24; done
