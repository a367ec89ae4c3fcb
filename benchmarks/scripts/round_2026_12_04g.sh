#!/bin/bash
# Prepared in the sixteenth session (2026-12-04) after its device time was spent; for the next call (~250 s).
# 1. Head_dim 64 short rows in the persistent form with two consumers (128-row tiles, whose output leaves through
#    the K tile: NOTES entry 81) against the three-consumer form and the tl kernel that runs there now
#    (head_dim 64 without a mask at 1K, causal 1K-4K), by rounds and from the counter.
# 2. Head_dim 128 under a causal mask, plain and with dropout: one tile per program / persistent with the counter, in
#    one process (NOTES entry 78).
copy the CSVs to benchmarks/results/sweeps/.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04g
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
(cd benchmarks && timeout 200 python ab_gluon.py --dtypes bf16,fp16 --shapes 64:0:1024,64:0:2048,64:1:1024,64:1:2048,64:1:4096 \
  --variants "64=128x0x2s+128x0x2d+128x0x3d" --out $R/$L-d64-two-consumers.csv > $R/$L-d64-two-consumers.log 2>&1)
echo "two consumers exit $?"
python benchmarks/ab_gluon.py --summarize $R/$L-d64-two-consumers.csv
(cd benchmarks && timeout 120 python ab_forward.py --switch FWD_GLUON_PERSISTENT --tiles default --dtypes bf16,fp16 \
  --shapes 128:1:8192,128:1:16384,128:1:8192:-1:0:1:0:10,128:1:16384:-1:0:1:0:10 --out $R/$L-causal-counter-ab.csv > $R/$L-causal-counter-ab.log 2>&1)
echo "causal counter exit $?"; cut -d, -f1-4,7,11,13,14 $R/$L-causal-counter-ab.csv
cd $OUT && tar czf $L.tgz $L && rm -rf $L
