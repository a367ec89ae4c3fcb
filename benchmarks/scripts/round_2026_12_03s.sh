#!/bin/bash
# Prepared in the twelfth session (2026-12-03) for a later device call, not run yet: Nsight Compute on the rows
# still short of cuDNN (NOTES entries 57, 61): the head_dim-128 forward at 1K keys and causal at 2K (ours and
# cuDNN's), the head_dim-64 backward, the head_dim-64 causal forward at 4K (the tl kernel there), and the
# head_dim-128 causal backward in its default form (one masked loop since the thirteenth session) and in the
# two-loop form. Run in the fifteenth session with the forward rows only (the backward rows now meet cuDNN
# but for head_dim 64 at 0.96-1.00x), ours beside cuDNN's for each. Its A/Bs of the narrow swizzle and the
# prescaled rows ran in round u (NOTES 59) and are gone; its profiling loop now lives in ncu_rows.sh.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03s
R=$OUT/$L; mkdir -p $R
bash benchmarks/scripts/ncu_rows.sh $R ours:forward:128:0:1024:- cudnn:forward:128:0:1024:- \
  ours:forward:128:1:2048:- cudnn:forward:128:1:2048:- ours:forward:64:1:4096:- cudnn:forward:64:1:4096:-
cd $OUT && tar czf $L.tgz $L && rm -rf $L
