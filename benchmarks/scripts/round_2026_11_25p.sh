#!/bin/bash
# Device round: the fused backward launch (dQ and dK/dV programs in one grid, FlexAttention's structure) against
# the split kernels (dQ first, computing delta), head_dim 128 at 1K/2K/8K; forward tile sweeps at short
# sequences (head_dim 128 and 64, 1K-4K), where the 8K-tuned tiles were measured 3-14% off.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 100 python -m pytest -q -n 6 --tb=short -W ignore -p no:cacheprovider tests/ut/test_kernels.py \
  tests/st/test_gpu.py -k "dq or fused" > $OUT/tests.log 2>&1
echo "tests exit $?"; tail -2 $OUT/tests.log; grep -E "^(FAILED|ERROR)" $OUT/tests.log | head
timeout 200 python benchmarks/sweep_dq_modes.py --modes fused --seqlens 1024,2048,8192 --head-dims 128 \
  --out $OUT/fused.csv > $OUT/fused.log 2>&1
echo "fused exit $?"
timeout 260 python benchmarks/sweep_configs.py --skip-bwd --seqlen 1024,2048,4096 --head-dims 128,64 \
  --out $OUT/fwd-short.csv > $OUT/fwd-short.log 2>&1
echo "fwd sweep exit $?"
grep -v "^{'seqlen'" $OUT/fused.log | head -5
python - <<'PY'
import csv, os
for r in csv.DictReader(open(os.environ["OUT"] + "/fused.csv")):
    print(r["seqlen"], r["d"], r["causal"], r["mode"], r["cfg"].replace("KernelConfig", ""), r["bwd_tflops"][:5], r["dq_diff"][:8])
PY
grep BEST $OUT/fwd-short.log
