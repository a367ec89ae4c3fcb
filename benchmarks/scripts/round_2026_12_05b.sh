#!/bin/bash
# Prepared in the seventeenth session (2026-12-04) after its device time was spent (~300 s; rename L to the day it
# runs). NOTES entry 88.
# 1. Nsight Compute on the two-consumer persistent form where it now runs (head_dim 64 causal 2K, 1K without a
#    mask) beside cuDNN, whose kernel has that shape (entry 85): what holds it 3-8% behind.
# 2. Dropout with a window, one tile per program / persistent (entry 84 measured plain causal masks only): a causal
#    2K window at head_dim 128 (persistent by default beyond 4K keys) and a 2K window each side at head_dim 64
#    (persistent by default), p = 0.1.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-05b
R=$OUT/$L; mkdir -p $R
bash benchmarks/scripts/ncu_rows.sh $R/ncu ours:forward:64:1:2048:- cudnn:forward:64:1:2048:- ours:forward:64:0:1024:- \
  cudnn:forward:64:0:1024:-
rm -f $R/ncu/*.ncu-rep $R/ncu/*-sass.csv
(cd benchmarks && timeout 100 python ab_forward.py --switch FWD_GLUON_PERSISTENT --tiles default --dtypes bf16 \
  --shapes 128:1:8192:2048:0:1:0:10,64:0:8192:2048:0:1:2048:10 --out $R/$L-dropout-window-persistent-ab.csv \
  > $R/$L-dropout-window-persistent-ab.log 2>&1)
echo "dropout windows exit $?"; cut -d, -f1-5,7,8,12,14,15 $R/$L-dropout-window-persistent-ab.csv
cd $OUT && tar czf $L.tgz $L && rm -rf $L
