#!/bin/bash
# Device round 2026-12-02 (seventh session), last call: token windows and ALiBi in the Gluon forward's one-tile form
# (configs.GLUON_FWD_BANDS): GPU tests, then the features benchmark (what each feature costs against plain).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-02-bands
timeout 110 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_forward_sm90.py -k "window_alibi or declines" > $OUT/$L-tests.log 2>&1
echo "tests exit $?"; tail -3 $OUT/$L-tests.log | cut -c1-400
timeout 110 python -m flash_attention.bench_features --quick --out $OUT/$L-features.csv > $OUT/$L-features.log 2>&1
echo "features exit $?"; grep -A25 "^name" $OUT/$L-features.log
