#!/bin/bash
# Eighth session of 2026-12-02: with the Gluon backward for windows/ALiBi on by default (call bb), a same-process
# A/B of ALiBi's split form in the forward (configs.GLUON_ALIBI_SPLIT) and of the Gluon backward on ALiBi shapes,
# the forward's window/ALiBi GPU tests (one case never ran), and the full features benchmark with the defaults.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-cc
timeout 100 python benchmarks/ab_forward.py --switch GLUON_ALIBI_SPLIT --tiles default --dtypes bf16 \
  --shapes 128:0:8192:-1:1,128:1:8192:-1:1,64:0:8192:-1:1,64:1:8192:-1:1,128:1:16384:-1:1,128:0:2048:-1:1,128:1:2048:-1:1 \
  --out $OUT/$L-alibi-split-ab-bf16.csv > $OUT/$L-alibi-split-ab-bf16.log 2>&1
echo "alibi split ab exit $?"; grep -o "'d': [0-9]*, 'causal': [0-9], 'seqlen': [0-9]*, .*'GLUON_ALIBI_SPLIT': [a-zA-Z]*, 'rep': [0-9], .*'fwd_tflops': [0-9.]*, 'cudnn_tflops': [0-9.]*" $OUT/$L-alibi-split-ab-bf16.log | sed -e "s/'cfg': 'None', //" | cut -c1-220
timeout 100 python benchmarks/ab_backward.py --switch GLUON_BWD_BANDS --variants default --dtypes bf16 \
  --shapes 128:0:8192:-1:1,128:1:8192:-1:1,64:1:8192:-1:1,64:0:8192:2048 \
  --out $OUT/$L-bwd-alibi-ab-bf16.csv > $OUT/$L-bwd-alibi-ab-bf16.log 2>&1
echo "bwd alibi ab exit $?"; grep -o "'d': [0-9]*, 'causal': [0-9], 'seqlen': [0-9]*, 'window': [-0-9]*, 'variant': 'default', 'GLUON_BWD_BANDS': [a-zA-Z]*, 'rep': [0-9], 'ms': [0-9.]*, 'bwd_tflops': [0-9.]*" $OUT/$L-bwd-alibi-ab-bf16.log
timeout 120 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_forward_sm90.py -k window_alibi > $OUT/$L-fwd-bands-tests.log 2>&1
echo "fwd bands tests exit $?"; tail -3 $OUT/$L-fwd-bands-tests.log | cut -c1-400
timeout 240 python -m flash_attention.bench_features --out $OUT/$L-features.csv > $OUT/$L-features.log 2>&1
echo "features exit $?"; grep -A30 "^name" $OUT/$L-features.log
