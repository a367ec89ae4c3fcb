#!/bin/bash
# Device round: dQ strategies of the backward (split kernel vs atomic adds vs TMA reductions from dK/dV).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 520 python benchmarks/sweep_dq_modes.py --out $OUT/h100-2026-11-25-dq-modes.csv 2>&1 | tee $OUT/dq-modes.log | grep -v "^{" 
echo "exit ${PIPESTATUS[0]}"
grep "^{" $OUT/dq-modes.log | python -c "
import sys, ast
for line in sys.stdin:
    r = ast.literal_eval(line)
    print(r['seqlen'], r['d'], 'C' if r['causal'] else 'N', r['mode'], r['cfg'], round(r['bwd_tflops']), '%.1e' % r['dq_diff'])"
