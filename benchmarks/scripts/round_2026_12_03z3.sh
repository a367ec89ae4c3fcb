#!/bin/bash
# Fifteenth session (2026-12-03): the persistent forward's output through the K half of its last stage and a TMA
# store (configs.GLUON_PERSISTENT_OUT_SMEM, NOTES entry 70), after Nsight Compute (round s) showed the register
# stores stalling the consumers at 1K keys. Its GPU test first, then the A/B off/on on the rows the persistent form
# takes (head_dim 128 without a mask at every length and causal up to 2K; head_dim 64 with ALiBi or dropout, two
# consumers), bf16 and fp16 for the short rows.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03z3
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
timeout 200 python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_forward_sm90.py -k "out_smem" > $R/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-tests.log; grep -E "^FAILED|^ERROR|Error" $R/$L-tests.log | head -8 | cut -c1-300
if grep -q "^FAILED\|^ERROR" $R/$L-tests.log; then cd $OUT && tar czf $L.tgz $L; exit 0; fi
(cd benchmarks && timeout 170 python ab_forward.py --switch GLUON_PERSISTENT_OUT_SMEM --tiles default --dtypes bf16 --shapes 128:0:1024,128:0:2048,128:0:4096,128:0:16384,128:1:1024,128:1:2048,64:0:4096:-1:1,128:0:8192:-1:0:1:-1:10 --out $R/$L-fwd-out-smem-ab-bf16.csv > $R/$L-fwd-out-smem-ab-bf16.log 2>&1)
echo "ab bf16 exit $?"; grep "^{" $R/$L-fwd-out-smem-ab-bf16.log | cut -c1-60,150-290
(cd benchmarks && timeout 90 python ab_forward.py --switch GLUON_PERSISTENT_OUT_SMEM --tiles default --dtypes fp16 --shapes 128:0:1024,128:0:2048,128:1:1024,128:1:2048 --out $R/$L-fwd-out-smem-ab-fp16.csv > $R/$L-fwd-out-smem-ab-fp16.log 2>&1)
echo "ab fp16 exit $?"; grep "^{" $R/$L-fwd-out-smem-ab-fp16.log | cut -c1-60,150-290
cd $OUT && tar czf $L.tgz $L && rm -rf $L
