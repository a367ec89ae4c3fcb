#!/bin/bash
# Eleventh session (2026-12-03), second call: dropout in the Gluon backward, the next tile's mask drawn during this tile's last products (shared memory between).
# GPU tests of it in both dQ modes, then the backward A/B (Gluon fused dQ / Gluon split dQ, against plain; tl as in call g).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-03h
timeout 170 python -m pytest -v -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py -k "dropout" > $OUT/$L-bwd-dropout-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$L-bwd-dropout-tests.log; grep -E "^FAILED|Error|assert" $OUT/$L-bwd-dropout-tests.log | head -12 | cut -c1-300; tail -1 $OUT/$L-bwd-dropout-tests.log
cd benchmarks
timeout 400 python ab_dropout.py --side backward --only gluon_bwd_fused_dq,gluon_bwd_split_dq --out $OUT/$L-dropout-bwd-ab-bf16.csv > $OUT/$L-dropout-bwd-ab-bf16.log 2>&1
echo "ab exit $?"; python -c "
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(r['D'], r['causal'], r['variant'], r['fwd_ms'][:6], r['bwd_ms'][:6], r.get('fwd_slowdown', '')[:6], r.get('bwd_slowdown', '')[:6], r.get('note', ''))
" $OUT/$L-dropout-bwd-ab-bf16.csv
