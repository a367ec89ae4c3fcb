#!/bin/bash
# Fourteenth session (2026-12-03), fourth call, warm after round_2026_12_03z.sh (the same run): fp16 head_dim 64,
# the features table, then the default-path GPU tests round y's time limit cut.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
S=$SECONDS
B=h200-2026-12-03z
timeout 110 python -m flash_attention.bench --dtypes fp16 --head-dims 64 --no-long --no-check --out $OUT/$B-fp16-d64.csv > $OUT/$B-fp16-d64.log 2>&1
echo "fp16 d64 exit $? at $((SECONDS - S)) s"
timeout 120 python -m flash_attention.bench_features --quick --out $OUT/$B-features.csv > $OUT/$B-features.log 2>&1
echo "features exit $? at $((SECONDS - S)) s"
left=$((280 - (SECONDS - S)))
timeout $left python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_backward_sm90.py -k "default_path or (dropout and fused_dq)" > $OUT/$B-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$B-tests.log; grep -E "^FAILED|^ERROR" $OUT/$B-tests.log | head -8 | cut -c1-300
