#!/bin/bash
# Prepared in the thirteenth session (2026-12-03), run as the fourteenth session's first call (362 s; NOTES 63): the A/B and
# GPU test of the mask behind a per-tile branch (NOTES entry 62), the GPU tests rounds r/u/v left (the narrow
# swizzle's other cases, split-dQ dropout under the new defaults, the prescaled tests' new asserts), the Gluon
# backward at 1K keys (head_dim 64 without a mask takes the tl kernels there: 0.89x cuDNN in run v; measured before
# staging, 327-328 Gluon / 340-341 tl), and the flaky forward row of run v (bf16 head_dim 64 causal 1K: 194 TFLOPS,
# 299 in run q) timed alone three times in separate processes.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03x
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
cd benchmarks
timeout 80 python ab_backward.py --switch BWD_GLUON --variants default --shapes 64:0:1024,64:1:1024,128:1:1024 --out $R/$L-gluon-bwd-1k-ab-bf16.csv > $R/$L-gluon-bwd-1k-ab-bf16.log 2>&1
echo "ab gluon 1k exit $?"; grep "^{" $R/$L-gluon-bwd-1k-ab-bf16.log | cut -c1-240
timeout 80 python ab_backward.py --switch GLUON_BWD_MASK_BRANCH --variants default --shapes 128:1:4096,128:1:16384,128:1:8192:2048,128:0:8192:2048 --out $R/$L-mask-branch-ab-bf16.csv > $R/$L-mask-branch-ab-bf16.log 2>&1
echo "ab mask branch exit $?"; grep "^{" $R/$L-mask-branch-ab-bf16.log | cut -c1-240
cd ..
timeout 200 python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_backward_sm90.py -k "mask_branch or narrow_swizzle or (dropout and split_dq) or prescaled" > $R/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-tests.log; grep -E "^FAILED|^ERROR" $R/$L-tests.log | head -8 | cut -c1-300
for i in 1 2 3; do
  timeout 45 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --seqlens 1024 --causal yes --no-long --no-check --out $R/$L-fwd-d64-causal-1k-$i.csv > $R/$L-fwd-d64-causal-1k-$i.log 2>&1
  echo "bench $i exit $?"; grep "│ bf16" $R/$L-fwd-d64-causal-1k-$i.log | cut -c1-200
done
cd $OUT && tar czf $L.tgz $L && rm -rf $L
