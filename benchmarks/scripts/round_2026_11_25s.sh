#!/bin/bash
# Device round: the full bf16 benchmark (correctness check, 16K-token grid, 64K rows) with the one-loop kernels,
# anchors side by side in one process.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 440 python -m flash_attention.bench --dtypes bf16 --out $OUT/h100-2026-11-25-one-loop-bf16.csv \
  > $OUT/h100-2026-11-25-one-loop-bf16.log 2>&1
echo "bf16 exit $?"; grep -E "FAIL|PASS" $OUT/h100-2026-11-25-one-loop-bf16.log | head -3
python benchmarks/make_table.py $OUT/h100-2026-11-25-one-loop-bf16.csv | tail -25
