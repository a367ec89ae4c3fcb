#!/bin/bash
# Eighth session of 2026-12-02: the Gluon backward's longest-first launch order (configs.BWD_LONGEST_FIRST; on by
# default for causal GQA): its GPU tests and a same-process A/B.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-dd
timeout 120 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k "launch_order or gqa" > $OUT/$L-order-tests.log 2>&1
echo "order tests exit $?"; tail -3 $OUT/$L-order-tests.log | cut -c1-400
timeout 120 python benchmarks/ab_backward.py --switch BWD_LONGEST_FIRST --variants default --dtypes bf16 \
  --shapes 128:1:8192:-1:0:4,128:1:16384:-1:0:4,64:1:8192:-1:0:4,128:1:2048:-1:0:4,128:1:8192,64:1:8192,128:1:16384 \
  --out $OUT/$L-order-ab-bf16.csv > $OUT/$L-order-ab-bf16.log 2>&1
echo "order ab exit $?"; grep -o "'d': [0-9]*, 'causal': [0-9], 'seqlen': [0-9]*, .*'group': [0-9]*, .*'BWD_LONGEST_FIRST': [a-zA-Z]*, 'rep': [0-9], 'ms': [0-9.]*, 'bwd_tflops': [0-9.]*" $OUT/$L-order-ab-bf16.log | sed -e "s/'window': -1, 'alibi': 0, //; s/'variant': 'default', //"
