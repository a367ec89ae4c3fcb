#!/bin/bash
# Prepared in the sixteenth session (2026-12-04), not run (~200 s): Nsight Compute on the head_dim-64 causal 1K
# forward, where the Gluon kernel (forced: FWD_GLUON=1) reads half the tl kernel's TFLOPS (168-170 against
# 328-329, NOTES entry 65) and cuDNN leads both; the tl kernel and cuDNN beside it (NOTES entry 82).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04h
R=$OUT/$L; mkdir -p $R
bash benchmarks/scripts/ncu_rows.sh $R ours:forward:64:1:1024:FWD_GLUON=1 ours:forward:64:1:1024:- \
  cudnn:forward:64:1:1024:-
cd $OUT && tar czf $L.tgz $L && rm -rf $L
