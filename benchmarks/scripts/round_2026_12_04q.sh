#!/bin/bash
# Eighteenth session (2026-12-04): the forward dropout forms' GPU tests that round p's time limit cut (windows one
# tile per program, head_dim 64 with the pair form), then round n's first part: Nsight Compute on the two-consumer
# head_dim-64 forward (causal 2K, 1K without a mask) beside cuDNN.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04q
R=$OUT/$L; mkdir -p $R
timeout 150 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_forward_sm90.py -k "default_forms_dropout" \
  > $R/$L-tests.log 2>&1
echo "tests exit $?"; tail -3 $R/$L-tests.log
bash benchmarks/scripts/ncu_rows.sh $R/ncu ours:forward:64:1:2048:- cudnn:forward:64:1:2048:- ours:forward:64:0:1024:- \
  cudnn:forward:64:0:1024:-
rm -f $R/ncu/*.ncu-rep $R/ncu/*-sass.csv
cd $OUT && tar czf $L.tgz $L && rm -rf $L
