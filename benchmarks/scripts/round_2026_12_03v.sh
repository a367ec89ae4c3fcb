#!/bin/bash
# Thirteenth session (2026-12-03), third call: the full benchmark with the policy rounds r and u settled (one masked
# loop and dQ fused for the masked head_dim-128 kernels, dQ fused at head_dim 128 from 1K keys, the dQ conversion
# kernel, prescaled rows where they gained): bf16 head_dim 128 (with the correctness check) and 64, fp16 head_dim
# 128; then, in the time left, the GPU tests round u's limit cut.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
S=$SECONDS
nvidia-smi --query-gpu=name --format=csv,noheader
B=h200-2026-12-03v
timeout 195 python -m flash_attention.bench --dtypes bf16 --head-dims 128 --out $OUT/$B-bf16-d128.csv > $OUT/$B-bf16-d128.log 2>&1
echo "bf16 d128 exit $? at $((SECONDS - S)) s"; grep -c PASS $OUT/$B-bf16-d128.log; grep "FAIL\|Error" $OUT/$B-bf16-d128.log | head -3
timeout 140 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --no-long --no-check --out $OUT/$B-bf16-d64.csv > $OUT/$B-bf16-d64.log 2>&1
echo "bf16 d64 exit $? at $((SECONDS - S)) s"
timeout 195 python -m flash_attention.bench --dtypes fp16 --head-dims 128 --no-check --out $OUT/$B-fp16-d128.csv > $OUT/$B-fp16-d128.log 2>&1
echo "fp16 d128 exit $? at $((SECONDS - S)) s"
for f in $OUT/$B-*.csv; do python benchmarks/make_table.py $f 2>&1 | tail -24; done
left=$((580 - (SECONDS - S)))
if [ $left -gt 30 ]; then
  timeout $left python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_backward_sm90.py -k "default_path or dq_convert or prescaled" > $OUT/$B-tests.log 2>&1
  echo "tests exit $?"; grep -c PASSED $OUT/$B-tests.log; grep -E "^FAILED|^ERROR" $OUT/$B-tests.log | head -8 | cut -c1-300
fi
