#!/bin/bash
# Eighteenth session (2026-12-04), the last ~360 s of device time: NOTES entry 93 found the two-consumer head_dim-64
# forward's consumers waiting on the long scoreboard (30% of stalls, mostly on the branch after an mbarrier wait).
# It runs 4 K/V stages (ring_stages caps at 4) and has the shared memory for 6 (213 KB compiled, no spills). Stages
# 4 / 5 / 6 where two consumers run: 1K without a mask (atomic counter, 'd'), causal 2K and 4K (by rounds, 's'), bf16,
# two fresh processes with the variants in opposite orders.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04s
R=$OUT/$L; mkdir -p $R
cd benchmarks
i=0
for order in "4 5 6" "6 5 4"; do
  i=$((i + 1)); d=""; s=""
  for st in $order; do d="$d+128x${st}x2d"; s="$s+128x${st}x2s"; done
  timeout 45 python ab_gluon.py --dtypes bf16 --shapes 64:0:1024 --variants "64=${d:1}" --out $R/$L-d64-stages-nc-$i.csv > $R/$L-d64-stages-nc-$i.log 2>&1
  echo "nc $i exit $?"
  timeout 60 python ab_gluon.py --dtypes bf16 --shapes 64:1:2048,64:1:4096 --variants "64=${s:1}" --out $R/$L-d64-stages-causal-$i.csv > $R/$L-d64-stages-causal-$i.log 2>&1
  echo "causal $i exit $?"
done
for f in $R/*.csv; do cut -d, -f3,4,5,6,9,16,18,19 $f | tail -n +2; done
cd $OUT && tar czf $L.tgz $L && rm -rf $L
