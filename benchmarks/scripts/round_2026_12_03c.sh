#!/bin/bash
# Ninth session (2026-12-03), third call: ALiBi without an I2F per score (distance in float32), its split form with
# the tile's side from scalars and on every tile of a causal band (now the default everywhere), window masks against
# per-row bounds (forward and backward): GPU tests, the split A/B, kernel times per feature, the features run.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-03c
timeout 130 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_forward_sm90.py -k "alibi or window" > $OUT/$L-fwd-bands-tests.log 2>&1
echo "fwd bands tests exit $?"; tail -3 $OUT/$L-fwd-bands-tests.log | cut -c1-400
timeout 90 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k "window_alibi" > $OUT/$L-bwd-bands-tests.log 2>&1
echo "bwd bands tests exit $?"; tail -3 $OUT/$L-bwd-bands-tests.log | cut -c1-400
timeout 90 python benchmarks/ab_forward.py --switch GLUON_ALIBI_SPLIT --tiles default --dtypes bf16 \
  --shapes 128:0:8192:-1:1,128:1:8192:-1:1,64:0:8192:-1:1,64:1:8192:-1:1,128:1:16384:-1:1,128:1:2048:-1:1 \
  --out $OUT/$L-alibi-split-ab-bf16.csv > $OUT/$L-alibi-split-ab-bf16.log 2>&1
echo "alibi split ab exit $?"; grep -o "'d': [0-9]*, 'causal': [0-9], 'seqlen': [0-9]*, .*'GLUON_ALIBI_SPLIT': [a-zA-Z]*, 'rep': [0-9], .*'fwd_tflops': [0-9.]*" $OUT/$L-alibi-split-ab-bf16.log | sed -e "s/'cfg': 'None', //; s/'window': -1, //" | cut -c1-200
timeout 180 python -m flash_attention.bench_features --out $OUT/$L-features.csv > $OUT/$L-features.log 2>&1
echo "features exit $?"; grep -A30 "^name" $OUT/$L-features.log
