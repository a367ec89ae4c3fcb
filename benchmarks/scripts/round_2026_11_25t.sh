#!/bin/bash
# Device round: the bf16 S=1K/2K rows again (in the full run they timed host contention: 1K slower than 2K), the
# fp16 benchmark (16K-token grid), then the GPU tests of the features, varlen, compile and ring paths.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 120 python -m flash_attention.bench --dtypes bf16 --seqlens 1024,2048 --no-long --no-check \
  --out $OUT/h100-2026-11-25-one-loop-bf16-short.csv > $OUT/h100-2026-11-25-one-loop-bf16-short.log 2>&1
echo "bf16 short exit $?"
timeout 230 python -m flash_attention.bench --dtypes fp16 --no-long --no-check \
  --out $OUT/h100-2026-11-25-one-loop-fp16.csv > $OUT/h100-2026-11-25-one-loop-fp16.log 2>&1
echo "fp16 exit $?"
timeout 200 python -m pytest -q -n 8 -p no:cacheprovider -W ignore tests/st/test_gpu_features.py \
  tests/st/test_gpu_varlen.py tests/st/test_gpu_compile.py tests/st/test_gpu_ring.py > $OUT/st-rest.log 2>&1
echo "st exit $?"; tail -2 $OUT/st-rest.log; grep -E "^(FAILED|ERROR)" $OUT/st-rest.log | head
python benchmarks/make_table.py $OUT/h100-2026-11-25-one-loop-bf16-short.csv | tail -9
python benchmarks/make_table.py $OUT/h100-2026-11-25-one-loop-fp16.csv | tail -21
