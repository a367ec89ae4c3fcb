#!/bin/bash
# Seventeenth session (2026-12-04), after round g (~300 s):
# 1. Head_dim 64 with two consumers (128-row tiles, output through the K tile) against three, by rounds and from
#    the counter, at the lengths round g left out (without a mask 4K-16K, causal 8K-16K; 1K again), beside the tl
#    kernel and cuDNN: round g had two consumers ahead of the tl kernel at 1K without a mask and causal 2K-4K.
# 2. Dropout (p = 0.1) at head_dim 128 and 64, one tile per program / persistent in one process: round g had one tile
#    8-10% ahead of the counter under a causal mask at 8K and 16K; here causal 2K-4K (by rounds), no mask at 8K, and
#    head_dim 64.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04i
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
(cd benchmarks && timeout 230 python ab_gluon.py --dtypes bf16,fp16 \
  --shapes 64:0:1024,64:0:4096,64:0:8192,64:0:16384,64:1:8192,64:1:16384 \
  --variants "64=128x0x2s+128x0x2d+128x0x3d" --out $R/$L-d64-two-consumers.csv > $R/$L-d64-two-consumers.log 2>&1)
echo "two consumers exit $?"
python benchmarks/ab_gluon.py --summarize $R/$L-d64-two-consumers.csv
(cd benchmarks && timeout 200 python ab_forward.py --switch FWD_GLUON_PERSISTENT --tiles default --dtypes bf16,fp16 \
  --shapes 128:1:2048:-1:0:1:0:10,128:1:4096:-1:0:1:0:10,128:0:8192:-1:0:1:0:10,64:0:8192:-1:0:1:0:10,64:1:8192:-1:0:1:0:10,64:1:16384:-1:0:1:0:10 \
  --out $R/$L-dropout-persistent-ab.csv > $R/$L-dropout-persistent-ab.log 2>&1)
echo "dropout exit $?"; cut -d, -f1-4,7,8,12,14,15 $R/$L-dropout-persistent-ab.csv
cd $OUT && tar czf $L.tgz $L && rm -rf $L
