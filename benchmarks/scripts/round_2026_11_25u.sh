#!/bin/bash
# Device round: the fp16 S=1K rows again (the full run's first row of the head_dim-128 causal combo timed
# contention), then a short GPU fuzz of the fixed-length and varlen kernels after the one-loop change.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 70 python -m flash_attention.bench --dtypes fp16 --seqlens 1024 --no-long --no-check \
  --out $OUT/h100-2026-11-25-one-loop-fp16-short.csv > $OUT/h100-2026-11-25-one-loop-fp16-short.log 2>&1
echo "fp16 short exit $?"
bash benchmarks/scripts/gpu_fuzz.sh attention:120:100:11 attention:120:100:12 varlen:80:100:13
python benchmarks/make_table.py $OUT/h100-2026-11-25-one-loop-fp16-short.csv | tail -6
