#!/bin/bash
# Eleventh session (2026-12-03), fourth call: with dropout's defaults set from call i (the Gluon backward takes
# dropout; dQ split at head_dim 128 causal), the default-path GPU tests and the features run for the README's table.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-03j
timeout 120 python -m pytest -v -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py tests/st/test_gpu_features.py -k "default_path_dropout or dropout_exact or keep_rate" > $OUT/$L-dropout-default-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$L-dropout-default-tests.log; grep -E "^FAILED|Error|assert" $OUT/$L-dropout-default-tests.log | head -12 | cut -c1-300; tail -1 $OUT/$L-dropout-default-tests.log
timeout 260 python -m flash_attention.bench_features --quick --out $OUT/$L-features.csv > $OUT/$L-features.log 2>&1
echo "features exit $?"; grep -A40 "^name" $OUT/$L-features.log | head -45
