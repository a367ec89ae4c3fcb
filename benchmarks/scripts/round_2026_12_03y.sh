#!/bin/bash
# Fourteenth session (2026-12-03), second call (under 420 s), after round x turned the per-tile mask branch on and
# the head_dim-64 unmasked backward over to Gluon from 1K keys: the Gluon forward at head_dim 64 below its 8K
# threshold (causal 1K/2K/4K, and without a mask at 1K, where the tl kernel runs; last measured on 12-02 before the
# persistent/dynamic forms), the one-loop backward with the branch at head_dim 64 (off there: every tile masked
# lost 5%), and the GPU tests of the new defaults.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03y
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
cd benchmarks
timeout 110 python ab_forward.py --switch FWD_GLUON --tiles default --shapes 64:1:1024,64:1:2048,64:1:4096,64:0:1024 --out $R/$L-fwd-gluon-d64-ab-bf16.csv > $R/$L-fwd-gluon-d64-ab-bf16.log 2>&1
echo "ab fwd gluon exit $?"; grep "^{" $R/$L-fwd-gluon-d64-ab-bf16.log | cut -c1-60,130-260
timeout 90 python ab_backward.py --switch GLUON_BWD_MASK_EVERY_TILE --variants default --shapes 64:1:2048,64:1:8192,64:1:16384,64:1:8192:2048 --out $R/$L-d64-mask-branch-ab-bf16.csv > $R/$L-d64-mask-branch-ab-bf16.log 2>&1
echo "ab d64 one loop exit $?"; grep "^{" $R/$L-d64-mask-branch-ab-bf16.log | cut -c1-240
cd ..
timeout 130 python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_backward_sm90.py -k "default_path or window_alibi or (dropout and fused_dq) or prescaled" > $R/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-tests.log; grep -E "^FAILED|^ERROR" $R/$L-tests.log | head -8 | cut -c1-300
cd $OUT && tar czf $L.tgz $L && rm -rf $L
