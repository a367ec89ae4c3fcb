#!/bin/bash
# Device round: the split backward's tiles for head_dim 64 causal (the 2026-11-25 dQ-mode sweep measured 252
# TFLOPS there against 304 in the 2026-11-24 table), at S=8K and S=2K.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for s in 8192 2048; do
  timeout 250 python benchmarks/sweep_configs.py --head-dims 64 --causal yes --skip-fwd --seqlen $s \
    --out $OUT/h100-2026-11-25-configs-d64-causal-s$s.csv 2>&1 | grep -v "^{'d'.*anchor" | sed -e "s/'kind'//" | cut -c1-160
done
