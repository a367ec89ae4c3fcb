#!/bin/bash
# Eleventh session (2026-12-03), first call: dropout in the Gluon backward (configs.GLUON_BWD_DROPOUT). GPU tests of
# it in both dQ modes, then the backward A/B (Gluon fused dQ / Gluon split dQ / tl, against plain).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-03g
timeout 170 python -m pytest -v -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py -k "dropout" > $OUT/$L-bwd-dropout-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$L-bwd-dropout-tests.log; grep -E "^FAILED|Error|assert" $OUT/$L-bwd-dropout-tests.log | head -12 | cut -c1-300; tail -1 $OUT/$L-bwd-dropout-tests.log
cd benchmarks
timeout 400 python ab_dropout.py --side backward --out $OUT/$L-dropout-bwd-ab-bf16.csv > $OUT/$L-dropout-bwd-ab-bf16.log 2>&1
echo "ab exit $?"; cut -c1-400 $OUT/$L-dropout-bwd-ab-bf16.log | grep -v Warning | tail -24
