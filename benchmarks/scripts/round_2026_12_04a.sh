#!/bin/bash
# Prepared in the fifteenth session (2026-12-03), run on 2026-12-04 (~420 s): the three-consumer
# output through the V tile (configs.GLUON_PERSISTENT_OUT_SMEM_V, NOTES entry 75) with its GPU test and an A/B on the
# head_dim-64 rows without a mask; and the persistent form under a causal mask at head_dim 128 from 4K keys
# (configs.GLUON_CAUSAL_PERSISTENT_MAX_SEQLEN = 2048 was measured before the output went through shared memory,
# NOTES entries 30, 72, 74), FWD_GLUON_PERSISTENT off/on. Rename L to date+letter when running; copy the results to
# benchmarks/results/sweeps/ and tests/st/logs/.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04a
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
timeout 200 python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_forward_sm90.py -k "out_smem" > $R/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-tests.log; grep -E "^FAILED|^ERROR" $R/$L-tests.log | head -8 | cut -c1-300
if ! grep -q "^FAILED\|^ERROR" $R/$L-tests.log; then
  (cd benchmarks && timeout 110 python ab_forward.py --switch GLUON_PERSISTENT_OUT_SMEM_V --tiles default --dtypes bf16,fp16 --shapes 64:0:1024,64:0:2048,64:0:4096,64:0:16384 --out $R/$L-fwd-out-smem-v-ab.csv > $R/$L-fwd-out-smem-v-ab.log 2>&1)
  echo "ab out_smem_v exit $?"; grep "^{" $R/$L-fwd-out-smem-v-ab.log | cut -c1-60,150-290
fi
(cd benchmarks && timeout 110 python ab_forward.py --switch FWD_GLUON_PERSISTENT --tiles default --dtypes bf16,fp16 --shapes 128:1:4096,128:1:8192,128:1:16384 --out $R/$L-fwd-causal-persistent-ab.csv > $R/$L-fwd-causal-persistent-ab.log 2>&1)
echo "ab causal persistent exit $?"; grep "^{" $R/$L-fwd-causal-persistent-ab.log | cut -c1-60,150-290
cd $OUT && tar czf $L.tgz $L && rm -rf $L
