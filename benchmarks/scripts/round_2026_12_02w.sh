#!/bin/bash
# Device round 2026-12-02 (sixth session), call 4 (the device time left): the rows call 3's timeouts cut (fp16
# head_dim 128 at B=1 S=64K, fp16 head_dim 64 causal 16K), and the forward launch-plan tests with the persistent
# form as the default.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
B=h200-2026-12-02-persistent
timeout 75 python -m flash_attention.bench --dtypes fp16 --head-dims 128 --long-only --no-check --out $OUT/$B-fp16-d128-long.csv > $OUT/$B-fp16-d128-long.log 2>&1
echo "fp16 d128 long exit $?"
timeout 50 python -m flash_attention.bench --dtypes fp16 --head-dims 64 --seqlens 16384 --causal yes --no-long --no-check --out $OUT/$B-fp16-d64-causal16k.csv > $OUT/$B-fp16-d64-causal16k.log 2>&1
echo "fp16 d64 causal 16k exit $?"
timeout 40 python -m pytest -q tests/st/test_gpu_plans.py -k "forward or training" -p no:cacheprovider > $OUT/h200-2026-12-02-plans-tests-d.log 2>&1
echo "plans tests exit $?"; tail -2 $OUT/h200-2026-12-02-plans-tests-d.log
for f in $OUT/$B-*.csv; do python benchmarks/make_table.py $f 2>&1 | grep "^| .f16"; done
