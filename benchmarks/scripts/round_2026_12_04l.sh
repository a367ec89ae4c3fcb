#!/bin/bash
# Prepared in the seventeenth session (2026-12-04) after its device time was spent (~330 s),
# run in the eighteenth session as round 2026-12-04l (prepared as 05c). NOTES entry 89: dropout's pair form (configs.GLUON_FWD_DROPOUT_PAIRS) and wide Philox multiplies
# (configs.GLUON_FWD_PHILOX_WIDE) in the Gluon forward, first bit for bit against the default form (GPU tests), then
# timed: each switch off/on in one process, p = 0.1, bf16, 8K keys, both head_dims, with and without a causal mask.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04l
R=$OUT/$L; mkdir -p $R
timeout 170 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_forward_sm90.py -k "dropout_pairs_wide" \
  > $R/$L-tests.log 2>&1
echo "tests exit $?"; tail -3 $R/$L-tests.log
S=128:0:8192:-1:0:1:0:10,128:1:8192:-1:0:1:0:10,64:0:8192:-1:0:1:0:10,64:1:8192:-1:0:1:0:10
(cd benchmarks && timeout 75 python ab_forward.py --switch GLUON_FWD_PHILOX_WIDE --tiles default --dtypes bf16 \
  --shapes $S --out $R/$L-philox-wide-ab.csv > $R/$L-philox-wide-ab.log 2>&1)
echo "wide exit $?"; cut -d, -f1-4,8,12 $R/$L-philox-wide-ab.csv
(cd benchmarks && timeout 75 python ab_forward.py --switch GLUON_FWD_DROPOUT_PAIRS --set GLUON_FWD_PHILOX_WIDE=1 \
  --tiles default --dtypes bf16 --shapes $S --out $R/$L-dropout-pairs-ab.csv > $R/$L-dropout-pairs-ab.log 2>&1)
echo "pairs exit $?"; cut -d, -f1-4,8,12 $R/$L-dropout-pairs-ab.csv
cd $OUT && tar czf $L.tgz $L && rm -rf $L
