#!/bin/bash
# Device round 2026-12-02 (second session), last call: GPU tests of the backward's TMA loads (now on for
# head_dim 128) and the dQ modes, then the benchmark (correctness check first) of bf16 head_dim 128 and 64 with
# the new defaults: 256-row forward tiles without a band at head_dim 128, backward TMA at head_dim 128, the
# non-causal kernels without their dead tail loop, the leaner host path.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 80 python -m pytest -q -x -n 8 -p no:cacheprovider tests/ut/test_kernels.py -k "backward_tma or dq_mode" \
  > $OUT/h200-2026-12-02-bwd-tma-tests.log 2>&1; echo "tests exit $?"; tail -n 2 $OUT/h200-2026-12-02-bwd-tma-tests.log
timeout 270 python -m flash_attention.bench --dtypes bf16 --head-dims 128 \
  --out $OUT/h200-2026-12-02-tiles-bf16-d128.csv > $OUT/h200-2026-12-02-tiles-bf16-d128.log 2>&1
echo "bench d128 exit $?"
timeout 190 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --no-long --no-check \
  --out $OUT/h200-2026-12-02-tiles-bf16-d64.csv > $OUT/h200-2026-12-02-tiles-bf16-d64.log 2>&1
echo "bench d64 exit $?"
for f in $OUT/h200-2026-12-02-tiles-bf16-d128.csv $OUT/h200-2026-12-02-tiles-bf16-d64.csv; do
  [ -f $f ] && python benchmarks/make_table.py $f 2>&1 | grep "^| bf16"
done
grep -c PASS $OUT/h200-2026-12-02-tiles-bf16-d128.log; grep FAIL $OUT/h200-2026-12-02-tiles-bf16-d128.log | head -3
