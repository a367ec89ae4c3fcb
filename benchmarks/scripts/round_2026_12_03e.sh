#!/bin/bash
# Tenth session (2026-12-03), second call: with the defaults set from call d (Gluon dropout on, a head_dim-64 window
# without a causal mask in the persistent form), GPU tests of windows/ALiBi, the default forms and dropout,
# and the features run for the README's features table.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-03e
timeout 110 python -m pytest -v -p no:cacheprovider -rA tests/st/test_gpu_forward_sm90.py tests/st/test_gpu_features.py -k "gluon_forward_window_alibi or default_forms or dropout_exact" > $OUT/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$L-tests.log; grep -E "^FAILED|Error" $OUT/$L-tests.log | head -8 | cut -c1-300; tail -1 $OUT/$L-tests.log
timeout 200 python -m flash_attention.bench_features --quick --out $OUT/$L-features.csv > $OUT/$L-features.log 2>&1
echo "features exit $?"; grep -A40 "^name" $OUT/$L-features.log | head -45
