#!/bin/bash
# Ninth session (2026-12-03), first call: round dd (the Gluon backward's longest-first launch order, tests + A/B)
# and a full features run with the current defaults (GLUON_BWD_BANDS on, ALiBi split by policy).
bash benchmarks/scripts/round_2026_12_02dd.sh
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03a
timeout 240 python -m flash_attention.bench_features --out $OUT/$L-features.csv > $OUT/$L-features.log 2>&1
echo "features exit $?"; grep -A30 "^name" $OUT/$L-features.log
