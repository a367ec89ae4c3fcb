#!/bin/bash
# Eleventh session (2026-12-03), third call: dropout's compares and selects in PTX (select_kept, _dropout_grads:
# LLVM had packed the predicates into bit masks), the backward's draws kept as raw Philox words in shared memory.
# GPU tests of dropout in the Gluon forward and backward, then the A/B (Gluon fused dQ / split dQ, against plain).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-03i
timeout 200 python -m pytest -v -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py tests/st/test_gpu_forward_sm90.py -k "dropout" > $OUT/$L-dropout-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$L-dropout-tests.log; grep -E "^FAILED|Error|assert" $OUT/$L-dropout-tests.log | head -12 | cut -c1-300; tail -1 $OUT/$L-dropout-tests.log
cd benchmarks
timeout 300 python ab_dropout.py --side backward --only gluon_bwd_fused_dq,gluon_bwd_split_dq --out $OUT/$L-dropout-bwd-ab-bf16.csv > $OUT/$L-dropout-bwd-ab-bf16.log 2>&1
echo "ab exit $?"; python -c "
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(r['D'], r['causal'], r['variant'], r['fwd_ms'][:6], r['bwd_ms'][:6], r.get('fwd_slowdown', '')[:6], r.get('bwd_slowdown', '')[:6], r.get('note', ''))
" $OUT/$L-dropout-bwd-ab-bf16.csv
