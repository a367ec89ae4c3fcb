#!/bin/bash
# Device round: GPU tests of the dQ modes and of the re-tuned head_dim-64 causal backward, then the full
# benchmark (bf16 grid with the 64K rows, fp16 grid), one process each, anchors measured side by side.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 75 python -m pytest -q -n 6 --tb=short -W ignore -p no:cacheprovider tests/st/test_gpu.py \
  -k "dq_modes or (test_seqlens and d64)" > $OUT/st-dq-modes.log 2>&1
echo "st exit $?"; tail -3 $OUT/st-dq-modes.log
timeout 290 python -m flash_attention.bench --dtypes bf16 --out $OUT/h100-2026-11-25-bf16.csv > $OUT/h100-2026-11-25-bf16.log 2>&1
echo "bf16 exit $?"; grep -E "FAIL|PASS" $OUT/h100-2026-11-25-bf16.log | head -3; tail -2 $OUT/h100-2026-11-25-bf16.log | cut -c1-300
timeout 185 python -m flash_attention.bench --dtypes fp16 --no-long --no-check --out $OUT/h100-2026-11-25-fp16.csv > $OUT/h100-2026-11-25-fp16.log 2>&1
echo "fp16 exit $?"; tail -2 $OUT/h100-2026-11-25-fp16.log | cut -c1-300
