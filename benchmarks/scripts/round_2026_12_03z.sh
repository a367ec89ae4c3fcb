#!/bin/bash
# Fourteenth session (2026-12-03), third call: the full benchmark with rounds x/y settled (the per-tile mask branch
# on, the head_dim-64 unmasked backward on Gluon from 1K keys) and the benchmark's spin-up after idle time (NOTES
# entry 64), first measured alone (idle_clocks.py); bf16 head_dim 128 (with the correctness check) and 64, fp16
# head_dim 128. Its second call (round_2026_12_03z2.sh) runs fp16 head_dim 64, the features and the tests.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
S=$SECONDS
nvidia-smi --query-gpu=name,clocks.sm --format=csv,noheader
B=h200-2026-12-03z
(cd benchmarks && timeout 40 python idle_clocks.py --shapes 64:1:1024 --idle 2 --rounds 2 --out $OUT/$B-idle-clocks.csv > $OUT/$B-idle-clocks.log 2>&1)
echo "idle exit $? at $((SECONDS - S)) s"; grep "^{" $OUT/$B-idle-clocks.log | cut -c1-200
timeout 200 python -m flash_attention.bench --dtypes bf16 --head-dims 128 --out $OUT/$B-bf16-d128.csv > $OUT/$B-bf16-d128.log 2>&1
echo "bf16 d128 exit $? at $((SECONDS - S)) s"; grep -c PASS $OUT/$B-bf16-d128.log; grep "FAIL\|Error" $OUT/$B-bf16-d128.log | head -3
timeout 145 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --no-long --no-check --out $OUT/$B-bf16-d64.csv > $OUT/$B-bf16-d64.log 2>&1
echo "bf16 d64 exit $? at $((SECONDS - S)) s"
left=$((585 - (SECONDS - S)))
timeout $left python -m flash_attention.bench --dtypes fp16 --head-dims 128 --no-check --out $OUT/$B-fp16-d128.csv > $OUT/$B-fp16-d128.log 2>&1
echo "fp16 d128 exit $? at $((SECONDS - S)) s"
for f in $OUT/$B-*d*.csv; do python benchmarks/make_table.py $f 2>&1 | tail -14 | cut -c1-40,60-200; done
