#!/bin/bash
# Device round: full GPU suite (incl. the ring's chunk pairs), ring benchmark on one GPU (world 1: the script
# end to end over NCCL, and the one-GPU baseline at 128K/256K).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv | tee $OUT/gpu.txt
timeout 330 python -m pytest -q -n 8 tests/st 2>&1 | tail -15 | tee $OUT/st.log
timeout 200 torchrun --standalone --nproc_per_node=1 -m flash_attention.bench_ring --seqlens 131072 262144 \
  --single-max 262144 --out $OUT/ring-1gpu.csv 2>&1 | tail -30 | tee $OUT/ring.log
