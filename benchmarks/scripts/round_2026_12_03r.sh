#!/bin/bash
# Prepared in the twelfth session (2026-12-03) for the next device call, not run yet (no device time was left):
# configs.GLUON_BWD_MASK_EVERY_TILE (causal/window programs walk all their query tiles in one masked loop, which
# lets the head_dim-128 causal kernel with dQ fused take the staged lse2/delta without spilling) and
# configs.DQ_CONVERT_KERNEL (the float32 dQ buffer to dQ in one row-wise kernel). GPU tests of both, of the switches
# round s measures (GLUON_BWD_DQ_NARROW_SWIZZLE, GLUON_BWD_PRESCALED_ROWS) and of the staged paths the twelfth
# session's calls did not reach, then the A/Bs of the first two (NOTES entries 53, 54, 56, 58).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03r
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
timeout 190 python -m pytest -v -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py -k "mask_every_tile or dq_convert or narrow_swizzle or prescaled or (dropout and split_dq) or grid or default_path" > $R/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-tests.log; grep -E "^FAILED|Error|assert" $R/$L-tests.log | head -8 | cut -c1-300; tail -1 $R/$L-tests.log
cd benchmarks
timeout 120 python ab_backward.py --switch GLUON_BWD_MASK_EVERY_TILE --variants default --shapes 128:1:2048,128:1:4096,128:1:8192,128:1:16384,128:1:8192:2048 --out $R/$L-mask-every-tile-ab-bf16.csv > $R/$L-mask-every-tile-ab-bf16.log 2>&1
echo "ab1 exit $?"; grep -v Warning $R/$L-mask-every-tile-ab-bf16.log | cut -c1-260 | tail -32
# dQ modes once every tile is masked: causal 2K-4K, windows and causal ALiBi/dropout at head_dim 128 (split by policy
# today).
timeout 120 python ab_backward.py --set GLUON_BWD_MASK_EVERY_TILE=1 --variants split,tma --shapes 128:1:2048,128:1:4096,128:1:8192:2048,128:0:8192:2048,128:1:8192:-1:1,128:1:8192:-1:0:1:0:10 --out $R/$L-mask-every-tile-dq-modes-ab-bf16.csv > $R/$L-mask-every-tile-dq-modes-ab-bf16.log 2>&1
echo "ab2 exit $?"; grep -v Warning $R/$L-mask-every-tile-dq-modes-ab-bf16.log | cut -c1-260 | tail -16
timeout 90 python ab_backward.py --switch DQ_CONVERT_KERNEL --variants default --shapes 128:0:2048,128:1:4096,128:0:8192,64:0:2048,64:1:2048 --out $R/$L-dq-convert-ab-bf16.csv > $R/$L-dq-convert-ab-bf16.log 2>&1
echo "ab3 exit $?"; grep -v Warning $R/$L-dq-convert-ab-bf16.log | cut -c1-260 | tail -16
cd ..
cd $OUT && tar czf $L.tgz $L && rm -rf $L
