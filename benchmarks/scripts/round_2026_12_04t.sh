#!/bin/bash
# Eighteenth session (2026-12-04), after round s (6 K/V stages: +1.5-2.5% for two consumers at 1K, level to +1%
# causal 2K-4K): the same for the three-consumer head_dim-64 rows (2K and 16K without a mask, causal 8K and 16K;
# atomic counter, 'd'), stages 4 / 6, bf16, two fresh processes in opposite orders.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04t
R=$OUT/$L; mkdir -p $R
cd benchmarks
i=0
for v in "128x4x3d+128x6x3d" "128x6x3d+128x4x3d"; do
  i=$((i + 1))
  timeout 80 python ab_gluon.py --dtypes bf16 --shapes 64:0:2048,64:0:16384,64:1:8192,64:1:16384 --variants "64=$v" \
    --out $R/$L-d64-stages-nc3-$i.csv > $R/$L-d64-stages-nc3-$i.log 2>&1
  echo "nc3 $i exit $?"
done
for f in $R/*.csv; do cut -d, -f3,4,5,6,9,16,18,19 $f | tail -n +2; done
cd $OUT && tar czf $L.tgz $L && rm -rf $L
